use twat_mp::ThreadPool;

fn main() {
    let pool = ThreadPool::builder().progress(true).build().unwrap();
    let _ = pool.map(|x: u64| x * x, 0..4);
}
