// #[pmap(process, retries = 2)]
// fn square(x: u64) -> u64 { x * x }

#[track_caller]
fn square(items: impl ::core::iter::IntoIterator<Item = u64>) -> ::std::vec::Vec<u64> {
    ::twat_mp::__private::pmap_process(
        &::twat_mp::__private::Config {
            process: true,
            retries: 2,
            ..::twat_mp::__private::Config::DEFAULT
        },
        ::twat_mp::__render!(u64),
        |x: u64| -> u64 { x * x },
        items,
    )
}
