use twat_mp::pmap;

/// Not serde-serializable: cannot cross to a worker process.
struct Opaque(u32);

#[pmap(process)]
fn unwrap(x: Opaque) -> u32 {
    x.0
}

fn main() {
    let _: Vec<u32> = unwrap(vec![Opaque(1)]);
}
