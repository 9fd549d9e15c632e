use twat_mp::{imap, pmap};

// A worker process cannot borrow from the caller, not even `'static` data.
#[pmap(process)]
fn length(line: &str) -> usize {
    line.len()
}

#[imap(process)]
fn label(n: u32) -> &'static str {
    if n % 2 == 0 { "even" } else { "odd" }
}

fn main() {
    let _: Vec<usize> = length(["a", "bc"]);
    let _: Vec<&str> = label(0..4).collect();
}
