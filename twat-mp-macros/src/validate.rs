//! Misuse checks: each problem is a `syn::Error` on the offending token, saying what to
//! write instead. Every problem found is reported, not only the first.

use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{FnArg, GenericParam, Signature};

use crate::options;
use crate::parse::{Errors, Kind, Model};

/// Whether the function can be mapped at all.
pub(crate) fn signature(model: &Model) -> syn::Result<()> {
    let mut errors = Errors::default();
    check_signature(model.kind, &model.func.sig, &mut errors);
    errors.finish(())
}

/// Whether the options fit the attribute and the function: each has an effect where it is
/// written (by [`options::RULES`]), and `process` has a function it can reach. When only
/// these are wrong the mapper is still written (without its options), so that callers see
/// no further errors.
pub(crate) fn options(model: &Model) -> syn::Result<()> {
    let mut errors = Errors::default();
    options::refuse_ineffective(model.kind, &model.options, &mut errors);
    if model.options.process.is_some() {
        check_process(&model.func.sig, &mut errors);
    }
    errors.finish(())
}

fn check_signature(kind: Kind, sig: &Signature, errors: &mut Errors) {
    let attr = format!("`#[{}]`", kind.name());
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            format!(
                "a `const fn` cannot be mapped: {attr} makes a function that runs its items on a \
                 pool at run time, which is never `const`; remove `const`, or map a plain `fn` \
                 that calls this one"
            ),
        ));
    }
    match (&sig.asyncness, kind) {
        (Some(asyncness), Kind::Pmap | Kind::Imap | Kind::Amap) => errors.push(syn::Error::new(
            asyncness.span,
            format!(
                "{attr} maps a plain `fn`: for an `async fn` use `#[apmap]` (twat-mp's `aio` \
                 feature), or remove `async`"
            ),
        )),
        (None, Kind::Apmap) => errors.push(syn::Error::new(
            sig.fn_token.span,
            "`#[apmap]` maps an `async fn`: write `async fn`, or use `#[pmap]` for a plain `fn`",
        )),
        _ => {}
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new(
            unsafety.span,
            format!(
                "an `unsafe fn` cannot be mapped: {attr} would call it on every item with no \
                 `unsafe` block to uphold its contract; make the function safe, with an \
                 `unsafe {{ ... }}` block and its safety argument inside"
            ),
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new(
            abi.extern_token.span,
            format!(
                "an `extern` fn cannot be mapped: {attr} makes a Rust function over many items; \
                 remove the ABI, or map a Rust `fn` that calls this one"
            ),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new(
            variadic.span(),
            "a variadic fn cannot be mapped: each item must fill a fixed list of parameters",
        ));
    }
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new(
                receiver.self_token.span,
                format!(
                    "a method cannot be mapped: make it a free function that takes the item, \
                     e.g. `fn {}(item: T)`, with what it needs from `self` inside the item",
                    sig.ident
                ),
            )),
            FnArg::Typed(typed) => {
                let mut finder = ImplTraitFinder::default();
                finder.visit_type(&typed.ty);
                for span in finder.found {
                    errors.push(syn::Error::new(
                        span,
                        "`impl Trait` cannot be an item type: the mapper takes items of one \
                         named type; use a generic parameter (`fn f<T: Trait>(x: T)`) or a \
                         concrete type",
                    ));
                }
            }
        }
    }
    if sig.inputs.is_empty() && sig.variadic.is_none() {
        errors.push(syn::Error::new(
            sig.paren_token.span.join(),
            format!(
                "{attr} maps the function over items, but it has no parameter: add the item \
                 parameter, e.g. `fn {}(item: T)`",
                sig.ident
            ),
        ));
    }
}

/// A worker process finds the function by a name fixed at compile time: a generic one
/// has no single instance to find.
fn check_process(sig: &Signature, errors: &mut Errors) {
    let generic = sig.generics.params.iter().find_map(|param| match param {
        GenericParam::Type(param) => Some(param.ident.span()),
        GenericParam::Const(param) => Some(param.ident.span()),
        GenericParam::Lifetime(_) => None,
    });
    if let Some(span) = generic {
        errors.push(syn::Error::new(
            span,
            "`process` needs a concrete function: a worker process can only resolve a \
             non-generic function; remove the type parameters, or map a non-generic wrapper \
             that calls this one with concrete types",
        ));
    }
}

