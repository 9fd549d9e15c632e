// #[pmap]
// fn items(item: u32, items: u32) -> u32 { item + items }

#[track_caller]
fn items(
    items_: impl ::core::iter::IntoIterator<Item = (u32, u32)>,
) -> ::std::vec::Vec<u32> {
    fn items(item: u32, items: u32) -> u32 {
        item + items
    }
    ::twat_mp::__private::pmap(
        &::twat_mp::__private::Config::DEFAULT,
        ::twat_mp::__render!((u32, u32)),
        |(item, items): (u32, u32)| items(item, items),
        items_,
    )
}
