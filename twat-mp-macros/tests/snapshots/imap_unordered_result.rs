// #[imap(ordered = false, nodes = 8)]
// fn parse(line: String) -> Result<u32, std::num::ParseIntError> { line.parse() }

#[track_caller]
fn parse(
    items: impl ::core::iter::IntoIterator<Item = String, IntoIter: ::twat_mp::LazyInput>,
) -> impl ::core::iter::Iterator<Item = Result<u32, std::num::ParseIntError>> {
    ::twat_mp::__private::imap_result(
        &::twat_mp::__private::Config {
            nodes: ::core::option::Option::Some(8),
            ..::twat_mp::__private::Config::DEFAULT
        },
        false,
        ::twat_mp::__render!(String),
        |line: String| -> Result<u32, std::num::ParseIntError> { line.parse() },
        items,
    )
}
