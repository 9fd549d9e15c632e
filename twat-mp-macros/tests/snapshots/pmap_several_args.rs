// #[pmap]
// fn label((x, y): (u8, u8), mut n: u64, name: &str) -> String { n += 1; format!("{name}{x}{y}{n}") }

#[track_caller]
fn label<'item>(
    items: impl ::core::iter::IntoIterator<Item = ((u8, u8), u64, &'item str)>,
) -> ::std::vec::Vec<String> {
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(((u8, u8), u64, & 'item str)),
        |((x, y), mut n, name): ((u8, u8), u64, &'item str)| -> String {
            n += 1;
            format!("{name}{x}{y}{n}")
        },
        items,
    )
}
