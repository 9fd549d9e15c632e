// #[amap(init = Vec::new)]
// #[inline]
// fn push(seen: &mut Vec<u8>, x: u8) -> usize { seen.push(x); seen.len() }

#[track_caller]
fn push(
    items: impl ::core::iter::IntoIterator<Item = u8>,
) -> ::twat_mp::AsyncResult<::std::vec::Vec<usize>> {
    #[inline]
    fn push(seen: &mut Vec<u8>, x: u8) -> usize {
        seen.push(x);
        seen.len()
    }
    ::twat_mp::__private::amap_init(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!(u8),
        ::twat_mp::__private::state_init::<Vec<u8>, _>(Vec::new),
        |seen: &mut Vec<u8>, x| push(seen, x),
        items,
    )
}
