// #[imap(process, timeout = "250ms")]
// fn square(x: u64) -> u64 { x * x }

fn square(
    items: impl ::core::iter::IntoIterator<Item = u64, IntoIter: ::twat_mp::LazyInput>,
) -> impl ::core::iter::Iterator<Item = u64> {
    fn square(x: u64) -> u64 {
        x * x
    }
    ::twat_mp::__private::imap_process(
        &::twat_mp::__private::Config {
            process: true,
            timeout: ::core::option::Option::Some(
                ::core::time::Duration::from_millis(250),
            ),
            ..::twat_mp::__private::Config::DEFAULT
        },
        true,
        ::twat_mp::__render!(u64),
        |x| square(x),
        items,
    )
}
