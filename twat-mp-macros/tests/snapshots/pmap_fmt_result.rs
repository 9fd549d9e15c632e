// #[pmap]
// fn check(x: u8) -> fmt::Result { if x > 9 { Err(fmt::Error) } else { Ok(()) } }

#[track_caller]
fn check(
    items: impl ::core::iter::IntoIterator<Item = u8>,
) -> <fmt::Result as ::twat_mp::__private::Fallible>::Collected {
    ::twat_mp::__private::pmap_result(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(u8),
        |x: u8| -> fmt::Result { if x > 9 { Err(fmt::Error) } else { Ok(()) } },
        items,
    )
}
