use twat_mp::{amap, imap};

// `#[imap]` and `#[amap]` map after the call has returned: their items and results must
// own their data (`#[pmap]` on threads takes borrowed ones).
#[imap]
fn length(line: &str) -> usize {
    line.len()
}

#[amap]
fn first_word(words: &[String]) -> &str {
    words.first().map_or("", String::as_str)
}

fn main() {
    // The callers see no further errors.
    let lengths: Vec<usize> = length(["a", "bc"]).collect();
    let words = vec![String::from("a")];
    let firsts: Vec<&str> = first_word([&words[..]]).get();
    let _ = (lengths, firsts);
}
