use twat_mp::pmap;

fn make_buffer() -> Vec<u8> {
    Vec::new()
}

#[pmap(init = make_buffer, nodes = 2, init = make_buffer)]
fn fill(buffer: &mut Vec<u8>, x: u8) -> usize {
    buffer.push(x);
    buffer.len()
}

fn main() {
    let _: Vec<usize> = fill(1..4);
}
