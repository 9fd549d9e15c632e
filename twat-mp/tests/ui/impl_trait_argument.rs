use std::fmt::Display;

use twat_mp::pmap;

#[pmap]
fn describe(x: impl Display) -> String {
    x.to_string()
}

fn main() {}
