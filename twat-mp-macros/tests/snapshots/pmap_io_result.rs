// #[pmap]
// pub fn size(path: PathBuf) -> io::Result<u64> { Ok(fs::metadata(path)?.len()) }

#[track_caller]
pub fn size(
    items: impl ::core::iter::IntoIterator<Item = PathBuf>,
) -> io::Result<::std::vec::Vec<u64>> {
    ::twat_mp::__private::pmap_result(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(PathBuf),
        |path: PathBuf| -> io::Result<u64> { Ok(fs::metadata(path)?.len()) },
        items,
    )
}
