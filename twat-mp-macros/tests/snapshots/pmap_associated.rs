// #[pmap]
// fn scaled(x: u64) -> Self { Self(x * Self::FACTOR) }

#[track_caller]
fn scaled(items: impl ::core::iter::IntoIterator<Item = u64>) -> ::std::vec::Vec<Self> {
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(u64),
        |x: u64| -> Self { Self(x * Self::FACTOR) },
        items,
    )
}
