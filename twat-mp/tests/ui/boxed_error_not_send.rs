use std::error::Error;

use twat_mp::pmap;

#[pmap]
fn parse(line: String) -> Result<u32, Box<dyn Error>> {
    Ok(line.trim().parse()?)
}

fn main() {
    let _ = parse(vec![String::from("1")]);
}
