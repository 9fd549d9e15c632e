// #[pmap(nodes = 0)]
// async fn square(x: u64) -> u64 { x * x }

::core::compile_error! {
    "`nodes = 0` would leave nothing to run the items: use 1 or more"
}
::core::compile_error! {
    "`#[pmap]` maps a plain `fn`: for an `async fn` use `#[apmap]` (twat-mp's `aio` feature), or remove `async`"
}
async fn square(x: u64) -> u64 {
    x * x
}
