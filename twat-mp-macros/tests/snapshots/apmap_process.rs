// #[apmap(process, nodes = 4)]
// async fn fetch(url: String) -> usize { get(&url).await.len() }

async fn fetch(
    items: impl ::core::iter::IntoIterator<Item = String>,
) -> ::std::vec::Vec<usize> {
    ::twat_mp::__private::apmap_process(
            &::twat_mp::__private::Config {
                nodes: ::core::option::Option::Some(4),
                process: true,
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
