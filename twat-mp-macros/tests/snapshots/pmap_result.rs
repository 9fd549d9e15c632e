// #[pmap]
// fn parse(line: &str) -> Result<u32, std::num::ParseIntError> { line.trim().parse() }

#[track_caller]
fn parse<'item>(
    items: impl ::core::iter::IntoIterator<Item = &'item str>,
) -> Result<::std::vec::Vec<u32>, std::num::ParseIntError> {
    ::twat_mp::__private::pmap_result(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(& 'item str),
        |line: &'item str| -> Result<u32, std::num::ParseIntError> {
            line.trim().parse()
        },
        items,
    )
}
