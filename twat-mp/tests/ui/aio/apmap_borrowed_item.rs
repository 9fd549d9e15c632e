use std::borrow::Cow;

use twat_mp::apmap;

// `#[apmap]` runs its items as tasks on the async pool's own threads.
#[apmap]
async fn length<'a>(line: Cow<'a, str>) -> usize {
    line.len()
}

fn main() {
    let _ = length([Cow::Borrowed("a")]);
}
