//! The model → the mapper's tokens.
//!
//! ```text
//! #[pmap(nodes = 4)] pub fn square(x: u64) -> u64 { x * x }
//! ```
//! becomes
//! ```text
//! pub fn square(items: impl ::core::iter::IntoIterator<Item = u64>) -> ::std::vec::Vec<u64> {
//!     ::twat_mp::__private::pmap(
//!         &::twat_mp::__private::Config { nodes: ::core::option::Option::Some(4), ..::twat_mp::__private::Config::DEFAULT },
//!         ::twat_mp::__render!(u64),
//!         |x: u64| -> u64 { x * x },
//!         items,
//!     )
//! }
//! ```
//! The user's function of one item becomes the closure handed to the pool, with its
//! parameters, return type and body as written: a closure sees what the function saw,
//! `Self` and the impl's generics included (an associated function maps as a free one
//! does). Where a closure cannot be what the function was — it carries attributes of its
//! own (`#[inline]`, `#[tracing::instrument]`), calls itself by name, or returns
//! `impl Trait` — the function stays as written, as an inner function of the same name
//! that the closure calls ([`inner_function`]). The outer function keeps its visibility,
//! docs, lint and `cfg` attributes, generics and where clause.

use std::collections::BTreeSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{
    Attribute, GenericArgument, GenericParam, Ident, ItemFn, Lifetime, LifetimeParam, Pat,
    PathArguments, ReturnType, Token, Type, TypeParamBound, Visibility, WherePredicate,
};

use crate::parse::{Kind, Model, Options, Output};

/// The mapper that replaces the function.
pub(crate) fn expand(model: &Model) -> TokenStream {
    mapper(model, Body::Runtime)
}

/// The mapper's signature over a body that never runs, for a function whose types the
/// runtime would refuse: written next to the errors that say why (the program does not
/// build), it keeps the function's callers, and the expansion itself, free of follow-on
/// errors inside the library.
pub(crate) fn stand_in(model: &Model) -> TokenStream {
    mapper(model, Body::StandIn)
}

/// What the mapper's body does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Calls the runtime: the real mapper.
    Runtime,
    /// Nothing that runs: see [`stand_in`].
    StandIn,
}