/// The `impl` tokens of every `impl Trait` in a type.
#[derive(Default)]
struct ImplTraitFinder {
    found: Vec<proc_macro2::Span>,
}

impl<'ast> Visit<'ast> for ImplTraitFinder {
    fn visit_type_impl_trait(&mut self, ty: &'ast syn::TypeImplTrait) {
        self.found.push(ty.impl_token.span);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tests::{checked, find, place};
    use crate::parse::{Options, parse_function};
    use proc_macro2::TokenStream;
    use quote::quote;

    fn validate(model: &Model) -> syn::Result<()> {
        let mut errors = Errors::default();
        for check in [options, signature] {
            if let Err(err) = check(model) {
                errors.push(err);
            }
        }
        errors.finish(())
    }

    fn problems(kind: Kind, attr: TokenStream, item: TokenStream) -> Vec<String> {
        let options = checked(kind, attr).unwrap();
        let model = parse_function(kind, options, item).unwrap();
        match validate(&model) {
            Ok(()) => Vec::new(),
            Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn problem(kind: Kind, attr: TokenStream, item: TokenStream) -> String {
        let all = problems(kind, attr, item);
        assert_eq!(all.len(), 1, "{all:#?}");
        all.into_iter().next().unwrap()
    }

    #[test]
    fn accepts_good_uses() {
        for (kind, attr, item) in [
            (
                Kind::Pmap,
                quote!(),
                quote!(
                    fn f(x: u8) -> u8 {
                        x
                    }
                ),
            ),
            (
                Kind::Pmap,
                quote!(nodes = 2, chunksize = 8, debug),
                quote!(
                    pub fn f(a: u8, b: &str) {}
                ),
            ),
            (
                Kind::Pmap,
                quote!(process, timeout = "5s"),
                quote!(
                    fn f<'a>(s: &'a str) -> usize {
                        0
                    }
                ),
            ),
            (
                Kind::Imap,
                quote!(ordered = false),
                quote!(
                    fn f<T: Clone>(x: T) -> T {
                        x
                    }
                ),
            ),
            (
                Kind::Amap,
                quote!(process),
                quote!(
                    fn f(x: u8) -> Result<u8, E> {
                        Ok(x)
                    }
                ),
            ),
            (
                Kind::Apmap,
                quote!(concurrency = 8, timeout = "1s"),
                quote!(
                    async fn f(x: u8) {}
                ),
            ),
            (
                Kind::Pmap,
                quote!(),
                quote!(
                    fn f(x: Box<dyn Fn(u8) -> u8>) {}
                ),
            ),
        ] {
            assert_eq!(
                problems(kind, attr, item.clone()),
                Vec::<String>::new(),
                "{item}"
            );
        }
    }

    #[test]
    fn option_misuse() {
        assert!(
            problem(
                Kind::Pmap,
                quote!(ordered = false),
                quote!(
                    fn f(x: u8) {}
                )
            )
            .starts_with("`ordered` is an option of `#[imap]` only: `#[pmap]` always")
        );
        assert!(
            problem(
                Kind::Amap,
                quote!(ordered = true),
                quote!(
                    fn f(x: u8) {}
                )
            )
            .contains("`#[amap]` always gives the results in input order")
        );
        assert!(
            problem(
                Kind::Pmap,
                quote!(concurrency = 2),
                quote!(
                    fn f(x: u8) {}
                )
            )
            .contains("is an option of `#[apmap]` only")
        );
        assert!(
            problem(
                Kind::Imap,
                quote!(timeout = "5s"),
                quote!(
                    fn f(x: u8) {}
                )
            )
            .starts_with("`timeout` needs `process`")
        );
        assert!(
            problem(
                Kind::Pmap,
                quote!(progress),
                quote!(
                    fn f(x: u8) {}
                )
            )
            .starts_with("`progress` is not available yet: progress bars are planned")
        );
    }

    #[test]
    fn signature_misuse() {
        for (kind, item, expected) in [
            (
                Kind::Pmap,
                quote!(
                    fn answer() -> u8 {
                        42
                    }
                ),
                "add the item parameter, e.g. `fn answer(item: T)`",
            ),
            (
                Kind::Pmap,
                quote!(
                    fn m(&self, x: u8) {}
                ),
                "a method cannot be mapped",
            ),
            (
                Kind::Imap,
                quote!(
                    fn m(self) {}
                ),
                "a method cannot be mapped",
            ),
            (
                Kind::Pmap,
                quote!(
                    async fn f(x: u8) {}
                ),
                "for an `async fn` use `#[apmap]`",
            ),
            (
                Kind::Amap,
                quote!(
                    async fn f(x: u8) {}
                ),
                "`#[amap]` maps a plain `fn`",
            ),
            (
                Kind::Apmap,
                quote!(
                    fn f(x: u8) {}
                ),
                "`#[apmap]` maps an `async fn`: write `async fn`, or use `#[pmap]`",
            ),
            (
                Kind::Pmap,
                quote!(
                    unsafe fn f(x: u8) {}
                ),
                "an `unsafe fn` cannot be mapped",
            ),
            (
                Kind::Pmap,
                quote!(
                    extern "C" fn f(x: u8) {}
                ),
                "an `extern` fn cannot be mapped",
            ),
            (
                Kind::Pmap,
                quote!(
                    const fn f(x: u8) {}
                ),
                "a `const fn` cannot be mapped",
            ),
            (
                Kind::Pmap,
                quote!(
                    fn f(x: impl Clone) {}
                ),
                "`impl Trait` cannot be an item type",
            ),
            (
                Kind::Pmap,
                quote!(
                    fn f(x: Vec<impl Clone>) {}
                ),
                "use a generic parameter",
            ),
        ] {
            let found = problem(kind, quote!(), item.clone());
            assert!(found.contains(expected), "{item}: {found}");
        }
        let found = problems(
            Kind::Pmap,
            quote!(),
            quote!(
                unsafe extern "C" fn f(x: u8, ...) {}
            ),
        );
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[2].starts_with("a variadic fn cannot be mapped"));
    }

    #[test]
    fn process_needs_a_concrete_function() {
        let found = problem(
            Kind::Pmap,
            quote!(process),
            quote!(
                fn f<T>(x: T) {}
            ),
        );
        assert!(
            found.starts_with("`process` needs a concrete function"),
            "{found}"
        );
        assert!(
            !problems(
                Kind::Pmap,
                quote!(process),
                quote!(
                    fn f<const N: usize>(x: [u8; N]) {}
                )
            )
            .is_empty()
        );
        assert!(
            problems(
                Kind::Pmap,
                quote!(),
                quote!(
                    fn f<T>(x: T) {}
                )
            )
            .is_empty()
        );
    }

    #[test]
    fn errors_point_at_the_offending_token() {
        for (attr, item, at) in [
            ("", "async fn f(x: u8) {}", "async"),
            ("", "fn f() {}", "()"),
            ("", "fn m(&self, x: u8) {}", "self"),
            ("", "fn m(mut self: Box<Self>, x: u8) {}", "self"),
            ("", "fn f(x: Vec<impl Clone>) {}", "impl"),
            ("", "const fn f(x: u8) {}", "const"),
            ("", "unsafe fn f(x: u8) {}", "unsafe"),
            ("", "extern \"C\" fn f(x: u8) {}", "extern"),
            ("process", "fn f<'a, T: Clone>(x: &'a T) {}", "T"),
            ("ordered = true", "fn f(x: u8) {}", "ordered"),
            ("timeout = \"1s\"", "fn f(x: u8) {}", "timeout"),
            ("progress", "fn f(x: u8) {}", "progress"),
            ("concurrency = 2", "fn f(x: u8) {}", "concurrency"),
        ] {
            let attr: TokenStream = attr.parse().unwrap();
            let item: TokenStream = item.parse().unwrap();
            let options = checked(Kind::Pmap, attr.clone()).unwrap();
            let model = parse_function(Kind::Pmap, options, item.clone()).unwrap();
            let err = validate(&model).unwrap_err();
            let at = if attr.to_string().contains(at) {
                find(&attr, at)
            } else {
                find(&item, at)
            };
            assert_eq!(place(err.span()), place(at), "{attr} {item}");
        }
        let item: TokenStream = "fn f(x: u8) {}".parse().unwrap();
        let model = parse_function(Kind::Apmap, Options::default(), item.clone()).unwrap();
        let err = validate(&model).unwrap_err();
        assert_eq!(place(err.span()), place(find(&item, "fn")));
    }
}
