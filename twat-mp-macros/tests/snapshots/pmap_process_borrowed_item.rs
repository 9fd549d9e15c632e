// #[pmap(process)]
// fn length(line: &str) -> usize { line.len() }

::core::compile_error! {
    "items must own their data under `process`: each one is copied into a worker process, which cannot borrow from another; take `String` instead of `&str`"
}
#[track_caller]
fn length<'item>(
    items: impl ::core::iter::IntoIterator<Item = &'item str>,
) -> ::std::vec::Vec<usize> {
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(& 'item str),
        |line: &'item str| -> usize { line.len() },
        items,
    )
}
