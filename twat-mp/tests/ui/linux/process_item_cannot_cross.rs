use std::rc::Rc;

use twat_mp::pmap;

struct Handle(Rc<u8>);

#[pmap(process)]
fn read(handle: Handle) -> u8 {
    *handle.0
}

fn main() {
    let _ = read([Handle(Rc::new(1))]);
}
