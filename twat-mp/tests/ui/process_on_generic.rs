use std::fmt::Debug;

use twat_mp::pmap;

#[pmap(process)]
fn describe<T: Debug>(x: T) -> String {
    format!("{x:?}")
}

fn main() {
    let _: Vec<String> = describe([1, 2]);
}
