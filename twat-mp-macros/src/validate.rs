//! Misuse checks: each problem is a `syn::Error` on the offending token, saying what to
//! write instead. Every problem found is reported, not only the first.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{FnArg, GenericParam, ItemFn, ReturnType, Signature, Type, TypeParamBound};

use crate::expand::{self, InnerFunction};
use crate::options::{self, Mode};
use crate::parse::{Errors, Kind, Model};

/// The four attributes, as their names are written.
const ATTRIBUTES: [&str; 4] = ["pmap", "imap", "amap", "apmap"];

/// Whether the function can be mapped at all.
pub(crate) fn signature(model: &Model) -> syn::Result<()> {
    let mut errors = Errors::default();
    check_signature(model.kind, &model.func.sig, &mut errors);
    check_stacked(model.kind, &model.func, &mut errors);
    check_never(&model.func.sig, &mut errors);
    errors.finish(())
}

/// Whether the options fit the attribute and the function: each has an effect where it is
/// written (by [`options::RULES`]), and `process` has a function it can reach. When only
/// these are wrong the mapper is still written (without its options), so that callers see
/// no further errors.
pub(crate) fn options(model: &Model) -> syn::Result<()> {
    let mut errors = Errors::default();
    options::refuse_ineffective(model.kind, &model.options, &mut errors);
    let mode = options::Mode::of(&model.options);
    if mode.remote() {
        check_process(&model.func.sig, mode, &mut errors);
    }
    if let Err(err) = result_option(model) {
        errors.push(err);
    }
    if let Err(err) = state_parameter(model) {
        errors.push(err);
    }
    errors.finish(())
}

/// With `init`, the first parameter is the worker's state, `&mut S`, and an item
/// parameter follows it.
pub(crate) fn state_parameter(model: &Model) -> syn::Result<()> {
    let Some(init) = &model.options.init else {
        return Ok(());
    };
    let name = &model.func.sig.ident;
    let function = written(&init.value);
    let Some(state) = &model.state else {
        // No parameter at all: `signature` has said so.
        return Ok(());
    };
    match &state.ty {
        Type::Reference(reference) if reference.mutability.is_some() => {}
        Type::Reference(reference) => {
            return Err(syn::Error::new_spanned(
                &state.ty,
                format!(
                    "with `init`, each item borrows its worker's state mutably: write \
                     `{pat}: &mut {pointee}`",
                    pat = written(&state.pat),
                    pointee = written(&reference.elem),
                ),
            ));
        }
        _ => {
            let params: Vec<String> = model
                .func
                .sig
                .inputs
                .iter()
                .map(|arg| match arg {
                    FnArg::Typed(typed) => {
                        format!("{}: {}", written(&typed.pat), written(&typed.ty))
                    }
                    FnArg::Receiver(receiver) => written(receiver),
                })
                .collect();
            return Err(syn::Error::new_spanned(
                &state.ty,
                format!(
                    "with `init`, the first parameter is the worker's state, `&mut S` where \
                     `{function}` returns `S`, and the item comes after it: e.g. \
                     `fn {name}(state: &mut S, {})`",
                    params.join(", "),
                ),
            ));
        }
    }
    if model.args.is_empty() {
        return Err(syn::Error::new(
            model.func.sig.paren_token.span.join(),
            format!(
                "with `init`, the state is the first parameter and the item comes after it: \
                 add the item parameter, e.g. `fn {name}({}: {}, item: T)`",
                written(&state.pat),
                written(&state.ty),
            ),
        ));
    }
    Ok(())
}

/// Whether `result` (if given) marks what it is for: a return type that is a path, as a
/// type alias is, whose name is not already recognised as a `Result`.
pub(crate) fn result_option(model: &Model) -> syn::Result<()> {
    let Some(result) = &model.options.result else {
        return Ok(());
    };
    let returned = &model.output.returned;
    let written = written(returned);
    if model.output.recognised {
        return Err(syn::Error::new(
            result.name.span(),
            format!(
                "`result` is not needed here: `{written}` is recognised as a `Result` by its \
                 name; remove `result`"
            ),
        ));
    }
    if !matches!(returned, Type::Path(_)) || plainly_not_a_result(returned) {
        return Err(syn::Error::new(
            result.name.span(),
            format!(
                "`result` marks a `Result` behind a type alias, and `{written}` is not one: \
                 remove `result`"
            ),
        ));
    }
    Ok(())
}

