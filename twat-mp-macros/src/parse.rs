//! Parsing: the attribute's options and the function's signature into a [`Model`].
//!
//! Parsing checks that each option is well formed on its own (a known name, a value of the
//! right type, given once); whether it fits the attribute and the function is
//! [`validate`](crate::validate)'s job.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, FnArg, Ident, ItemFn, Lit, Meta, Pat, PathArguments, ReturnType, Token, Type};

use crate::options::{self, takes};

/// Which attribute is being expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Pmap,
    Imap,
    Amap,
    Apmap,
}

impl Kind {
    /// Every attribute.
    #[cfg(test)]
    pub(crate) const ALL: [Kind; 4] = [Kind::Pmap, Kind::Imap, Kind::Amap, Kind::Apmap];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Pmap => "pmap",
            Kind::Imap => "imap",
            Kind::Amap => "amap",
            Kind::Apmap => "apmap",
        }
    }
}

/// One option as given: its name (for errors that point at it) and its value.
#[derive(Debug, Clone)]
pub(crate) struct Setting<T> {
    pub name: Ident,
    pub value: T,
}

/// The options of one attribute. `None` is "not given".
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub nodes: Option<Setting<usize>>,
    pub chunksize: Option<Setting<usize>>,
    pub concurrency: Option<Setting<usize>>,
    /// In milliseconds.
    pub timeout: Option<Setting<u64>>,
    pub retries: Option<Setting<u32>>,
    pub ordered: Option<Setting<bool>>,
    pub process: Option<Setting<()>>,
    /// `mpi`: the program's one `MpiPool` (twat-mp's `mpi` feature).
    pub mpi: Option<Setting<()>>,
    pub debug: Option<Setting<()>>,
    pub progress: Option<Setting<()>>,
    /// The function returns a `Result` behind a type alias the attribute cannot see
    /// through.
    pub result: Option<Setting<()>>,
    /// `init = make_state`: the path of the function that makes each worker's state.
    pub init: Option<Setting<TokenStream>>,
}

/// What the function returns, which decides the mapper's return type and runtime call.
///
/// A macro sees names, not types: a return type is recognised as a `Result` when the last
/// segment of its path is `Result` (`Result<R, E>`, `io::Result<R>`, `anyhow::Result<R>`,
/// a crate's own `Result<R>`, `fmt::Result`). A `Result` behind an alias of another name
/// is marked with the `result` option.
#[derive(Clone)]
pub(crate) struct Output {
    /// The type one call returns, as written (`()` when omitted).
    pub returned: Type,
    /// Whether `returned` is recognised as a `Result` by its name.
    pub recognised: bool,
    /// `R` of a recognised `Result<R, ...>`, when it is written (not for `fmt::Result`).
    pub ok: Option<Type>,
}

/// One typed parameter of the function.
#[derive(Clone)]
pub(crate) struct Arg {
    pub pat: Pat,
    pub ty: Type,
}

/// Everything the expansion needs: the attribute, its options and the function, kept as
/// written (the expansion keeps it verbatim as the inner function).
#[derive(Clone)]
pub(crate) struct Model {
    pub kind: Kind,
    pub options: Options,
    pub func: ItemFn,
    /// The typed parameters that make an item; a `self` receiver is left to validation.
    pub args: Vec<Arg>,
    /// With `init`, the first typed parameter: the worker's state, `&mut S`.
    pub state: Option<Arg>,
    pub output: Output,
}

impl Model {
    /// Whether the function returns a `Result`: the mapper then returns the lowest failing
    /// item's own error.
    pub(crate) fn fallible(&self) -> bool {
        self.output.recognised || self.options.result.is_some()
    }
}

/// Parses the function the attribute is on.
pub(crate) fn parse_function(
    kind: Kind,
    options: Options,
    item: TokenStream,
) -> syn::Result<Model> {
    let func: ItemFn = syn::parse2(item)?;
    let mut args: Vec<Arg> = func
        .sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(typed) => Some(Arg {
                pat: (*typed.pat).clone(),
                ty: (*typed.ty).clone(),
            }),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let state = (options.init.is_some() && !args.is_empty()).then(|| args.remove(0));
    let returned: Type = match &func.sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let output = Output {
        recognised: is_result(&returned),
        ok: result_ok_type(&returned),
        returned,
    };
    Ok(Model {
        kind,
        options,
        func,
        args,
        state,
        output,
    })
}

