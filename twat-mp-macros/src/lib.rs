//! Placeholder: the attributes are being written.
use proc_macro::TokenStream;

/// Parallel map.
#[proc_macro_attribute]
pub fn pmap(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
/// Lazy parallel map.
#[proc_macro_attribute]
pub fn imap(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
/// Background parallel map.
#[proc_macro_attribute]
pub fn amap(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
