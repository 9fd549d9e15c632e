use twat_mp::apmap;

#[apmap]
fn fetch(url: String) -> usize {
    url.len()
}

fn main() {}