/// A path to a type that is not a `Result` whatever is in scope: a primitive, or a
/// well-known type of `std` written by its name.
fn plainly_not_a_result(ty: &Type) -> bool {
    const NOT_RESULTS: &[&str] = &[
        "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64", "String", "Vec", "Option", "Box", "Rc", "Arc",
        "HashMap", "HashSet", "BTreeMap", "BTreeSet", "VecDeque", "PathBuf",
    ];
    let Type::Path(path) = ty else { return false };
    path.path
        .segments
        .last()
        .is_some_and(|last| NOT_RESULTS.iter().any(|name| last.ident == name))
}

/// Whether the runtime can take the function's types in the attribute's mode: items and
/// results that it can hold (owned, where the work outlives the call or crosses to a
/// process), an error that can come back from a pool's thread, and a function of one
/// item that can be written where `Self` is visible. A problem here would otherwise be an
/// error inside the expansion; the caller writes a [stand-in](crate::expand::stand_in)
/// mapper, or, where threads would take the types, drops the options.
pub(crate) fn types(model: &Model) -> syn::Result<()> {
    let mut errors = Errors::default();
    check_borrowed(model, &mut errors);
    if options::Mode::of(&model.options) == Mode::Threads {
        check_error_is_send(model, &mut errors);
    }
    check_self(model, &mut errors);
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
fn check_process(sig: &Signature, mode: Mode, errors: &mut Errors) {
    let (option, worker) = if mode == Mode::Mpi {
        ("mpi", "an MPI rank")
    } else {
        ("process", "a worker process")
    };
    let generic = sig.generics.params.iter().find_map(|param| match param {
        GenericParam::Type(param) => Some(param.ident.span()),
        GenericParam::Const(param) => Some(param.ident.span()),
        GenericParam::Lifetime(_) => None,
    });
    if let Some(span) = generic {
        errors.push(syn::Error::new(
            span,
            format!(
                "`{option}` needs a concrete function: {worker} can only resolve a \
                 non-generic function; remove the type parameters, or map a non-generic \
                 wrapper that calls this one with concrete types"
            ),
        ));
    }
}

/// `#[pmap]` on `#[imap]`: the second would map a mapper. Refused on the second
/// attribute, which is still in the function's attributes when the first runs.
fn check_stacked(kind: Kind, func: &ItemFn, errors: &mut Errors) {
    for attr in &func.attrs {
        let path = attr.path();
        let Some(last) = path.segments.last() else {
            continue;
        };
        let ours = path.segments.len() == 1
            || path
                .segments
                .first()
                .is_some_and(|first| first.ident == "twat_mp");
        if ours && ATTRIBUTES.iter().any(|name| last.ident == name) {
            errors.push(syn::Error::new_spanned(
                attr,
                format!(
                    "only one of `#[pmap]`, `#[imap]`, `#[amap]` and `#[apmap]` per function: \
                     each turns the function of one item into a mapper, and `#[{kind}]` would \
                     not get a function of one item from `#[{other}]`; keep one of the two",
                    kind = kind.name(),
                    other = last.ident,
                ),
            ));
        }
    }
}

/// `-> !`: there would be no value to collect.
fn check_never(sig: &Signature, errors: &mut Errors) {
    let ReturnType::Type(_, returned) = &sig.output else {
        return;
    };
    let mut finder = NeverFinder::default();
    finder.visit_type(returned);
    if let Some(span) = finder.found {
        errors.push(syn::Error::new(
            span,
            "a mapped function must return a value for each item, and `!` never returns: \
             return what one item gives, e.g. `()`, or `Result<(), E>` for a function that \
             only fails",
        ));
    }
}

/// The first `!` in a type, outside `fn(..) -> !` types and `Fn(..) -> !` bounds.
#[derive(Default)]
struct NeverFinder {
    found: Option<Span>,
}

impl<'ast> Visit<'ast> for NeverFinder {
    fn visit_type_never(&mut self, never: &'ast syn::TypeNever) {
        self.found.get_or_insert(never.bang_token.span);
    }

    fn visit_type_bare_fn(&mut self, _: &'ast syn::TypeBareFn) {}

    fn visit_parenthesized_generic_arguments(
        &mut self,
        _: &'ast syn::ParenthesizedGenericArguments,
    ) {
    }
}

/// `!` in the return type becomes `()`, so that the function written back next to the
/// error above is not refused a second time, as unstable.
pub(crate) fn without_never(func: &mut ItemFn) {
    struct Unit;
    impl syn::visit_mut::VisitMut for Unit {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::Never(never) = ty {
                let span = never.bang_token.span;
                *ty = syn::parse_quote_spanned!(span=> ());
                return;
            }
            syn::visit_mut::visit_type_mut(self, ty);
        }

        fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}

        fn visit_parenthesized_generic_arguments_mut(
            &mut self,
            _: &mut syn::ParenthesizedGenericArguments,
        ) {
        }
    }
    if let ReturnType::Type(_, returned) = &mut func.sig.output {
        syn::visit_mut::VisitMut::visit_type_mut(&mut Unit, returned);
    }
}

