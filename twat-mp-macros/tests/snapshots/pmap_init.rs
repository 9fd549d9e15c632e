// #[pmap(init = make_buffer, nodes = 2)]
// fn render(buffer: &mut String, n: u64) -> usize { buffer.clear(); buffer.push_str(&n.to_string()); buffer.len() }

#[track_caller]
fn render(items: impl ::core::iter::IntoIterator<Item = u64>) -> ::std::vec::Vec<usize> {
    ::twat_mp::__private::pmap_init(
        &::twat_mp::__private::Config {
            nodes: ::core::option::Option::Some(2),
            ..::twat_mp::__private::Config::DEFAULT
        },
        ::twat_mp::__render!(u64),
        ::twat_mp::__private::state_init::<String, _>(make_buffer),
        |buffer: &mut String, n: u64| -> usize {
            buffer.clear();
            buffer.push_str(&n.to_string());
            buffer.len()
        },
        items,
    )
}
