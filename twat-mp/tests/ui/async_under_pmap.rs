use twat_mp::pmap;

#[pmap]
async fn fetch(url: String) -> usize {
    url.len()
}

fn main() {}