/// Items and results that borrow, where the runtime needs them to own their data: in a
/// worker process (every reference: a process cannot borrow from another), and where the
/// work outlives the call, as with `#[imap]`, `#[amap]` and `#[apmap]` (every borrow but
/// a `'static` one). `#[pmap]` on threads blocks until every item is done: its items and
/// results may borrow.
fn check_borrowed(model: &Model, errors: &mut Errors) {
    let mode = options::Mode::of(&model.options);
    let process = mode.remote();
    if model.kind == Kind::Pmap && !process {
        return;
    }
    let attr = format!("`#[{}]`", model.kind.name());
    let why = |results: bool| -> String {
        let (what, verb) = if results {
            ("results", "are made")
        } else {
            ("items", "are mapped")
        };
        if process {
            let copied = if results {
                "copied back from"
            } else {
                "copied into"
            };
            let (option, worker) = if mode == Mode::Mpi {
                ("mpi", "an MPI rank")
            } else {
                ("process", "a worker process")
            };
            return format!(
                "{what} must own their data under `{option}`: each one is {copied} \
                 {worker}, which cannot borrow from another"
            );
        }
        let when = match model.kind {
            Kind::Imap => "lazily, on the pool's threads, after the call has returned",
            Kind::Amap => "in the background, after the call has returned",
            Kind::Apmap | Kind::Pmap => {
                "as tasks on the async pool's own threads, which \
                                         cannot hold a borrow from the caller"
            }
        };
        format!("the {what} of {attr} must own their data: they {verb} {when}")
    };
    for arg in &model.args {
        for borrow in borrows(&arg.ty, process) {
            errors.push(syn::Error::new_spanned(
                &borrow.tokens,
                format!("{}; {}", why(false), borrow.fix("take")),
            ));
        }
    }
    for borrow in borrows(&model.output.returned, process) {
        errors.push(syn::Error::new_spanned(
            &borrow.tokens,
            format!("{}; {}", why(true), borrow.fix("return")),
        ));
    }
}

/// One borrow in a type: the tokens that borrow, and the owned type to write instead.
struct Borrow {
    tokens: TokenStream,
    /// `&str` → `String`, ...; `None` for a lifetime in a type's arguments (`Cow<'a, str>`).
    owned: Option<String>,
}

impl Borrow {
    /// "take `String` instead of `&str`".
    fn fix(&self, verb: &str) -> String {
        let written = written(&self.tokens);
        match &self.owned {
            Some(owned) => format!("{verb} `{owned}` instead of `{written}`"),
            None => format!(
                "{verb} a type that owns its data instead of one that borrows for `{written}`"
            ),
        }
    }
}

