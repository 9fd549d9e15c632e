// #[apmap]
// async fn fetch<U: AsRef<str>>(url: U) -> Result<Bytes, Error> { get(url.as_ref()).await }

async fn fetch<U: AsRef<str> + ::core::marker::Send + 'static>(
    items: impl ::core::iter::IntoIterator<Item = U>,
) -> Result<::std::vec::Vec<Bytes>, Error> {
    ::twat_mp::__private::apmap_result(
            &::twat_mp::__private::Config::DEFAULT,
            ::twat_mp::__render!(U),
            |url: U| async move {
                let output: Result<Bytes, Error> = { get(url.as_ref()).await };
                output
            },
            items,
        )
        .await
}
