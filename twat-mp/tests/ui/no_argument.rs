use twat_mp::pmap;

#[pmap]
fn answer() -> u64 {
    42
}

fn main() {}
