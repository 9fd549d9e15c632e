use std::rc::Rc;

use twat_mp::{imap, pmap};

// An error type that is not `Send`, behind an alias the attribute cannot see through:
// the runtime's bound says what is wrong.
type Shared = Rc<str>;

#[pmap]
fn check(x: u32) -> Result<u32, Shared> {
    if x > 9 { Err(Rc::from("too big")) } else { Ok(x) }
}

/// An error type of the user's that holds something not `Send`: the compiler names it.
#[derive(Debug)]
struct Refused(Rc<String>);

#[imap]
fn refuse(x: u32) -> Result<u32, Refused> {
    Err(Refused(Rc::new(x.to_string())))
}

fn main() {
    let _ = check(0..4);
    let _ = refuse(0..4).count();
}
