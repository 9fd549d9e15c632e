use twat_mp::{imap, pmap};

fn make_buffer() -> Vec<u8> {
    Vec::with_capacity(64)
}

// The first parameter must be the state, `&mut S`.
#[pmap(init = make_buffer)]
fn length(x: u64) -> usize {
    x.to_string().len()
}

// A shared borrow cannot be the worker's state.
#[pmap(init = make_buffer)]
fn peek(buffer: &Vec<u8>, x: u64) -> usize {
    buffer.len() + x as usize
}

// The state, and no item after it.
#[imap(init = make_buffer)]
fn only_state(buffer: &mut Vec<u8>) -> usize {
    buffer.len()
}

fn main() {
    let _: Vec<usize> = length(1..4);
}
