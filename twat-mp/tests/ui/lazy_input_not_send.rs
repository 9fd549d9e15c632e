// A lazy map's input is pulled on a thread of its own: it must be able to move there.
use twat_mp::imap;

#[imap]
fn shout(line: std::io::Result<String>) -> String {
    line.map_or_else(|err| err.to_string(), |line| line.to_uppercase())
}

fn main() {
    // `stdin().lines()` holds stdin's lock; `BufReader::new(stdin()).lines()` would do.
    for line in shout(std::io::stdin().lines()) {
        println!("{line}");
    }
}
