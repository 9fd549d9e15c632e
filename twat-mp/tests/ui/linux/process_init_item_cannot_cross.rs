// With `process` and `init`, the items must still cross to the worker processes; the
// state never crosses (it is made in each worker), so it needs neither serde nor `Send`:
// the errors name the item's type only, never the state's.
use std::rc::Rc;

use twat_mp::pmap;

struct Query(Rc<str>);

fn open_cache() -> Rc<Vec<u8>> {
    Rc::new(Vec::new())
}

#[pmap(process, init = open_cache)]
fn run(cache: &mut Rc<Vec<u8>>, query: Query) -> usize {
    cache.len() + query.0.len()
}

fn main() {
    let _ = run([Query("a".into())]);
}
