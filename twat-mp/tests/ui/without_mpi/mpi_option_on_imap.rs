use twat_mp::imap;

// Refused for the feature alone, once: `ordered` and `nodes` stay honoured.
#[imap(mpi, ordered = false, nodes = 2)]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let _: Vec<u64> = square(1..4).collect();
}
