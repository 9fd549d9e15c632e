// #[pmap(result)]
// fn parse(line: String) -> Parsed<u32> { line.parse().map_err(Bad) }

#[track_caller]
fn parse(
    items: impl ::core::iter::IntoIterator<Item = String>,
) -> <Parsed<u32> as ::twat_mp::__private::Fallible>::Collected {
    ::twat_mp::__private::pmap_result(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(String),
        |line: String| -> Parsed<u32> { line.parse().map_err(Bad) },
        items,
    )
}
