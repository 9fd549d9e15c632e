// #[amap(process)]
// fn load(path: PathBuf) -> Result<String, String> { fs::read_to_string(path).map_err(|e| e.to_string()) }

#[track_caller]
fn load(
    items: impl ::core::iter::IntoIterator<Item = PathBuf>,
) -> ::twat_mp::AsyncResult<Result<::std::vec::Vec<String>, String>> {
    ::twat_mp::__private::amap_result_process(
        &::twat_mp::__private::Config {
            process: true,
            ..::twat_mp::__private::Config::DEFAULT
        },
        ::twat_mp::__render!(PathBuf),
        |path: PathBuf| -> Result<String, String> {
            fs::read_to_string(path).map_err(|e| e.to_string())
        },
        items,
    )
}
