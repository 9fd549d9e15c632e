// #[imap]
// fn wrap<T: Clone>(x: T) -> Vec<T> { vec![x] }

#[track_caller]
fn wrap<T: Clone + ::core::marker::Send + 'static>(
    items: impl ::core::iter::IntoIterator<Item = T, IntoIter: ::twat_mp::LazyInput>,
) -> impl ::core::iter::Iterator<Item = Vec<T>>
where
    Vec<T>: ::core::marker::Send + 'static,
{
    ::twat_mp::__private::imap(
        &::twat_mp::__private::Config::DEFAULT,
        true,
        ::twat_mp::__render!(T),
        |x: T| -> Vec<T> { vec![x] },
        items,
    )
}
