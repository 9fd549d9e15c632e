use twat_mp::pmap;

struct Counter {
    step: u64,
}

impl Counter {
    #[pmap]
    fn advance(&self, x: u64) -> u64 {
        x + self.step
    }
}

fn main() {
    let _ = Counter { step: 1 };
}
