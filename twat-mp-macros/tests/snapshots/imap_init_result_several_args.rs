// #[imap(init = Client::connect)]
// fn fetch(client: &mut Client, url: String, tries: u8) -> Result<Vec<u8>, Error> { client.get(&url, tries) }

#[track_caller]
fn fetch(
    items: impl ::core::iter::IntoIterator<
        Item = (String, u8),
        IntoIter: ::twat_mp::LazyInput,
    >,
) -> impl ::core::iter::Iterator<Item = Result<Vec<u8>, Error>> {
    ::twat_mp::__private::imap_result_init(
        &::twat_mp::__private::Config::DEFAULT,
        true,
        ::twat_mp::__render!((String, u8)),
        ::twat_mp::__private::state_init::<Client, _>(Client::connect),
        |client: &mut Client, (url, tries): (String, u8)| -> Result<Vec<u8>, Error> {
            client.get(&url, tries)
        },
        items,
    )
}
