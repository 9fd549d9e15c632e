// #[pmap]
// pub(crate) fn describe<T: Debug>(x: T) -> String where T: Clone { format!("{x:?}") }

#[track_caller]
pub(crate) fn describe<T: Debug>(
    items: impl ::core::iter::IntoIterator<Item = T>,
) -> ::std::vec::Vec<String>
where
    T: Clone + ::core::marker::Send,
{
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(T),
        |x: T| -> String { format!("{x:?}") },
        items,
    )
}
