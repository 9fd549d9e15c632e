use twat_mp::pmap;

struct Celsius(f64);

impl Celsius {
    // An attribute of its own keeps the function of one item a nested function, which
    // cannot see `Self`.
    #[pmap]
    #[inline]
    fn from_fahrenheit(f: f64) -> Self {
        Self((f - 32.0) / 1.8)
    }
}

fn main() {
    let _: Vec<Celsius> = Celsius::from_fahrenheit([32.0, 212.0]);
}
