// #[pmap]
// fn first_word(line: &str) -> &str { line.split(' ').next().unwrap_or("") }

#[track_caller]
fn first_word<'item>(
    items: impl ::core::iter::IntoIterator<Item = &'item str>,
) -> ::std::vec::Vec<&'item str> {
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(& 'item str),
        |line: &'item str| -> &'item str { line.split(' ').next().unwrap_or("") },
        items,
    )
}
