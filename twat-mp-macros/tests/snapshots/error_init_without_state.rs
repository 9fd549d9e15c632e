// #[pmap(init = make_buffer)]
// fn length(x: u64) -> usize { x.to_string().len() }

::core::compile_error! {
    "with `init`, the first parameter is the worker's state, `&mut S` where `make_buffer` returns `S`, and the item comes after it: e.g. `fn length(state: &mut S, x: u64)`"
}
#[track_caller]
fn length(items: impl ::core::iter::IntoIterator<Item = u64>) -> ::std::vec::Vec<usize> {
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(u64),
        |x: u64| -> usize { x.to_string().len() },
        items,
    )
}
