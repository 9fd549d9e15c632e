use twat_mp::pmap;

#[pmap(process, timeout = "5 seconds")]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {}
