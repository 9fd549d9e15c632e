use twat_mp::{amap, pmap};

fn make_name() -> String {
    String::from("worker")
}

// `init` takes a function's name, not a value.
#[pmap(init = 64)]
fn sized(buffer: &mut Vec<u8>, x: u64) -> usize {
    buffer.len() + x as usize
}

// `make_name` makes a `String`, and the state is a `Vec<u8>`.
#[amap(init = make_name)]
fn fill(buffer: &mut Vec<u8>, x: u8) -> usize {
    buffer.push(x);
    buffer.len()
}

fn main() {
    let _: Vec<usize> = sized(1..4);
    let _ = fill(1..4).get();
}
