// #[pmap]
// /// Docs.
// #[must_use]
// #[allow(clippy::cast_possible_truncation)]
// #[inline]
// #[tracing::instrument]
// fn low_byte(x: u64) -> u8 { x as u8 }

/// Docs.
#[must_use]
#[allow(clippy::cast_possible_truncation)]
#[track_caller]
fn low_byte(items: impl ::core::iter::IntoIterator<Item = u64>) -> ::std::vec::Vec<u8> {
    #[inline]
    #[tracing::instrument]
    fn low_byte(x: u64) -> u8 {
        x as u8
    }
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(u64),
        |x| low_byte(x),
        items,
    )
}
