// #[pmap]
// fn fail(x: u8) -> ! { panic!("{x}") }

::core::compile_error! {
    "a mapped function must return a value for each item, and `!` never returns: return what one item gives, e.g. `()`, or `Result<(), E>` for a function that only fails"
}
fn fail(x: u8) -> () {
    panic!("{x}")
}
