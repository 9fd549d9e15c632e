// #[pmap]
// fn touch(path: PathBuf) { let _ = fs::write(path, b""); }

#[track_caller]
fn touch(items: impl ::core::iter::IntoIterator<Item = PathBuf>) -> ::std::vec::Vec<()> {
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(PathBuf),
        |path: PathBuf| {
            let _ = fs::write(path, b"");
        },
        items,
    )
}