fn mapper(model: &Model, body: Body) -> TokenStream {
    let func = &model.func;
    let name = &func.sig.ident;
    let (outer_attrs, inner_attrs) = split_attributes(&func.attrs);

    // Elided lifetimes (`&str`, `'_`) cannot stay elided inside `impl IntoIterator<..>`:
    // they become one named lifetime, as elision would give the function's output.
    let mut generics = func.sig.generics.clone();
    let mut naming = NameElided::new(&generics);
    let mut arg_types: Vec<Type> = model.args.iter().map(|arg| arg.ty.clone()).collect();
    arg_types
        .iter_mut()
        .for_each(|ty| naming.visit_type_mut(ty));
    let mut output = model.output.clone();
    naming.visit_type_mut(&mut output.returned);
    if let Some(ok) = &mut output.ok {
        naming.visit_type_mut(ok);
    }
    if naming.used {
        let param = LifetimeParam::new(naming.lifetime.clone());
        generics.params.insert(0, GenericParam::Lifetime(param));
    }

    let item_ty: Type = match arg_types.as_slice() {
        [single] => single.clone(),
        several => syn::parse_quote!((#(#several),*)),
    };
    // Hygienic, but an inner fn (an item of the body) would still shadow it by its name.
    let items = if *name == "items" { "items_" } else { "items" };
    let items = Ident::new(items, Span::mixed_site());

    let returns = outer_return_type(model, &output);
    add_send_bounds(model.kind, &mut generics, &item_ty, &output.returned);
    let where_clause = &generics.where_clause;

    let items_ty = if model.kind == Kind::Imap {
        // The runtime pulls the input on a thread of its own: it must own it and be able
        // to move there (`LazyInput` says so in the error when it cannot).
        quote!(impl ::core::iter::IntoIterator<Item = #item_ty, IntoIter: ::twat_mp::LazyInput>)
    } else {
        quote!(impl ::core::iter::IntoIterator<Item = #item_ty>)
    };
    let asyncness = (model.kind == Kind::Apmap).then(|| quote!(async));
    // A failure re-raised as a panic is reported at the user's call of this function, not
    // at a line inside twat-mp (an `async fn` cannot track its caller: there it is the
    // function's own line).
    let already_tracked = outer_attrs
        .iter()
        .any(|attr| attr.path().is_ident("track_caller"));
    let track_caller =
        (model.kind != Kind::Apmap && !already_tracked).then(|| quote!(#[track_caller]));
    let vis = &func.vis;
    let statements = match body {
        Body::Runtime => {
            let (inner, closure) = match inner_function(model) {
                None => (None, closure(model, &arg_types, &output.returned)),
                Some(_) => {
                    let inner = ItemFn {
                        attrs: inner_attrs,
                        vis: Visibility::Inherited,
                        ..func.clone()
                    };
                    (Some(inner), calling_closure(model, name, &item_ty))
                }
            };
            let runtime = runtime_function(model);
            let config = config(&model.options);
            let ordered = (model.kind == Kind::Imap).then(|| {
                let ordered = model.options.ordered.as_ref().is_none_or(|o| o.value);
                quote!(#ordered,)
            });
            // `init`, checked against the state the function takes, so that a mismatch is
            // reported on `init` itself; with `process`, as a function pointer that a
            // worker process can find, as the function of one item is.
            let init = model.options.init.as_ref().map(|init| {
                let init = &init.value;
                let state = match model.state.as_ref().map(|state| &state.ty) {
                    Some(Type::Reference(reference)) => {
                        let state = &reference.elem;
                        quote!(#state)
                    }
                    _ => quote!(_),
                };
                let span = init
                    .clone()
                    .into_iter()
                    .next()
                    .map_or_else(Span::call_site, |t| t.span());
                if crate::options::Mode::of(&model.options).remote() {
                    quote_spanned!(span=> ::twat_mp::__private::state_init_process::<#state>(#init),)
                } else {
                    quote_spanned!(span=> ::twat_mp::__private::state_init::<#state, _>(#init),)
                }
            });
            let mut call = quote! {
                ::twat_mp::__private::#runtime(#config, #ordered ::twat_mp::__render!(#item_ty), #init #closure, #items)
            };
            if model.kind == Kind::Apmap {
                call = quote!(#call.await);
            }
            quote!(#inner #call)
        }
        Body::StandIn if model.kind == Kind::Imap => {
            quote!(let _ = #items; ::core::iter::empty())
        }
        Body::StandIn => quote!(let _ = #items; loop {}),
    };
    quote! {
        #(#outer_attrs)*
        #track_caller
        #vis #asyncness fn #name #generics(#items: #items_ty) -> #returns #where_clause {
            #statements
        }
    }
}

/// Why the function of one item must stay a function (an inner one) rather than become
/// a closure, and the token that makes it so.
pub(crate) enum InnerFunction {
    /// An attribute other than those the mapper takes over (`#[inline]`, ...).
    Attribute(Box<Attribute>),
    /// The body calls the function by its name: an inner function of that name is what
    /// the call reaches, as in the function as written.
    Recursion(Ident),
    /// A closure cannot declare `impl Trait` as its return type.
    ImplTrait(Box<syn::TypeImplTrait>),
}

impl InnerFunction {
    /// The tokens to point at.
    pub(crate) fn tokens(&self) -> TokenStream {
        match self {
            InnerFunction::Attribute(attr) => attr.to_token_stream(),
            InnerFunction::Recursion(ident) => ident.to_token_stream(),
            InnerFunction::ImplTrait(ty) => ty.to_token_stream(),
        }
    }
}

/// `None` when the function of one item becomes a closure (the usual case).
pub(crate) fn inner_function(model: &Model) -> Option<InnerFunction> {
    let func = &model.func;
    if let Some(attr) = split_attributes(&func.attrs).1.into_iter().next() {
        return Some(InnerFunction::Attribute(Box::new(attr)));
    }
    if let ReturnType::Type(_, returned) = &func.sig.output {
        let mut finder = ImplTraitFinder(None);
        finder.visit_type(returned);
        if let Some(found) = finder.0 {
            return Some(InnerFunction::ImplTrait(Box::new(found)));
        }
    }
    // Inside an `impl`, where `Self` is written, a bare name never reaches the function
    // itself (that is `Self::name`): no recursion to keep.
    if !mentions_self(func) {
        if let Some(call) = bare_use(func.block.to_token_stream(), &func.sig.ident) {
            return Some(InnerFunction::Recursion(call));
        }
    }
    None
}

/// Whether `Self` appears anywhere in the function: it is then an associated function.
pub(crate) fn mentions_self(func: &ItemFn) -> bool {
    fn search(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            TokenTree::Ident(ident) => ident == "Self",
            TokenTree::Group(group) => search(group.stream()),
            _ => false,
        })
    }
    search(func.sig.to_token_stream()) || search(func.block.to_token_stream())
}

/// The first use of `name` on its own (not `x.name` or `path::name`), at any depth,
/// macro arguments included.
fn bare_use(tokens: TokenStream, name: &Ident) -> Option<Ident> {
    let mut previous: [Option<TokenTree>; 2] = [None, None];
    for token in tokens {
        match &token {
            TokenTree::Ident(ident) if ident == name => {
                let dotted = is_punct(&previous[1], '.');
                let pathed = is_punct(&previous[1], ':') && is_punct(&previous[0], ':');
                if !dotted && !pathed {
                    return Some(ident.clone());
                }
            }
            TokenTree::Group(group) => {
                if let Some(found) = bare_use(group.stream(), name) {
                    return Some(found);
                }
            }
            _ => {}
        }
        previous = [previous[1].take(), Some(token)];
    }
    None
}

/// Whether `token` is the punctuation `c`.
fn is_punct(token: &Option<TokenTree>, c: char) -> bool {
    matches!(token, Some(TokenTree::Punct(punct)) if punct.as_char() == c)
}

/// The first `impl Trait` in a type.
struct ImplTraitFinder(Option<syn::TypeImplTrait>);

impl<'ast> Visit<'ast> for ImplTraitFinder {
    fn visit_type_impl_trait(&mut self, ty: &'ast syn::TypeImplTrait) {
        if self.0.is_none() {
            self.0 = Some(ty.clone());
        }
    }
}

/// Docs, lint levels, `cfg`, `deprecated` and `must_use` describe the function users call:
/// the outer one. Everything else (`#[inline]`, `#[tracing::instrument]`, ...) acts on the
/// code of one item: the inner one. Lint levels on the outer function reach the inner one.
fn split_attributes(attrs: &[Attribute]) -> (Vec<Attribute>, Vec<Attribute>) {
    const OUTER: &[&str] = &[
        "doc",
        "cfg",
        "cfg_attr",
        "allow",
        "warn",
        "deny",
        "forbid",
        "expect",
        "deprecated",
        "must_use",
    ];
    attrs
        .iter()
        .cloned()
        .partition(|attr| OUTER.iter().any(|name| attr.path().is_ident(name)))
}

/// The function of one item as a closure: `|x: T| -> R { body }`, or
/// `|(a, b): (A, B)| -> R { body }` for several parameters, with the user's own patterns,
/// types (elided lifetimes named) and body. For an `async fn`, a closure whose future
/// gives the body's value as `R` (so that it is coerced to `R` as a function's would be).
fn closure(model: &Model, arg_types: &[Type], returned: &Type) -> TokenStream {
    let pats: Vec<&Pat> = model.args.iter().map(|arg| &arg.pat).collect();
    let mut params = match (pats.as_slice(), arg_types) {
        ([pat], [ty]) => quote!(#pat: #ty),
        _ => quote!((#(#pats),*): (#(#arg_types),*)),
    };
    // With `init`: the worker's state first, as written (`state: &mut S`).
    if let Some(state) = &model.state {
        let (pat, ty) = (&state.pat, &state.ty);
        params = quote!(#pat: #ty, #params);
    }
    let block = &model.func.block;
    let written = matches!(model.func.sig.output, ReturnType::Type(..));
    match (model.func.sig.asyncness.is_some(), written) {
        (true, true) => {
            let output = Ident::new("output", Span::mixed_site());
            quote!(|#params| async move { let #output: #returned = #block; #output })
        }
        (true, false) => quote!(|#params| async move #block),
        (false, true) => quote!(|#params| -> #returned #block),
        // A closure's body is an expression: a block that gives `()` where it ends in a
        // statement, as the function's did.
        (false, false) => quote!(|#params| #block),
    }
}

/// For an inner function: `|x| f(x)`, or `|(a, b): (A, B)| f(a, b)` for several
/// parameters. The names are the user's where a parameter is a plain name, fresh ones
/// otherwise; none can clash with the user's, since they are hygienic.
fn calling_closure(model: &Model, name: &Ident, item_ty: &Type) -> TokenStream {
    let names: Vec<Ident> = model
        .args
        .iter()
        .enumerate()
        .map(|(index, arg)| {
            let plain = match &arg.pat {
                Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                    Some(pat.ident.to_string())
                }
                _ => None,
            };
            let fresh = if model.args.len() == 1 {
                "item".to_owned()
            } else {
                format!("__arg{index}")
            };
            Ident::new(&plain.unwrap_or(fresh), Span::mixed_site())
        })
        .collect();
    let Some(state) = &model.state else {
        return match names.as_slice() {
            [single] => quote!(|#single| #name(#single)),
            several => quote!(|(#(#several),*): #item_ty| #name(#(#several),*)),
        };
    };
    // With `init`: `|state: &mut S, x| f(state, x)`.
    let state_name = match &state.pat {
        Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.to_string(),
        _ => "__state".to_owned(),
    };
    let state_name = Ident::new(&state_name, Span::mixed_site());
    let state_ty = &state.ty;
    match names.as_slice() {
        [single] => quote!(|#state_name: #state_ty, #single| #name(#state_name, #single)),
        several => quote!(
            |#state_name: #state_ty, (#(#several),*): #item_ty| #name(#state_name, #(#several),*)
        ),
    }
}

/// What the mapper returns. A `Result` recognised by its name with its `R` written
/// (`io::Result<R>`) becomes the same path over `Vec<R>`; one whose `R` is not written
/// (`fmt::Result`, an alias marked `result`) becomes what the runtime returns for it,
/// named through the trait that sees through the alias.
fn outer_return_type(model: &Model, output: &Output) -> TokenStream {
    let each = &output.returned;
    let collected = match (&output.ok, model.fallible()) {
        (_, false) => quote!(::std::vec::Vec<#each>),
        (Some(ok), true) if output.recognised => {
            let mut whole = each.clone();
            replace_first_type_argument(&mut whole, syn::parse_quote!(::std::vec::Vec<#ok>));
            quote!(#whole)
        }
        (_, true) => quote!(<#each as ::twat_mp::__private::Fallible>::Collected),
    };
    match model.kind {
        Kind::Pmap | Kind::Apmap => collected,
        Kind::Amap => quote!(::twat_mp::AsyncResult<#collected>),
        Kind::Imap => quote!(impl ::core::iter::Iterator<Item = #each>),
    }
}

/// `Result<R, E>` → `Result<with, E>`.
fn replace_first_type_argument(ty: &mut Type, with: Type) {
    let Type::Path(path) = ty else { return };
    let Some(last) = path.path.segments.last_mut() else {
        return;
    };
    let PathArguments::AngleBracketed(args) = &mut last.arguments else {
        return;
    };
    if let Some(first) = args.args.iter_mut().find_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    }) {
        *first = with;
    }
}

/// `pmap`, `imap_result`, `amap_result_process`, `pmap_init`, `imap_result_init`, ...
/// (`mpi` calls the `process` ones: its `Config` says which pool they take).
fn runtime_function(model: &Model) -> Ident {
    let fallible = model.fallible();
    format_ident!(
        "{}{}{}{}",
        model.kind.name(),
        if fallible { "_result" } else { "" },
        if model.options.init.is_some() {
            "_init"
        } else {
            ""
        },
        match crate::options::Mode::of(&model.options) {
            crate::options::Mode::Threads => "",
            crate::options::Mode::Process | crate::options::Mode::Mpi => "_process",
        },
    )
}

/// `&Config::DEFAULT`, or `&Config { nodes: Some(4), ..Config::DEFAULT }`.
fn config(options: &Options) -> TokenStream {
    let some = |value: TokenStream| quote!(::core::option::Option::Some(#value));
    let count = |n: usize| {
        let n = proc_macro2::Literal::usize_unsuffixed(n);
        some(quote!(#n))
    };
    let mut fields = Vec::new();
    if let Some(nodes) = &options.nodes {
        fields.push(("nodes", count(nodes.value)));
    }
    if let Some(chunksize) = &options.chunksize {
        fields.push(("chunksize", count(chunksize.value)));
    }
    if options.debug.is_some() {
        fields.push(("debug", quote!(true)));
    }
    if options.process.is_some() {
        fields.push(("process", quote!(true)));
    }
    if let Some(timeout) = &options.timeout {
        let millis = proc_macro2::Literal::u64_unsuffixed(timeout.value);
        fields.push((
            "timeout",
            some(quote!(::core::time::Duration::from_millis(#millis))),
        ));
    }
    if let Some(concurrency) = &options.concurrency {
        fields.push(("concurrency", count(concurrency.value)));
    }
    if let Some(retries) = &options.retries {
        let retries = proc_macro2::Literal::u32_unsuffixed(retries.value);
        fields.push(("retries", quote!(#retries)));
    }
    if options.progress.is_some() {
        fields.push(("progress", quote!(true)));
    }
    if options.mpi.is_some() {
        fields.push(("mpi", quote!(true)));
    }
    if fields.is_empty() {
        return quote!(&::twat_mp::__private::Config::DEFAULT);
    }
    let fields = fields.into_iter().map(|(field, value)| {
        let field = Ident::new(field, Span::call_site());
        quote!(#field: #value)
    });
    quote!(&::twat_mp::__private::Config { #(#fields,)* ..::twat_mp::__private::Config::DEFAULT })
}

/// For a generic function, `Item: Send` and `Return: Send` (and `'static` where the work
/// outlives the call), so that a caller's wrong type is reported against these bounds
/// rather than deep inside the runtime. Only types that mention a type parameter get one:
/// the others are checked where they are written. Each bound joins the user's own bounds
/// on the same type where there are some (`<T: Debug + Send>`, `where T: Clone + Send`),
/// so that lints on bounds split over two places do not fire on the user's code.
fn add_send_bounds(kind: Kind, generics: &mut syn::Generics, item: &Type, returned: &Type) {
    let params: BTreeSet<String> = generics
        .type_params()
        .map(|param| param.ident.to_string())
        .collect();
    if params.is_empty() {
        return;
    }
    let bounds: Punctuated<TypeParamBound, Token![+]> = match kind {
        Kind::Pmap => syn::parse_quote!(::core::marker::Send),
        Kind::Imap | Kind::Amap | Kind::Apmap => syn::parse_quote!(::core::marker::Send + 'static),
    };
    let same = |a: &Type, b: &Type| quote!(#a).to_string() == quote!(#b).to_string();
    let mut bounded: Vec<&Type> = Vec::new();
    for ty in [item, returned] {
        if !mentions(ty, &params) || bounded.iter().any(|done| same(done, ty)) {
            continue;
        }
        bounded.push(ty);
        // The user's `where Ty: ...`.
        let predicates = generics
            .where_clause
            .iter_mut()
            .flat_map(|w| &mut w.predicates);
        if let Some(predicate) = predicates
            .filter_map(|predicate| match predicate {
                WherePredicate::Type(predicate) => Some(predicate),
                _ => None,
            })
            .find(|predicate| same(&predicate.bounded_ty, ty))
        {
            predicate.bounds.extend(bounds.clone());
            continue;
        }
        // The user's `<T: ...>`.
        if let Some(param) = generics
            .type_params_mut()
            .find(|param| !param.bounds.is_empty() && is_param(ty, &param.ident))
        {
            param.bounds.extend(bounds.clone());
            continue;
        }
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(#ty: #bounds));
    }
}

/// Whether `ty` is the type parameter `param` itself.
fn is_param(ty: &Type, param: &Ident) -> bool {
    match ty {
        Type::Path(path) => path.qself.is_none() && path.path.is_ident(param),
        _ => false,
    }
}

/// Whether `ty` names one of `params`.
fn mentions(ty: &Type, params: &BTreeSet<String>) -> bool {
    struct Finder<'a> {
        params: &'a BTreeSet<String>,
        found: bool,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            let first = path.segments.first().map(|s| s.ident.to_string());
            if path.leading_colon.is_none() && first.is_some_and(|f| self.params.contains(&f)) {
                self.found = true;
            }
            syn::visit::visit_path(self, path);
        }
    }
    let mut finder = Finder {
        params,
        found: false,
    };
    finder.visit_type(ty);
    finder.found
}

/// Gives every elided lifetime (`&T`, `'_`) one name, `'item`, outside `fn(..)` types and
/// `Fn(..)` bounds, whose elided lifetimes are their own.
struct NameElided {
    lifetime: Lifetime,
    used: bool,
}

impl NameElided {
    fn new(generics: &syn::Generics) -> Self {
        let taken = |name: &str| generics.lifetimes().any(|l| l.lifetime.ident == name);
        let name = ["item", "__item"]
            .into_iter()
            .find(|name| !taken(name))
            .unwrap_or("__twat_mp_item");
        NameElided {
            lifetime: Lifetime::new(&format!("'{name}"), Span::call_site()),
            used: false,
        }
    }
}

impl VisitMut for NameElided {
    fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
        if reference.lifetime.is_none() {
            reference.lifetime = Some(self.lifetime.clone());
            self.used = true;
        }
        syn::visit_mut::visit_type_reference_mut(self, reference);
    }

    fn visit_lifetime_mut(&mut self, lifetime: &mut Lifetime) {
        if lifetime.ident == "_" {
            *lifetime = self.lifetime.clone();
            self.used = true;
        }
    }

    fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}

    fn visit_parenthesized_generic_arguments_mut(
        &mut self,
        _: &mut syn::ParenthesizedGenericArguments,
    ) {
    }
}
