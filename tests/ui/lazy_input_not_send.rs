// A lazy map's input is pulled on a thread of its own: it must be able to move there.
use twat_mp::imap;

#[imap]
fn shout(line: String) -> String {
    line.to_uppercase()
}

fn main() {
    // `stdin().lines()` holds stdin's lock; `BufReader::new(stdin()).lines()` would do.
    for line in shout(std::io::stdin().lines().map(Result::unwrap)) {
        println!("{line}");
    }
}
