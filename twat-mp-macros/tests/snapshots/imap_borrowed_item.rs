// #[imap]
// fn length(line: &str) -> usize { line.len() }

::core::compile_error! {
    "the items of `#[imap]` must own their data: they are mapped lazily, on the pool's threads, after the call has returned; take `String` instead of `&str`"
}
#[track_caller]
fn length<'item>(
    items: impl ::core::iter::IntoIterator<
        Item = &'item str,
        IntoIter: ::twat_mp::LazyInput,
    >,
) -> impl ::core::iter::Iterator<Item = usize> {
    let _ = items;
    ::core::iter::empty()
}