/// Every borrow in `ty`: references (with `every_reference`, `'static` ones too) and
/// lifetimes other than `'static`, outside `fn(..)` types and `Fn(..)` bounds, whose
/// lifetimes are their own.
fn borrows(ty: &Type, every_reference: bool) -> Vec<Borrow> {
    struct Finder {
        every_reference: bool,
        found: Vec<Borrow>,
    }
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_reference(&mut self, reference: &'ast syn::TypeReference) {
            let forever = reference
                .lifetime
                .as_ref()
                .is_some_and(|lifetime| lifetime.ident == "static");
            if self.every_reference || !forever {
                self.found.push(Borrow {
                    tokens: reference.to_token_stream(),
                    owned: Some(owned(&reference.elem)),
                });
                return;
            }
            syn::visit::visit_type_reference(self, reference);
        }

        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if lifetime.ident != "static" {
                self.found.push(Borrow {
                    tokens: lifetime.to_token_stream(),
                    owned: None,
                });
            }
        }

        fn visit_bound_lifetimes(&mut self, _: &'ast syn::BoundLifetimes) {}

        fn visit_type_bare_fn(&mut self, _: &'ast syn::TypeBareFn) {}

        fn visit_parenthesized_generic_arguments(
            &mut self,
            _: &'ast syn::ParenthesizedGenericArguments,
        ) {
        }
    }
    let mut finder = Finder {
        every_reference,
        found: Vec::new(),
    };
    finder.visit_type(ty);
    finder.found
}

/// The owned counterpart of what a reference points to: `String` for `str`, `Vec<T>` for
/// `[T]`, `PathBuf` for `Path`, `Box<dyn Trait>` for `dyn Trait`, `T` for any other `T`.
fn owned(pointee: &Type) -> String {
    let path_named = |name: &str| match pointee {
        Type::Path(path) => path.qself.is_none() && path.path.is_ident(name),
        _ => false,
    };
    for (borrowed, owned) in [
        ("str", "String"),
        ("Path", "PathBuf"),
        ("OsStr", "OsString"),
        ("CStr", "CString"),
    ] {
        if path_named(borrowed) {
            return owned.to_owned();
        }
    }
    match pointee {
        Type::Slice(slice) => format!("Vec<{}>", written(&slice.elem)),
        Type::TraitObject(_) => format!("Box<{}>", written(pointee)),
        _ => written(pointee),
    }
}

/// `Result<R, Box<dyn Error>>` on threads: the failing item's error comes back from a
/// pool thread, so it must be `Send`, and a boxed trait object is only if it says so.
/// Other error types are judged by the runtime's `MappedError` bound, whose message says
/// the same.
fn check_error_is_send(model: &Model, errors: &mut Errors) {
    if !model.output.recognised {
        return;
    }
    let Type::Path(path) = &model.output.returned else {
        return;
    };
    let Some(last) = path.path.segments.last() else {
        return;
    };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return;
    };
    let Some(error) = args
        .args
        .iter()
        .filter_map(|arg| match arg {
            syn::GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .nth(1)
    else {
        return;
    };
    let Some(object) = boxed_trait_object(error) else {
        return;
    };
    let has = |name: &str| {
        object.bounds.iter().any(|bound| match bound {
            TypeParamBound::Trait(bound) => bound
                .path
                .segments
                .last()
                .is_some_and(|segment| segment.ident == name),
            _ => false,
        })
    };
    if has("Send") {
        return;
    }
    let added = if has("Sync") {
        " + Send"
    } else {
        " + Send + Sync"
    };
    let bounds = written(&object.bounds);
    errors.push(syn::Error::new_spanned(
        error,
        format!(
            "the error type must be `Send`, as the failing item's error comes back from the \
             pool's threads, and `{}` is not: write `Box<dyn {bounds}{added}>`",
            written(error),
        ),
    ));
}

/// `dyn Trait` when `ty` is `Box<dyn Trait>` (any path ending in `Box`).
fn boxed_trait_object(ty: &Type) -> Option<&syn::TypeTraitObject> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Box" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let inner = args.args.iter().find_map(|arg| match arg {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })?;
    let mut inner = inner;
    while let Type::Paren(paren) = inner {
        inner = &paren.elem;
    }
    match inner {
        Type::TraitObject(object) => Some(object),
        _ => None,
    }
}

