// #[apmap]
// async fn fetch(url: String) -> usize { get(&url).await.len() }
// (without the `aio` feature)

::core::compile_error! {
    "`#[apmap]` needs twat-mp's `aio` feature: in Cargo.toml, write `twat-mp = { version = \"0.1\", features = [\"aio\"] }`"
}
async fn fetch(url: String) -> usize {
    get(&url).await.len()
}
