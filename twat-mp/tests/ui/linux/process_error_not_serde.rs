use std::num::ParseIntError;

use twat_mp::pmap;

#[pmap(process)]
fn parse(text: String) -> Result<u8, ParseIntError> {
    text.parse()
}

fn main() {
    let _ = parse(vec!["1".to_owned()]);
}
