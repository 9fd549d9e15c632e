// #[pmap(nodes = 0, debug, process)]
// fn square<T: Mul + Copy>(x: T) -> T::Output { x * x }

::core::compile_error! {
    "`nodes = 0` would leave nothing to run the items: use 1 or more"
}
::core::compile_error! {
    "`process` needs a concrete function: a worker process can only resolve a non-generic function; remove the type parameters, or map a non-generic wrapper that calls this one with concrete types"
}
#[track_caller]
fn square<T: Mul + Copy + ::core::marker::Send>(
    items: impl ::core::iter::IntoIterator<Item = T>,
) -> ::std::vec::Vec<T::Output>
where
    T::Output: ::core::marker::Send,
{
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(T),
        |x: T| -> T::Output { x * x },
        items,
    )
}