/// Whether `ty` is a path whose last segment is `Result`.
pub(crate) fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "Result"),
        Type::Paren(inner) => is_result(&inner.elem),
        Type::Group(inner) => is_result(&inner.elem),
        _ => false,
    }
}

/// `R` when `ty` is `…::Result<R, …>`.
fn result_ok_type(ty: &Type) -> Option<Type> {
    if !is_result(ty) {
        return None;
    }
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        syn::GenericArgument::Type(ok) => Some(ok.clone()),
        _ => None,
    })
}

/// Parses `nodes = 4, process, ...`: every problem is pushed onto `errors`, each on its own
/// token, and the options that were well formed are kept.
pub(crate) fn parse_options(kind: Kind, attr: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr) {
        Ok(metas) => {
            for meta in metas {
                if let Err(err) = parse_option(kind, &meta, &mut options) {
                    errors.push(err);
                }
            }
        }
        Err(err) => errors.push(err),
    }
    options
}

fn parse_option(kind: Kind, meta: &Meta, options: &mut Options) -> syn::Result<()> {
    let Some(name) = meta.path().get_ident().cloned() else {
        return Err(syn::Error::new_spanned(
            meta.path(),
            format!("expected an option name; {}", takes(kind)),
        ));
    };
    let Some(rule) = options::rule(&name.to_string()) else {
        return Err(unknown_option(kind, &name));
    };
    if let Meta::List(list) = meta {
        return Err(syn::Error::new(
            list.delimiter.span().join(),
            format!("write the option as {}", rule.usage),
        ));
    }
    let value = match meta {
        Meta::NameValue(nv) => Some(&nv.value),
        _ => None,
    };
    (rule.read)(options, &name, value)
}

/// Keeps an option's value; the second of two is an error on its name.
pub(crate) fn set<T>(slot: &mut Option<Setting<T>>, name: &Ident, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            name.span(),
            format!("`{name}` is given twice: keep one"),
        ));
    }
    *slot = Some(Setting {
        name: name.clone(),
        value,
    });
    Ok(())
}

/// How an option is written, for the error messages.
fn usage(name: &Ident) -> &'static str {
    options::rule(&name.to_string()).map_or("", |rule| rule.usage)
}

/// The whole number an option is set to, with where it is written; else an error on the
/// value saying what the option `takes`.
fn whole_number<N>(name: &Ident, value: Option<&Expr>, takes: &str) -> syn::Result<(N, Span)>
where
    N: std::str::FromStr,
    N::Err: std::fmt::Display,
{
    let wrong = |span: Span| {
        syn::Error::new(
            span,
            format!("`{name}` takes {takes}, e.g. {}", usage(name)),
        )
    };
    let Some(value) = value else {
        return Err(wrong(name.span()));
    };
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Int(int), ..
    }) = value
    else {
        return Err(wrong(value.span()));
    };
    int.base10_parse::<N>()
        .map(|n| (n, int.span()))
        .map_err(|_| wrong(int.span()))
}

/// `nodes = 4`: a whole number of at least 1.
pub(crate) fn count(name: &Ident, value: Option<&Expr>) -> syn::Result<usize> {
    match whole_number::<usize>(name, value, "a whole number of at least 1")? {
        (0, span) => Err(syn::Error::new(
            span,
            format!("`{name} = 0` would leave nothing to run the items: use 1 or more"),
        )),
        (n, _) => Ok(n),
    }
}

/// `ordered = false`.
pub(crate) fn boolean(name: &Ident, value: Option<&Expr>) -> syn::Result<bool> {
    let wrong = |span: Span| {
        syn::Error::new(
            span,
            format!("`{name}` takes `true` or `false`, e.g. {}", usage(name)),
        )
    };
    match value {
        Some(Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(b), ..
        })) => Ok(b.value),
        Some(other) => Err(wrong(other.span())),
        None => Err(wrong(name.span())),
    }
}

