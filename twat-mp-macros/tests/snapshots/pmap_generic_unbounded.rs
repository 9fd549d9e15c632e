// #[pmap]
// fn identity<T>(x: T) -> T { x }

#[track_caller]
fn identity<T>(items: impl ::core::iter::IntoIterator<Item = T>) -> ::std::vec::Vec<T>
where
    T: ::core::marker::Send,
{
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(T),
        |x: T| -> T { x },
        items,
    )
}
