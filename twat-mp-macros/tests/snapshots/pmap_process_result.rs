// #[pmap(process)]
// fn parse(line: String) -> Result<u32, String> { line.parse().map_err(|_| line) }

#[track_caller]
fn parse(
    items: impl ::core::iter::IntoIterator<Item = String>,
) -> Result<::std::vec::Vec<u32>, String> {
    ::twat_mp::__private::pmap_result_process(
        &::twat_mp::__private::Config {
            process: true,
            ..::twat_mp::__private::Config::DEFAULT
        },
        ::twat_mp::__render!(String),
        |line: String| -> Result<u32, String> { line.parse().map_err(|_| line) },
        items,
    )
}
