use twat_mp::{imap, pmap};

#[pmap]
#[imap]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    let _: Vec<u32> = double(0..4).collect();
}
