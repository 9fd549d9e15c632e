// #[amap(chunksize = 16)]
// fn load(path: PathBuf) -> anyhow::Result<String> { Ok(fs::read_to_string(path)?) }

#[track_caller]
fn load(
    items: impl ::core::iter::IntoIterator<Item = PathBuf>,
) -> ::twat_mp::AsyncResult<anyhow::Result<::std::vec::Vec<String>>> {
    ::twat_mp::__private::amap_result(
        &::twat_mp::__private::Config {
            chunksize: ::core::option::Option::Some(16),
            ..::twat_mp::__private::Config::DEFAULT
        },
        ::twat_mp::__render!(PathBuf),
        |path: PathBuf| -> anyhow::Result<String> { Ok(fs::read_to_string(path)?) },
        items,
    )
}
