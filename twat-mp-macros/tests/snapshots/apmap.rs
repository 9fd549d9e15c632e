// #[apmap(concurrency = 32, timeout = "5s")]
// pub async fn fetch(url: String) -> usize { get(&url).await.len() }

pub async fn fetch(
    items: impl ::core::iter::IntoIterator<Item = String>,
) -> ::std::vec::Vec<usize> {
    ::twat_mp::__private::apmap(
            &::twat_mp::__private::Config {
                timeout: ::core::option::Option::Some(
                    ::core::time::Duration::from_millis(5000),
                ),
                concurrency: ::core::option::Option::Some(32),
                ..::twat_mp::__private::Config::DEFAULT
            },
            ::twat_mp::__render!(String),
            |url: String| async move {
                let output: usize = { get(&url).await.len() };
                output
            },
            items,
        )
        .await
}
