use twat_mp::pmap;

#[pmap(colour = "red")]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let _: Vec<u64> = square(1..4);
}
