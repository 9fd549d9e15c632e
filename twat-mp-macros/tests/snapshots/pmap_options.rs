// #[pmap(nodes = 4, chunksize = 64, debug)]
// /// Squares one number.
// pub fn square(x: u64) -> u64 { x * x }

/// Squares one number.
#[track_caller]
pub fn square(
    items: impl ::core::iter::IntoIterator<Item = u64>,
) -> ::std::vec::Vec<u64> {
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config {
            nodes: ::core::option::Option::Some(4),
            chunksize: ::core::option::Option::Some(64),
            debug: true,
            ..::twat_mp::__private::Config::DEFAULT
        },
        ::twat_mp::__render!(u64),
        |x: u64| -> u64 { x * x },
        items,
    )
}
