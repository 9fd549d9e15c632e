use twat_mp::pmap;

#[pmap]
fn fail(x: u32) -> ! {
    panic!("item {x} always fails")
}

fn main() {}
