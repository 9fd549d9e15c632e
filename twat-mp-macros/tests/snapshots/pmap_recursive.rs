// #[pmap]
// fn fib(n: u64) -> u64 { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }

#[track_caller]
fn fib(items: impl ::core::iter::IntoIterator<Item = u64>) -> ::std::vec::Vec<u64> {
    fn fib(n: u64) -> u64 {
        if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
    }
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(u64),
        |n| fib(n),
        items,
    )
}