/// `process`: a flag, written alone.
pub(crate) fn flag(name: &Ident, value: Option<&Expr>) -> syn::Result<()> {
    match value {
        None => Ok(()),
        Some(value) => Err(syn::Error::new(
            value.span(),
            format!("`{name}` is a flag: write `{name}` alone, without a value"),
        )),
    }
}

/// `retries = 2`: a whole number, 0 included.
pub(crate) fn retries(name: &Ident, value: Option<&Expr>) -> syn::Result<u32> {
    whole_number(
        name,
        value,
        "how many more times an item may run, a whole number",
    )
    .map(|(n, _)| n)
}

/// `init = make_state`. A malformed value is an error on it, and the option is kept with a
/// stand-in function that never runs, so that the function's state parameter stays one:
/// its callers see no further errors.
pub(crate) fn init(options: &mut Options, name: &Ident, value: Option<&Expr>) -> syn::Result<()> {
    let (init, outcome) = match function(name, value) {
        Ok(path) => (path, Ok(())),
        Err(err) => (quote::quote!(|| loop {}), Err(err)),
    };
    set(&mut options.init, name, init)?;
    outcome
}

/// `init = make_state`: the path of a function, as tokens.
fn function(name: &Ident, value: Option<&Expr>) -> syn::Result<TokenStream> {
    match value {
        Some(Expr::Path(path)) if path.attrs.is_empty() => {
            Ok(quote::ToTokens::to_token_stream(path))
        }
        Some(other) => Err(syn::Error::new(
            other.span(),
            format!(
                "`{name}` takes the name of a function that makes each worker's state, e.g. {}",
                usage(name)
            ),
        )),
        None => Err(syn::Error::new(
            name.span(),
            format!(
                "`{name}` needs the name of a function that makes each worker's state, e.g. {}",
                usage(name)
            ),
        )),
    }
}

/// `timeout = "5s"`, in milliseconds.
pub(crate) fn timeout(name: &Ident, value: Option<&Expr>) -> syn::Result<u64> {
    let wrong = |span: Span, what: String| syn::Error::new(span, what);
    match value {
        Some(Expr::Lit(syn::ExprLit {
            lit: Lit::Str(text),
            ..
        })) => parse_duration(&text.value())
            .map_err(|why| wrong(text.span(), format!("{why}; {DURATION_FORMS}"))),
        Some(other) => Err(wrong(
            other.span(),
            format!("`{name}` takes a duration in a string; {DURATION_FORMS}"),
        )),
        None => Err(wrong(
            name.span(),
            format!("`{name}` needs a value; {DURATION_FORMS}"),
        )),
    }
}

const DURATION_FORMS: &str =
    "write a number and a unit (`ms`, `s`, `m` or `h`), e.g. \"250ms\", \"5s\", \"1.5s\", \"2m\"";

/// `"1.5s"` → 1500. Exact decimal arithmetic: no float rounding.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    let unreadable = || format!("cannot read \"{text}\" as a duration");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(unreadable)?;
    let (number, unit) = text.split_at(split);
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(unreadable()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) || number.ends_with('.') {
        return Err(unreadable());
    }
    let too_long = || format!("\"{text}\" is too long a duration");
    let whole: u64 = whole.parse().map_err(|_| too_long())?;
    let mut millis = whole.checked_mul(unit_ms).ok_or_else(too_long)?;
    if !fraction.is_empty() {
        let scale = 10u64
            .checked_pow(u32::try_from(fraction.len()).map_err(|_| unreadable())?)
            .ok_or_else(unreadable)?;
        let fraction: u64 = fraction.parse().map_err(|_| unreadable())?;
        let scaled = u128::from(fraction) * u128::from(unit_ms);
        if scaled % u128::from(scale) != 0 {
            return Err(format!("\"{text}\" is finer than a millisecond"));
        }
        let extra = u64::try_from(scaled / u128::from(scale)).map_err(|_| too_long())?;
        millis = millis.checked_add(extra).ok_or_else(too_long)?;
    }
    if millis == 0 {
        return Err(format!("\"{text}\" would time every item out at once"));
    }
    Ok(millis)
}

