use twat_mp::pmap;

#[pmap(nodes = 2, nodes = 4)]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let _: Vec<u64> = square(1..4);
}
