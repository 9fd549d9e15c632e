use twat_mp::apmap;

fn make_counter() -> u64 {
    0
}

// A worker's tasks run concurrently: they cannot share one `&mut` state across `.await`.
#[apmap(init = make_counter)]
async fn count(counter: &mut u64, x: u64) -> u64 {
    *counter += 1;
    x + *counter
}

fn main() {}