/// An associated function (one that writes `Self`) whose function of one item must stay
/// an inner function, which cannot see `Self` or the impl's generics: say what to write.
fn check_self(model: &Model, errors: &mut Errors) {
    if !expand::mentions_self(&model.func) {
        return;
    }
    let Some(reason) = expand::inner_function(model) else {
        return;
    };
    let name = &model.func.sig.ident;
    let (what, fix) = match &reason {
        InnerFunction::Attribute(attr) => (
            format!(
                "`#[{}]` stays on the function of one item",
                written(attr.path())
            ),
            format!(
                "move the body into an associated function of its own that carries the \
                 attribute, and call it from `{name}`"
            ),
        ),
        InnerFunction::ImplTrait(_) => (
            "a function of one item that returns `impl Trait` stays a function".to_owned(),
            format!(
                "name the returned type, or move the body into an associated function of its \
                 own and call it from `{name}`"
            ),
        ),
        InnerFunction::Recursion(_) => return,
    };
    errors.push(syn::Error::new_spanned(
        reason.tokens(),
        format!(
            "{what}, nested inside the mapper, where `Self` and the impl's generics cannot be \
             used: {fix}"
        ),
    ));
}

/// Tokens as a person writes them: `&'a str`, `Vec<u8>`, `std::error::Error`.
pub(crate) fn written(tokens: &impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (spaced, tight) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" < ", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& '", "&'"),
        ("& ", "&"),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
    ] {
        text = text.replace(spaced, tight);
    }
    text
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
        for check in [options, signature, types] {
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
                    fn f(s: String) -> Cow<'static, str> {
                        0
                    }
                ),
            ),
            (
                Kind::Pmap,
                quote!(),
                quote!(
                    fn f<'a>(s: &'a str, t: &mut u8) -> &'a str {
                        s
                    }
                ),
            ),
            (
                Kind::Imap,
                quote!(),
                quote!(
                    fn f(s: &'static str) -> Result<&'static str, Box<dyn Error + Send>> {
                        Ok(s)
                    }
                ),
            ),
            (
                Kind::Pmap,
                quote!(result),
                quote!(
                    fn f(s: String) -> Parsed<u8> {
                        s.parse()
                    }
                ),
            ),
            (
                Kind::Pmap,
                quote!(),
                quote!(
                    fn f(x: u8) -> Self {
                        Self(x)
                    }
                ),
            ),
            (
                Kind::Pmap,
                quote!(),
                quote!(
                    #[inline]
                    fn f(x: u8) -> u8 {
                        x
                    }
                ),
            ),
            (
                Kind::Pmap,
                quote!(process),
                quote!(
                    fn f(x: u8) -> Result<u8, Box<dyn Error>> {
                        Ok(x)
                    }
                ),
            ),
            (
                Kind::Pmap,
                quote!(),
                quote!(
                    fn f(x: fn(&str) -> &str, g: Box<dyn for<'a> Fn(&'a u8)>) {}
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
        if !cfg!(feature = "progress") {
            assert!(
                problem(
                    Kind::Pmap,
                    quote!(progress),
                    quote!(
                        fn f(x: u8) {}
                    )
                )
                .starts_with("`progress` needs twat-mp's `progress` feature: add")
            );
        }
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
            ("concurrency = 2", "fn f(x: u8) {}", "concurrency"),
        ]
        .into_iter()
        // Without twat-mp's `progress` feature, the option is refused on its name.
        .chain((!cfg!(feature = "progress")).then_some((
            "progress",
            "fn f(x: u8) {}",
            "progress",
        ))) {
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

    /// Where the run of tokens `text` starts and ends in `item`, at any depth.
    fn spanning(item: &TokenStream, text: &str) -> ((usize, usize), (usize, usize)) {
        fn search(
            tokens: TokenStream,
            want: &[String],
        ) -> Option<((usize, usize), (usize, usize))> {
            let tokens: Vec<proc_macro2::TokenTree> = tokens.into_iter().collect();
            for start in 0..tokens.len() {
                let run = &tokens[start..(start + want.len()).min(tokens.len())];
                if run.len() == want.len()
                    && run
                        .iter()
                        .zip(want)
                        .all(|(token, text)| token.to_string() == *text)
                {
                    let (from, _) = place(run[0].span());
                    let (_, to) = place(run[run.len() - 1].span());
                    return Some((from, to));
                }
            }
            tokens.into_iter().find_map(|token| match token {
                proc_macro2::TokenTree::Group(group) => search(group.stream(), want),
                _ => None,
            })
        }
        let text: TokenStream = text.parse().unwrap();
        let want: Vec<String> = text.into_iter().map(|token| token.to_string()).collect();
        search(item.clone(), &want).unwrap_or_else(|| panic!("no `{want:?}` in `{item}`"))
    }

    /// Where items and results may borrow, and where they must own their data: each borrow
    /// is refused on its own tokens, with the owned type to write.
    #[test]
    fn borrowed_items_and_results() {
        for (kind, attr, item, at, expected) in [
            (
                Kind::Pmap,
                "process",
                "fn f(s: &str) -> usize { 0 }",
                "&str",
                "items must own their data under `process`: each one is copied into a worker \
                 process, which cannot borrow from another; take `String` instead of `&str`",
            ),
            (
                Kind::Pmap,
                "process",
                "fn f(s: u8) -> &'static str { \"\" }",
                "&'static str",
                "results must own their data under `process`: each one is copied back from a \
                 worker process, which cannot borrow from another; return `String` instead of \
                 `&'static str`",
            ),
            (
                Kind::Imap,
                "",
                "fn f(s: &str) -> usize { 0 }",
                "&str",
                "the items of `#[imap]` must own their data: they are mapped lazily, on the \
                 pool's threads, after the call has returned; take `String` instead of `&str`",
            ),
            (
                Kind::Amap,
                "",
                "fn f(s: &[u64]) -> u64 { 0 }",
                "&[u64]",
                "the items of `#[amap]` must own their data: they are mapped in the background, \
                 after the call has returned; take `Vec<u64>` instead of `&[u64]`",
            ),
            (
                Kind::Apmap,
                "",
                "async fn f<'a>(p: &'a Path) -> u64 { 0 }",
                "&'a Path",
                "take `PathBuf` instead of `&'a Path`",
            ),
            (
                Kind::Imap,
                "process",
                "fn f(s: &mut Job) -> u64 { 0 }",
                "&mut Job",
                "take `Job` instead of `&mut Job`",
            ),
            (
                Kind::Amap,
                "",
                "fn f(s: u8) -> Vec<&dyn Debug> { vec![] }",
                "&dyn Debug",
                "the results of `#[amap]` must own their data: they are made in the background, \
                 after the call has returned; return `Box<dyn Debug>` instead of `&dyn Debug`",
            ),
            (
                Kind::Imap,
                "",
                "fn f(s: Cow<'static, str>, t: Cow<'_, str>) -> u64 { 0 }",
                "'_",
                "take a type that owns its data instead of one that borrows for `'_`",
            ),
            (
                Kind::Imap,
                "",
                "fn f((a, b): (u8, &str)) -> u64 { 0 }",
                "&str",
                "take `String` instead of `&str`",
            ),
        ] {
            let attr: TokenStream = attr.parse().unwrap();
            let item: TokenStream = item.parse().unwrap();
            let model =
                parse_function(kind, checked(kind, attr.clone()).unwrap(), item.clone()).unwrap();
            let err = validate(&model).unwrap_err();
            assert_eq!(err.clone().into_iter().count(), 1, "{item}: {err}");
            let message = err.to_string();
            assert!(message.ends_with(expected), "{item}: {message}");
            assert_eq!(place(err.span()), spanning(&item, at), "{item}: {message}");
        }
        // Every borrow, items and results, is reported at once.
        assert_eq!(
            problems(
                Kind::Imap,
                quote!(),
                quote!(
                    fn f(a: &str, b: &[u8]) -> &str {
                        a
                    }
                )
            )
            .len(),
            3
        );
    }

    #[test]
    fn a_boxed_error_must_be_send() {
        for (error, fix) in [
            (
                quote!(Box<dyn Error>),
                "write `Box<dyn Error + Send + Sync>`",
            ),
            (
                quote!(Box<dyn std::error::Error + 'static>),
                "write `Box<dyn std::error::Error + 'static + Send + Sync>`",
            ),
            (
                quote!(Box<dyn Error + Sync>),
                "write `Box<dyn Error + Sync + Send>`",
            ),
        ] {
            for kind in [Kind::Pmap, Kind::Imap, Kind::Amap] {
                let item = quote!(fn f(s: String) -> Result<u8, #error> { Ok(0) });
                let found = problem(kind, quote!(), item.clone());
                assert!(
                    found.starts_with(
                        "the error type must be `Send`, as the failing item's error comes back \
                         from the pool's threads, and `Box<dyn"
                    ) && found.ends_with(fix),
                    "{item}: {found}"
                );
            }
        }
        let item = quote!(
            async fn f(s: String) -> Result<u8, Box<dyn Error>> {
                Ok(0)
            }
        );
        let found = problem(Kind::Apmap, quote!(), item);
        assert!(
            found.starts_with("the error type must be `Send`"),
            "{found}"
        );
        for error in [
            quote!(Box<dyn Error + Send + Sync>),
            quote!(Box<dyn Error + Send>),
            quote!(Box<String>),
            quote!(io::Error),
        ] {
            let item = quote!(fn f(s: String) -> Result<u8, #error> { Ok(0) });
            assert!(
                problems(Kind::Pmap, quote!(), item.clone()).is_empty(),
                "{item}"
            );
        }
        let item: TokenStream = "fn f(s: String) -> Result<u8, Box<dyn Error>> { Ok(0) }"
            .parse()
            .unwrap();
        let model = parse_function(Kind::Pmap, Options::default(), item.clone()).unwrap();
        let err = validate(&model).unwrap_err();
        assert_eq!(place(err.span()), spanning(&item, "Box<dyn Error>"));
    }

    #[test]
    fn one_attribute_per_function() {
        for (kind, item, second) in [
            (
                Kind::Pmap,
                quote!(
                    #[imap]
                    fn f(x: u8) -> u8 {
                        x
                    }
                ),
                "imap",
            ),
            (
                Kind::Imap,
                quote!(
                    #[twat_mp::amap]
                    fn f(x: u8) -> u8 {
                        x
                    }
                ),
                "amap",
            ),
            (
                Kind::Pmap,
                quote!(
                    #[pmap(nodes = 2)]
                    fn f(x: u8) -> u8 {
                        x
                    }
                ),
                "pmap",
            ),
        ] {
            let found = problem(kind, quote!(), item.clone());
            assert_eq!(
                found,
                format!(
                    "only one of `#[pmap]`, `#[imap]`, `#[amap]` and `#[apmap]` per function: \
                     each turns the function of one item into a mapper, and `#[{}]` would not \
                     get a function of one item from `#[{second}]`; keep one of the two",
                    kind.name()
                ),
                "{item}"
            );
        }
        let item: TokenStream = "#[inline] #[imap(ordered = false)] fn f(x: u8) -> u8 { x }"
            .parse()
            .unwrap();
        let model = parse_function(Kind::Pmap, Options::default(), item.clone()).unwrap();
        let err = validate(&model).unwrap_err();
        // The `#` of the second attribute.
        let second = item.clone().into_iter().nth(2).unwrap().span();
        assert_eq!(place(err.span()).0, place(second).0);
        // Attributes of other crates that share a name are not ours.
        assert!(
            problems(
                Kind::Pmap,
                quote!(),
                quote!(
                    #[other::imap]
                    fn f(x: u8) -> u8 {
                        x
                    }
                )
            )
            .is_empty()
        );
    }

    #[test]
    fn a_mapped_function_returns_a_value() {
        for ret in ["!", "Result<!, String>"] {
            let item: TokenStream = format!("fn f(x: u8) -> {ret} {{ loop {{}} }}")
                .parse()
                .unwrap();
            let model = parse_function(Kind::Pmap, Options::default(), item.clone()).unwrap();
            let err = validate(&model).unwrap_err();
            assert!(
                err.to_string().starts_with(
                    "a mapped function must return a value for each item, and `!` never returns"
                ),
                "{err}"
            );
            assert_eq!(place(err.span()), place(find(&item, "!")));
            let mut func = model.func.clone();
            without_never(&mut func);
            assert!(!quote!(#func).to_string().contains('!'), "{ret}");
        }
        assert!(
            problems(
                Kind::Pmap,
                quote!(),
                quote!(
                    fn f(x: fn() -> !) -> u8 {
                        0
                    }
                )
            )
            .is_empty()
        );
    }

    #[test]
    fn the_result_option_marks_what_it_is_for() {
        for (ret, expected) in [
            (
                "io::Result<u8>",
                "`result` is not needed here: `io::Result<u8>` is recognised as a `Result` by \
                 its name; remove `result`",
            ),
            (
                "fmt::Result",
                "`result` is not needed here: `fmt::Result` is recognised",
            ),
            (
                "(u8, u8)",
                "`result` marks a `Result` behind a type alias, and `(u8, u8)` is not one: \
                 remove `result`",
            ),
            ("u8", "and `u8` is not one"),
            ("Option<Parsed<u8>>", "and `Option<Parsed<u8>>` is not one"),
        ] {
            let item: TokenStream = format!("fn f(x: u8) -> {ret} {{ todo!() }}")
                .parse()
                .unwrap();
            let attr: TokenStream = "nodes = 2, result".parse().unwrap();
            let options = checked(Kind::Pmap, attr.clone()).unwrap();
            let model = parse_function(Kind::Pmap, options, item).unwrap();
            let err = validate(&model).unwrap_err();
            assert!(err.to_string().contains(expected), "{ret}: {err}");
            assert_eq!(place(err.span()), place(find(&attr, "result")));
        }
        // No return type at all is `()`.
        let found = problem(
            Kind::Pmap,
            quote!(result),
            quote!(
                fn f(x: u8) {}
            ),
        );
        assert!(found.contains("and `()` is not one"), "{found}");
    }

    /// An associated function maps as a free one does; where its function of one item must
    /// stay an inner function, which cannot see `Self`, the error says what to write.
    #[test]
    fn associated_functions() {
        for item in [
            quote!(
                fn f(x: u8) -> Self {
                    Self(x)
                }
            ),
            quote!(
                fn f(x: u8) -> u8 {
                    x * Self::K
                }
            ),
            quote!(
                fn f(x: Self) -> u8 {
                    0
                }
            ),
            // `f` on its own is not `Self::f`: no recursion to keep.
            quote!(
                fn f(x: u8) -> Self {
                    f(Self::new(x))
                }
            ),
        ] {
            assert!(
                problems(Kind::Pmap, quote!(), item.clone()).is_empty(),
                "{item}"
            );
        }
        let item: TokenStream = "#[tracing::instrument] fn f(x: u8) -> Self { Self(x) }"
            .parse()
            .unwrap();
        let model = parse_function(Kind::Pmap, Options::default(), item.clone()).unwrap();
        let err = validate(&model).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`#[tracing::instrument]` stays on the function of one item, nested inside the \
             mapper, where `Self` and the impl's generics cannot be used: move the body into an \
             associated function of its own that carries the attribute, and call it from `f`"
        );
        assert_eq!(place(err.span()), spanning(&item, "#[tracing::instrument]"));
        let found = problem(
            Kind::Pmap,
            quote!(),
            quote!(
                fn f(x: u8) -> impl Display {
                    Self::show(x)
                }
            ),
        );
        assert!(
            found.starts_with(
                "a function of one item that returns `impl Trait` stays a function, nested \
                 inside the mapper"
            ) && found.ends_with(
                "name the returned type, or move the body into an associated \
                                  function of its own and call it from `f`"
            ),
            "{found}"
        );
    }
}
