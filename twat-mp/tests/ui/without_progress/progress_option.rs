use twat_mp::imap;

#[imap(progress)]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let _: Vec<u64> = square(1..4).collect();
}