fn unknown_option(kind: Kind, name: &Ident) -> syn::Error {
    let given = name.to_string();
    let suggestion = options::taken_by(kind)
        .map(|rule| (edit_distance(&given, rule.name), rule.name))
        .filter(|(distance, option)| *distance <= 2 && *distance < option.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, option)| format!(" (did you mean `{option}`?)"))
        .unwrap_or_default();
    syn::Error::new(
        name.span(),
        format!("unknown option `{given}`{suggestion}; {}", takes(kind)),
    )
}

/// Levenshtein distance, for "did you mean".
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Collects errors so that one expansion reports every problem at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    pub(crate) fn finish<T>(self, ok: T) -> syn::Result<T> {
        match self.0 {
            Some(err) => Err(err),
            None => Ok(ok),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use quote::quote;

    fn options(kind: Kind, attr: TokenStream) -> Result<Options, String> {
        checked(kind, attr).map_err(|e| {
            e.into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    pub(crate) fn checked(kind: Kind, attr: TokenStream) -> syn::Result<Options> {
        let mut errors = Errors::default();
        let options = parse_options(kind, attr, &mut errors);
        errors.finish(options)
    }

    #[test]
    fn keeps_the_well_formed_options_when_others_are_wrong() {
        let mut errors = Errors::default();
        let options = parse_options(
            Kind::Pmap,
            quote!(nodes = 0, process, debug = 1),
            &mut errors,
        );
        assert!(options.process.is_some() && options.nodes.is_none() && options.debug.is_none());
        assert_eq!(errors.finish(()).unwrap_err().into_iter().count(), 2);
    }

    #[test]
    fn reads_every_option() {
        let o = options(
            Kind::Apmap,
            quote!(
                nodes = 4,
                chunksize = 64usize,
                concurrency = 8,
                timeout = "1.5s",
                process,
                debug,
            ),
        )
        .unwrap();
        assert_eq!(o.nodes.unwrap().value, 4);
        assert_eq!(o.chunksize.unwrap().value, 64);
        assert_eq!(o.concurrency.unwrap().value, 8);
        assert_eq!(o.timeout.unwrap().value, 1500);
        assert!(o.process.is_some());
        assert!(o.debug.is_some());
        assert!(o.ordered.is_none() && o.progress.is_none());
        let o = options(Kind::Imap, quote!(ordered = false)).unwrap();
        assert!(!o.ordered.unwrap().value);
        let o = options(Kind::Pmap, quote!()).unwrap();
        assert!(o.nodes.is_none() && o.process.is_none() && o.debug.is_none());
    }

    #[test]
    fn keeps_options_that_validation_judges() {
        // `ordered` on #[pmap] and `progress` are known names: validation explains them.
        let o = options(Kind::Pmap, quote!(ordered = true, progress)).unwrap();
        assert!(o.ordered.is_some() && o.progress.is_some());
    }

    #[test]
    fn wrong_values_are_refused() {
        for (attr, expected) in [
            (
                quote!(nodes = "4"),
                "`nodes` takes a whole number of at least 1, e.g. `nodes = 4`",
            ),
            (quote!(nodes = -1), "`nodes` takes a whole number"),
            (quote!(nodes), "`nodes` takes a whole number"),
            (
                quote!(nodes = 0),
                "`nodes = 0` would leave nothing to run the items",
            ),
            (quote!(chunksize = 0), "`chunksize = 0` would leave nothing"),
            (
                quote!(nodes = 99999999999999999999999),
                "`nodes` takes a whole number",
            ),
            (quote!(ordered = 1), "`ordered` takes `true` or `false`"),
            (quote!(ordered), "`ordered` takes `true` or `false`"),
            (
                quote!(debug = true),
                "`debug` is a flag: write `debug` alone",
            ),
            (quote!(process = "yes"), "`process` is a flag"),
            (quote!(nodes(4)), "write the option as `nodes = 4`"),
            (
                quote!(timeout = 5),
                "`timeout` takes a duration in a string",
            ),
            (
                quote!(timeout = "5 sec"),
                "cannot read \"5 sec\" as a duration; write a number",
            ),
            (
                quote!(nodes = 2, nodes = 3),
                "`nodes` is given twice: keep one",
            ),
            (quote!(a::b), "expected an option name"),
        ] {
            let err = options(Kind::Imap, attr.clone()).unwrap_err();
            assert!(err.contains(expected), "{attr}: {err}");
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let err = options(Kind::Pmap, quote!(nodes = 0, colour, debug = 1)).unwrap_err();
        assert_eq!(err.lines().count(), 3, "{err}");
    }

    #[test]
    fn unknown_options_list_the_valid_ones_and_suggest() {
        let err = options(Kind::Pmap, quote!(colour)).unwrap_err();
        assert_eq!(
            err,
            "unknown option `colour`; `#[pmap]` takes `nodes = 4`, `chunksize = 64`, `process`, \
             `mpi` (without `process`), `timeout = \"5s\"` (with `process`), `retries = 2` (with `process`), `debug`, `result`, \
             `progress`, `init = make_state`"
        );
        let err = options(Kind::Pmap, quote!(node = 4)).unwrap_err();
        assert!(
            err.starts_with("unknown option `node` (did you mean `nodes`?);"),
            "{err}"
        );
        let err = options(Kind::Pmap, quote!(chunk_size = 4)).unwrap_err();
        assert!(err.contains("did you mean `chunksize`?"), "{err}");
        let err = options(Kind::Imap, quote!(orderd = false)).unwrap_err();
        assert!(err.contains("did you mean `ordered`?") && err.contains("`ordered = false`"));
        let err = options(Kind::Apmap, quote!(concurency = 4)).unwrap_err();
        assert!(err.contains("did you mean `concurrency`?"), "{err}");
        // Only the options the attribute takes are suggested: `#[apmap]` has no chunksize.
        let err = options(Kind::Apmap, quote!(chunk_size = 4)).unwrap_err();
        assert!(
            !err.contains("did you mean") && !err.contains("chunksize"),
            "{err}"
        );
        // Far from every option: no guess.
        let err = options(Kind::Pmap, quote!(x)).unwrap_err();
        assert!(!err.contains("did you mean"), "{err}");
    }

    /// Where a span starts and ends (line, column), as the compiler would show it.
    pub(crate) fn place(span: Span) -> ((usize, usize), (usize, usize)) {
        let (start, end) = (span.start(), span.end());
        ((start.line, start.column), (end.line, end.column))
    }

    /// The first token, at any depth, that prints as `text` (a group prints as `()`).
    pub(crate) fn find(tokens: &TokenStream, text: &str) -> Span {
        fn search(tokens: TokenStream, text: &str) -> Option<Span> {
            tokens.into_iter().find_map(|token| {
                if token.to_string() == text {
                    return Some(token.span());
                }
                match token {
                    proc_macro2::TokenTree::Group(group) => search(group.stream(), text),
                    _ => None,
                }
            })
        }
        search(tokens.clone(), text).unwrap_or_else(|| panic!("no `{text}` in `{tokens}`"))
    }

    #[test]
    fn errors_point_at_the_offending_token() {
        for (attr, at) in [
            ("nodes = \"4\"", "\"4\""),
            ("chunksize = 0", "0"),
            ("debug, debug = 1", "1"),
            ("nodes = 2, nodes = 0", "0"),
            ("ordered", "ordered"),
            ("timeout = \"soon\"", "\"soon\""),
            ("colour", "colour"),
        ] {
            let attr: TokenStream = attr.parse().unwrap();
            let err = checked(Kind::Imap, attr.clone()).unwrap_err();
            assert_eq!(place(err.span()), place(find(&attr, at)), "{attr}");
        }
        // The second of two: the name, not the first one.
        let attr: TokenStream = "debug, debug".parse().unwrap();
        let second = attr.clone().into_iter().nth(2).unwrap().span();
        let err = checked(Kind::Pmap, attr).unwrap_err();
        assert_eq!(place(err.span()), place(second));
        assert_ne!(
            place(err.span()),
            place(find(&"debug".parse().unwrap(), "debug"))
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("5s"), Ok(5_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500));
        assert_eq!(parse_duration("0.25s"), Ok(250));
        assert_eq!(parse_duration("2m"), Ok(120_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000));
        assert_eq!(parse_duration("0.001s"), Ok(1));
        for bad in [
            "", "5", "s", "5 s", "5sec", "-5s", ".5s", "5.s", "1.2.3s", "5S", "0s", "0.0001s",
            "1.5ms",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_duration("99999999999999999999h").is_err());
        assert!(
            parse_duration("0s")
                .unwrap_err()
                .contains("time every item out")
        );
        assert!(
            parse_duration("1.5ms")
                .unwrap_err()
                .contains("finer than a millisecond")
        );
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("node", "nodes"), 1);
        assert_eq!(edit_distance("chunk_size", "chunksize"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    fn model(kind: Kind, item: TokenStream) -> Model {
        parse_function(kind, Options::default(), item).unwrap()
    }

    #[test]
    fn reads_the_signature() {
        let m = model(
            Kind::Pmap,
            quote!(
                fn f((a, b): (u8, u8), mut n: u64) {}
            ),
        );
        assert_eq!(m.args.len(), 2);
        let ty = &m.args[1].ty;
        assert_eq!(quote!(#ty).to_string(), "u64");
        let unit = &m.output.returned;
        assert_eq!(quote!(#unit).to_string(), "()");
        assert!(m.output.ok.is_none());
    }

    #[test]
    fn recognises_result_returns() {
        for (ret, ok) in [
            (quote!(Result<u8, String>), "u8"),
            (quote!(io::Result<Vec<u8>>), "Vec < u8 >"),
            (quote!(::anyhow::Result<()>), "()"),
            (
                quote!(std::result::Result<&'static str, E>),
                "& 'static str",
            ),
        ] {
            let m = model(Kind::Pmap, quote!(fn f(x: u8) -> #ret { unreachable!() }));
            assert!(m.output.recognised && m.fallible(), "{ret}");
            let (whole, found) = (&m.output.returned, m.output.ok.expect("fallible"));
            assert_eq!(quote!(#found).to_string(), ok);
            let written: Type = syn::parse2(ret.clone()).unwrap();
            assert_eq!(quote!(#whole).to_string(), quote!(#written).to_string());
        }
        // `fmt::Result`, and any `Result` without arguments, is one whose `R` is not
        // written.
        for ret in [
            quote!(fmt::Result),
            quote!(std::fmt::Result),
            quote!(Result),
        ] {
            let m = model(Kind::Pmap, quote!(fn f(x: u8) -> #ret { unreachable!() }));
            assert!(m.output.recognised && m.output.ok.is_none(), "{ret}");
            assert!(m.fallible());
        }
        for ret in [
            quote!(Results<u8>),
            quote!(Option<Result<u8, E>>),
            quote!(Res<u8>),
            quote!((Result<u8, E>, u8)),
        ] {
            let m = model(Kind::Pmap, quote!(fn f(x: u8) -> #ret { unreachable!() }));
            assert!(
                !m.output.recognised && m.output.ok.is_none(),
                "{ret} is plain"
            );
            assert!(!m.fallible());
        }
        // Unless marked.
        let options = tests::checked(Kind::Pmap, quote!(result)).unwrap();
        let m = parse_function(
            Kind::Pmap,
            options,
            quote!(
                fn f(x: u8) -> Res<u8> {
                    Ok(x)
                }
            ),
        )
        .unwrap();
        assert!(m.fallible() && !m.output.recognised);
    }

    #[test]
    fn refuses_what_is_not_a_function() {
        assert!(
            parse_function(
                Kind::Pmap,
                Options::default(),
                quote!(
                    struct S;
                )
            )
            .is_err()
        );
    }
}
