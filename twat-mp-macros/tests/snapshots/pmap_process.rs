// #[pmap(process, nodes = 2, timeout = "1.5s")]
// fn square(x: u64) -> u64 { x * x }

#[track_caller]
fn square(items: impl ::core::iter::IntoIterator<Item = u64>) -> ::std::vec::Vec<u64> {
    ::twat_mp::__private::pmap_process(
        &::twat_mp::__private::Config {
            nodes: ::core::option::Option::Some(2),
            process: true,
            timeout: ::core::option::Option::Some(
                ::core::time::Duration::from_millis(1500),
            ),
            ..::twat_mp::__private::Config::DEFAULT
        },
        ::twat_mp::__render!(u64),
        |x: u64| -> u64 { x * x },
        items,
    )
}
