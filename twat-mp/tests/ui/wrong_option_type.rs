use twat_mp::{imap, pmap};

#[pmap(nodes = "4")]
fn square(x: u64) -> u64 {
    x * x
}

#[imap(ordered = 1)]
fn cube(x: u64) -> u64 {
    x * x * x
}

#[pmap(debug = true)]
fn half(x: u64) -> u64 {
    x / 2
}

fn main() {
    let _: Vec<u64> = square(1..4);
    let _: Vec<u64> = cube(1..4).collect();
    let _: Vec<u64> = half(1..4);
}
