use twat_mp::imap;

#[imap(retries = 2)]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let _: Vec<u64> = square(1..4).collect();
}
