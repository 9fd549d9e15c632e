// A lazy map's input is pulled on a thread of its own: it cannot borrow from the caller.
use twat_mp::ThreadPool;

fn main() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let words = vec!["parallel".to_owned(), "map".to_owned()];
    let lengths: Vec<_> = pool.imap(|w: String| w.len(), words.iter().cloned()).collect();
    drop(lengths);
}
