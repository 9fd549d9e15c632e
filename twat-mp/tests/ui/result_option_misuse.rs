use std::io;

use twat_mp::pmap;

// Recognised as a `Result` by its name: `result` would do nothing.
#[pmap(result)]
fn size(path: String) -> io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

// Not a `Result` at all.
#[pmap(result)]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    let _: io::Result<Vec<u64>> = size(vec![String::from(".")]);
    let _: Vec<u32> = double(0..4);
}
