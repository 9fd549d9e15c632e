use twat_mp::ProcessPool;

fn main() {
    let pool = ProcessPool::with_nodes(1).unwrap();
    let offset = 10_u64;
    // A closure that captures cannot cross to a worker process.
    let _ = pool.map(move |x: u64| x + offset, 0..4);
}
