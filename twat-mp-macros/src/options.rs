//! Every option of the four attributes, in one table: how it is written, how its value is
//! read, where it has an effect, and why it is refused elsewhere.
//!
//! [`parse`](crate::parse) reads the table to recognise an option (and to list, for an
//! unknown one, those the attribute takes); [`validate`](crate::validate) reads it to refuse,
//! on the option's own span, an option that would do nothing where it is written. Every
//! (attribute, option, mode) is thus either honoured by the runtime or a compile error,
//! never accepted and silently ignored, as in tokio-macros' `Configuration::build` and
//! thiserror-impl's `valid.rs`.

use syn::{Expr, Ident};

use crate::parse::{self, Kind, Options};

/// Whether the mapper runs its items on threads, with `process` in worker processes, or
/// with `mpi` on the ranks of an MPI job: each builds a different pool, which honours
/// different options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Threads,
    Process,
    Mpi,
}

impl Mode {
    /// The mode the options ask for. `process` wins over `mpi`, which is then refused
    /// (the two cannot go together); without twat-mp's `mpi` feature `mpi` is refused,
    /// naming the feature, and the mode is the one without it.
    pub(crate) fn of(options: &Options) -> Mode {
        if options.process.is_some() {
            Mode::Process
        } else if options.mpi.is_some() && cfg!(feature = "mpi") {
            Mode::Mpi
        } else {
            Mode::Threads
        }
    }

    /// Whether items and the function cross to another process (`process` or `mpi`):
    /// then they must own their data, and the function must be concrete.
    pub(crate) fn remote(self) -> bool {
        self != Mode::Threads
    }
}

/// In which modes an option has an effect on one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Modes {
    threads: bool,
    process: bool,
    mpi: bool,
}

impl Modes {
    fn contains(self, mode: Mode) -> bool {
        match mode {
            Mode::Threads => self.threads,
            Mode::Process => self.process,
            Mode::Mpi => self.mpi,
        }
    }
}

/// Honoured with threads, with `process` and with `mpi`.
const ANY: Modes = Modes {
    threads: true,
    process: true,
    mpi: true,
};
/// Honoured with `process` only.
const PROCESS: Modes = Modes {
    threads: false,
    process: true,
    mpi: false,
};
/// Honoured without `process` (`mpi` itself).
const NOT_PROCESS: Modes = Modes {
    threads: true,
    process: false,
    mpi: true,
};
/// Never honoured.
const NONE: Modes = Modes {
    threads: false,
    process: false,
    mpi: false,
};

/// One option.
pub(crate) struct Rule {
    /// As written in the attribute.
    pub name: &'static str,
    /// An example of how it is written, for the error messages.
    pub usage: &'static str,
    /// Where it has an effect, for `#[pmap]`, `#[imap]`, `#[amap]` and `#[apmap]` in turn.
    effect: [Modes; 4],
    /// Why it is refused where it has no effect, and what to write instead: `{attr}`
    /// stands for the attribute as `` `#[pmap]` ``, `{kind}` for its bare name. Empty for
    /// an option honoured everywhere.
    refusal: &'static str,
    /// Reads its value (well formed, given once) into its field of [`Options`].
    pub read: fn(&mut Options, &Ident, Option<&Expr>) -> syn::Result<()>,
    /// Its name as written, when it is given.
    pub given: fn(&Options) -> Option<&Ident>,
}

/// Every option, in the order the error messages list them. What each runtime does with
/// [`Config`](https://docs.rs/twat-mp) (`twat-mp/src/attribute_support.rs` builds the
/// `ThreadPool`, `process/attribute.rs` the `ProcessPool`, `aio/attribute.rs` the
/// `AsyncMultiPool` and `aio/process.rs` the `AsyncProcessPool`) decides the `effect`s.
pub(crate) const RULES: &[Rule] = &[
    Rule {
        // Every pool's builder takes `nodes`.
        name: "nodes",
        usage: "`nodes = 4`",
        //       pmap imap amap apmap
        effect: [ANY, ANY, ANY, ANY],
        refusal: "",
        read: |o, name, value| parse::set(&mut o.nodes, name, parse::count(name, value)?),
        given: |o| o.nodes.as_ref().map(|s| &s.name),
    },
    Rule {
        // The ThreadPool's maps and the ProcessPool's batches take a fixed chunk size;
        // the async pools hand out tasks one at a time (in process mode, in groups sized
        // from `concurrency`) and have no `chunksize`.
        name: "chunksize",
        usage: "`chunksize = 64`",
        effect: [ANY, ANY, ANY, NONE],
        refusal: "`chunksize` is not an option of {attr}: its async pool has no chunks, it \
                  hands each task to a worker on its own; remove `chunksize`, and bound the \
                  tasks in flight per worker with `concurrency = 100`",
        read: |o, name, value| parse::set(&mut o.chunksize, name, parse::count(name, value)?),
        given: |o| o.chunksize.as_ref().map(|s| &s.name),
    },
    Rule {
        // Only the async pools run several tasks per worker.
        name: "concurrency",
        usage: "`concurrency = 100`",
        effect: [NONE, NONE, NONE, ANY],
        refusal: "`concurrency` (async tasks in flight per worker) is an option of `#[apmap]` \
                  only: {attr} runs one item per worker at a time; set `nodes` for more workers",
        read: |o, name, value| parse::set(&mut o.concurrency, name, parse::count(name, value)?),
        given: |o| o.concurrency.as_ref().map(|s| &s.name),
    },
    Rule {
        // The lazy maps of both pools (`lazy_map`, `lazy_call`) take `ordered`; the other
        // attributes collect every result in input order.
        name: "ordered",
        usage: "`ordered = false`",
        effect: [NONE, ANY, NONE, NONE],
        refusal: "`ordered` is an option of `#[imap]` only: {attr} always gives the results in \
                  input order",
        read: |o, name, value| parse::set(&mut o.ordered, name, parse::boolean(name, value)?),
        given: |o| o.ordered.as_ref().map(|s| &s.name),
    },
    Rule {
        // Each attribute has its `_process` runtime functions (Linux only).
        name: "process",
        usage: "`process`",
        effect: [ANY, ANY, ANY, ANY],
        refusal: "",
        read: |o, name, value| parse::set(&mut o.process, name, parse::flag(name, value)?),
        given: |o| o.process.as_ref().map(|s| &s.name),
    },
    Rule {
        // `MpiPool` (twat-mp's `mpi` feature) has `map`, `imap` and `map_init`; the
        // attribute runtime `mpi/attribute.rs` serves `#[pmap]` and `#[imap]`. An
        // `MpiPool` is not a process pool of this machine: never with `process`.
        name: "mpi",
        usage: "`mpi`",
        //       pmap         imap         amap  apmap
        effect: [NOT_PROCESS, NOT_PROCESS, NONE, NONE],
        refusal: "`mpi` is an option of `#[pmap]` and `#[imap]` only: {attr} returns at \
                  once and maps in the background, which the program's one `MpiPool` does \
                  not do from an attribute; use `#[pmap(mpi)]` in a thread of your own, or \
                  `MpiPool::amap`",
        read: |o, name, value| parse::set(&mut o.mpi, name, parse::flag(name, value)?),
        given: |o| o.mpi.as_ref().map(|s| &s.name),
    },
    Rule {
        // A ProcessPool kills a worker that runs past it, whatever the call; the async
        // pools cancel the task (and, with `process`, back it up by killing the worker).
        // A thread cannot be stopped.
        name: "timeout",
        usage: "`timeout = \"5s\"`",
        effect: [PROCESS, PROCESS, PROCESS, ANY],
        refusal: "`timeout` needs `process`: a thread cannot be stopped in the middle of an \
                  item, a worker process can be killed; write \
                  `#[{kind}(process, timeout = \"...\")]`",
        read: |o, name, value| parse::set(&mut o.timeout, name, parse::timeout(name, value)?),
        given: |o| o.timeout.as_ref().map(|s| &s.name),
    },
    Rule {
        // The process pools run an item again when its worker process crashed or timed
        // out. Threads share their process: a crash ends the whole program, and a thread
        // cannot be stopped, so there is nothing to retry.
        name: "retries",
        usage: "`retries = 2`",
        effect: [PROCESS, PROCESS, PROCESS, PROCESS],
        refusal: "`retries` needs `process`: an item runs again when its worker process \
                  crashed or timed out, and threads do not crash separately (a crash ends \
                  the whole program); write `#[{kind}(process, retries = 2)]`",
        read: |o, name, value| parse::set(&mut o.retries, name, parse::retries(name, value)?),
        given: |o| o.retries.as_ref().map(|s| &s.name),
    },
    Rule {
        // Every pool's builder takes `debug`.
        name: "debug",
        usage: "`debug`",
        effect: [ANY, ANY, ANY, ANY],
        refusal: "",
        read: |o, name, value| parse::set(&mut o.debug, name, parse::flag(name, value)?),
        given: |o| o.debug.as_ref().map(|s| &s.name),
    },
    Rule {
        // A macro sees the return type's name only: `result` marks a `Result` behind an
        // alias of another name (`type Res<T> = Result<T, MyErr>`), so that every
        // attribute, in every mode, calls its `_result` runtime and hands back the lowest
        // failing item's own error. Where the name is already recognised it would do
        // nothing: `validate` refuses it there.
        name: "result",
        usage: "`result`",
        effect: [ANY, ANY, ANY, ANY],
        refusal: "",
        read: |o, name, value| parse::set(&mut o.result, name, parse::flag(name, value)?),
        given: |o| o.result.as_ref().map(|s| &s.name),
    },
    Rule {
        // Every pool's builder takes `progress` with twat-mp's `progress` feature, which
        // turns on this crate's feature of the same name; without it the option says how
        // to enable it (see `FEATURE_OFF`).
        name: "progress",
        usage: "`progress`",
        effect: [ANY, ANY, ANY, ANY],
        refusal: if cfg!(feature = "progress") {
            ""
        } else {
            PROGRESS_NEEDS_FEATURE
        },
        read: |o, name, value| parse::set(&mut o.progress, name, parse::flag(name, value)?),
        given: |o| o.progress.as_ref().map(|s| &s.name),
    },
    Rule {
        // The ThreadPool's `run_map_init`, `lazy_map_init` and `background_map_init` keep
        // a state per worker thread, the ProcessPool's `run_map_init` and `lazy_call` (with
        // a state) one per worker process (`init` and `f` as function pointers). The async
        // pool's tasks run concurrently on one worker: an `async fn` holding `&mut S`
        // across `.await` cannot share its state.
        name: "init",
        usage: "`init = make_state`",
        effect: [ANY, ANY, ANY, NONE],
        refusal: "`init` is not an option of `#[apmap]`: a worker runs many tasks at once, and \
                  an `async fn` holding `&mut S` across `.await` cannot share one state among \
                  them; call `AsyncMultiPool::map_init` instead, whose function takes what \
                  each task needs from the state (a cloned client handle, say) before the \
                  task starts",
        read: parse::init,
        given: |o| o.init.as_ref().map(|s| &s.name),
    },
];

/// The options whose twat-mp feature is off in this build: each is still listed where it
/// is taken, so that the error messages read the same with and without the feature, but
/// refused wherever it is written, with its `refusal` naming the feature.
const FEATURE_OFF: &[&str] = match (cfg!(feature = "progress"), cfg!(feature = "mpi")) {
    (true, true) => &[],
    (false, true) => &["progress"],
    (true, false) => &["mpi"],
    (false, false) => &["progress", "mpi"],
};

/// Why `mpi` is refused without twat-mp's `mpi` feature.
const MPI_NEEDS_FEATURE: &str = "`mpi` needs twat-mp's `mpi` feature (and Open MPI's \
    `libopenmpi-dev` and `libclang-dev` to build it): add `features = [\"mpi\"]` to the \
    `twat-mp` dependency in Cargo.toml";

/// Why `mpi` is refused with `process`.
const MPI_WITH_PROCESS: &str = "`mpi` cannot go with `process`: `mpi` runs the items on \
    the ranks of the MPI job, `process` in worker processes of this machine; keep one of \
    the two";

/// Why an option of process pools is refused with `mpi`: `{name}` stands for it.
const NOT_WITH_MPI: &str = "`{name}` cannot go with `mpi`: an MPI rank cannot be stopped or \
    replaced in the middle of a job (a rank that dies ends the whole job); remove \
    `{name}`, or map with `process` on one machine instead of `mpi`";

/// Why `progress` is refused without twat-mp's `progress` feature.
const PROGRESS_NEEDS_FEATURE: &str = "`progress` needs twat-mp's `progress` feature: add \
    `features = [\"progress\"]` to the `twat-mp` dependency in Cargo.toml";

impl Rule {
    /// Whether the option changes what `#[kind]` does in `mode`.
    pub(crate) fn honoured(&self, kind: Kind, mode: Mode) -> bool {
        self.modes(kind).contains(mode) && !FEATURE_OFF.contains(&self.name)
    }

    fn modes(&self, kind: Kind) -> Modes {
        let column = match kind {
            Kind::Pmap => 0,
            Kind::Imap => 1,
            Kind::Amap => 2,
            Kind::Apmap => 3,
        };
        self.effect[column]
    }

    /// Whether `#[kind]` takes the option at all, in one mode or the other.
    pub(crate) fn taken_by(&self, kind: Kind) -> bool {
        self.modes(kind) != NONE
    }

    /// The error on the option's name where it would do nothing in `mode`.
    pub(crate) fn refuse(&self, kind: Kind, mode: Mode, name: &Ident) -> syn::Error {
        let refusal = if self.name == "mpi" && !cfg!(feature = "mpi") {
            MPI_NEEDS_FEATURE
        } else if self.name == "mpi" && self.modes(kind).mpi {
            // Taken by `#[kind]`, refused in this mode: with `process`.
            MPI_WITH_PROCESS
        } else if mode == Mode::Mpi && self.modes(kind).process {
            NOT_WITH_MPI
        } else {
            self.refusal
        };
        let message = refusal
            .replace("{attr}", &format!("`#[{}]`", kind.name()))
            .replace("{kind}", kind.name())
            .replace("{name}", self.name);
        syn::Error::new(name.span(), message)
    }
}

/// The option called `name`, if there is one.
pub(crate) fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.name == name)
}

/// The options `#[kind]` takes, in one mode or the other.
pub(crate) fn taken_by(kind: Kind) -> impl Iterator<Item = &'static Rule> {
    RULES.iter().filter(move |rule| rule.taken_by(kind))
}

/// "`#[pmap]` takes `nodes = 4`, `chunksize = 64`, ..., `timeout = "5s"` (with `process`)"
pub(crate) fn takes(kind: Kind) -> String {
    let list: Vec<String> = taken_by(kind)
        .map(|rule| {
            let modes = rule.modes(kind);
            let condition = match (modes.threads, modes.process, modes.mpi) {
                (false, true, _) => " (with `process`)",
                (true, false, _) => " (without `process`)",
                _ => "",
            };
            format!("{}{condition}", rule.usage)
        })
        .collect();
    format!("`#[{}]` takes {}", kind.name(), list.join(", "))
}

/// Every given option that would do nothing where it is written, each an error on its name.
pub(crate) fn refuse_ineffective(kind: Kind, options: &Options, errors: &mut parse::Errors) {
    let mode = Mode::of(options);
    for rule in RULES.iter().filter(|rule| !rule.honoured(kind, mode)) {
        if let Some(name) = (rule.given)(options) {
            errors.push(rule.refuse(kind, mode, name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_function;
    use crate::parse::tests::{checked, find, place};
    use proc_macro2::TokenStream;

    /// The option as its usage writes it, e.g. `timeout = "5s"`.
    fn example(rule: &Rule) -> String {
        rule.usage.trim_matches('`').to_owned()
    }

    /// A function whose return type is a path the attributes do not recognise as a
    /// `Result`, so that `result` has something to mark.
    fn item(kind: Kind) -> TokenStream {
        match kind {
            Kind::Apmap => "async fn f(x: u8) -> Res<u8> { Ok(x) }",
            _ => "fn f(x: u8) -> Res<u8> { Ok(x) }",
        }
        .parse()
        .unwrap()
    }

    /// The options' errors and the expansion, as `#[kind(attr)]` gives them.
    fn judge(kind: Kind, attr: &str) -> (syn::Result<()>, String) {
        let attr: TokenStream = attr.parse().unwrap();
        let options = checked(kind, attr.clone()).unwrap_or_else(|err| panic!("{attr}: {err}"));
        // With `init`, the function takes the worker's state first.
        let item = if options.init.is_some() {
            let item = item(kind)
                .to_string()
                .replacen("(x", "(state: &mut u8, x", 1);
            item.parse().unwrap()
        } else {
            item(kind)
        };
        let model = parse_function(kind, options, item.clone()).unwrap();
        let expanded = crate::mapper(kind, attr, item, true).to_string();
        (crate::validate::options(&model), expanded)
    }

    /// Every option on every attribute, with threads and with `process`: either honoured
    /// (no error, and the expansion hands it to the runtime: it differs from the one
    /// without it) or refused with one error, on the option's name, saying why.
    #[test]
    fn every_option_is_honoured_or_refused_on_its_span() {
        for rule in RULES {
            for kind in Kind::ALL {
                // `mpi` itself is judged on every attribute in the threads' column.
                let mpi_taken = rule_named("mpi").taken_by(kind);
                for mode in modes().into_iter().filter(|&m| m != Mode::Mpi || mpi_taken) {
                    let (base, attr) = match (mode, rule.name) {
                        (Mode::Threads, _)
                        | (Mode::Process, "process")
                        | (Mode::Mpi, "mpi" | "process") => (String::new(), example(rule)),
                        (Mode::Process, _) => {
                            ("process".to_owned(), format!("process, {}", example(rule)))
                        }
                        (Mode::Mpi, _) => ("mpi".to_owned(), format!("mpi, {}", example(rule))),
                    };
                    let case = format!("#[{}({attr})]", kind.name());
                    let (verdict, expanded) = judge(kind, &attr);
                    if rule.honoured(kind, mode) {
                        assert!(verdict.is_ok(), "{case}: {}", verdict.unwrap_err());
                        let (_, without) = judge(kind, &base);
                        assert_ne!(expanded, without, "{case} is accepted but does nothing");
                        continue;
                    }
                    let err = verdict.expect_err(&case);
                    assert_eq!(err.clone().into_iter().count(), 1, "{case}: {err}");
                    let tokens: TokenStream = attr.parse().unwrap();
                    let name = find(&tokens, rule.name);
                    assert_eq!(place(err.span()), place(name), "{case}: {err}");
                    let message = err.to_string();
                    assert!(
                        message.starts_with(&format!("`{}`", rule.name)) && !message.contains('{'),
                        "{case}: {message}"
                    );
                    assert!(
                        expanded.contains("compile_error"),
                        "{case}: the error reaches the compiler"
                    );
                }
            }
        }
    }

    fn rule_named(name: &str) -> &'static Rule {
        rule(name).unwrap()
    }

    /// The modes this build has: `mpi` with twat-mp's `mpi` feature only.
    fn modes() -> Vec<Mode> {
        let mut modes = vec![Mode::Threads, Mode::Process];
        if cfg!(feature = "mpi") {
            modes.push(Mode::Mpi);
        }
        modes
    }

    /// A refusal sentence exactly where an option is refused somewhere.
    #[test]
    fn every_refused_option_says_why() {
        for rule in RULES {
            let refused_somewhere = Kind::ALL
                .iter()
                .any(|&kind| modes().iter().any(|&mode| !rule.honoured(kind, mode)));
            assert_eq!(refused_somewhere, !rule.refusal.is_empty(), "{}", rule.name);
            assert_eq!(
                rule.usage.trim_matches('`').split([' ', '=']).next(),
                Some(rule.name)
            );
        }
    }

    /// What the unknown-option errors list: the options each attribute takes.
    #[test]
    fn what_each_attribute_takes() {
        let takes: Vec<String> = Kind::ALL.into_iter().map(takes).collect();
        // With twat-mp's `progress` feature or without (then it is refused, naming it).
        assert_eq!(
            takes,
            [
                "`#[pmap]` takes `nodes = 4`, `chunksize = 64`, `process`, `mpi` (without \
                 `process`), `timeout = \"5s\"` (with `process`), `retries = 2` (with `process`), `debug`, `result`, `progress`, \
                 `init = make_state`",
                "`#[imap]` takes `nodes = 4`, `chunksize = 64`, `ordered = false`, `process`, \
                 `mpi` (without `process`), `timeout = \"5s\"` (with `process`), `retries = 2` (with `process`), `debug`, \
                 `result`, `progress`, `init = make_state`",
                "`#[amap]` takes `nodes = 4`, `chunksize = 64`, `process`, `timeout = \"5s\"` \
                 (with `process`), `retries = 2` (with `process`), `debug`, `result`, `progress`, \
                 `init = make_state`",
                "`#[apmap]` takes `nodes = 4`, `concurrency = 100`, `process`, \
                 `timeout = \"5s\"`, `retries = 2` (with `process`), `debug`, `result`, `progress`",
            ]
        );
    }

    #[test]
    fn init_is_taken_with_process_and_refused_on_apmap_saying_why() {
        for kind in [Kind::Pmap, Kind::Imap, Kind::Amap] {
            let (verdict, expanded) = judge(kind, "process, init = make_state");
            assert!(verdict.is_ok(), "{kind:?}: {}", verdict.unwrap_err());
            let runtime = format!("{}_init_process", kind.name());
            assert!(expanded.contains(&runtime), "{expanded}");
        }
        for attr in ["init = make_state", "process, init = make_state"] {
            let (verdict, _) = judge(Kind::Apmap, attr);
            let message = verdict.unwrap_err().to_string();
            assert!(
                message.starts_with("`init` is not an option of `#[apmap]`")
                    && message.contains("`AsyncMultiPool::map_init`"),
                "{message}"
            );
        }
    }

    /// `mpi` maps on the program's one `MpiPool`: honoured on `#[pmap]` and `#[imap]`
    /// (with `init` too), refused with `process`, with the options only a process pool
    /// honours, on `#[amap]` and `#[apmap]`, and without twat-mp's feature, saying why.
    #[test]
    fn mpi_is_honoured_or_refused_saying_why() {
        let refused = |kind: Kind, attr: &str| judge(kind, attr).0.unwrap_err().to_string();
        if !cfg!(feature = "mpi") {
            for kind in [Kind::Pmap, Kind::Imap] {
                let message = refused(kind, "mpi");
                assert!(
                    message.starts_with("`mpi` needs twat-mp's `mpi` feature")
                        && message.contains("features = [\"mpi\"]"),
                    "{message}"
                );
            }
            return;
        }
        // The `process` entry points, with `mpi` in the `Config`: they take the MpiPool.
        for (kind, runtime) in [(Kind::Pmap, "pmap_process"), (Kind::Imap, "imap_process")] {
            let (verdict, expanded) = judge(kind, "mpi, nodes = 2, chunksize = 8, debug");
            assert!(verdict.is_ok(), "{kind:?}: {}", verdict.unwrap_err());
            assert!(expanded.contains(runtime), "{expanded}");
            assert!(expanded.contains("mpi : true"), "{expanded}");
            let (verdict, expanded) = judge(kind, "mpi, init = make_state");
            assert!(verdict.is_ok(), "{kind:?}: {}", verdict.unwrap_err());
            assert!(expanded.contains(&format!("{}_init_process", kind.name())));
            assert!(expanded.contains("state_init_process"), "{expanded}");
        }
        // Items cross to another rank as under `process`: they must own their data.
        let options = checked(Kind::Pmap, "mpi".parse().unwrap()).unwrap();
        let item = "fn f(x: &'static str) -> u8 { 0 }".parse().unwrap();
        let model = parse_function(Kind::Pmap, options, item).unwrap();
        let message = crate::validate::types(&model).unwrap_err().to_string();
        assert!(
            message.starts_with(
                "items must own their data under `mpi`: each one is copied \
                                 into an MPI rank"
            ),
            "{message}"
        );
        let message = refused(Kind::Pmap, "process, mpi");
        assert!(
            message.starts_with("`mpi` cannot go with `process`"),
            "{message}"
        );
        for option in ["timeout = \"5s\"", "retries = 2"] {
            let message = refused(Kind::Imap, &format!("mpi, {option}"));
            let name = option.split(' ').next().unwrap_or_default();
            assert!(
                message.starts_with(&format!("`{name}` cannot go with `mpi`: an MPI rank")),
                "{message}"
            );
        }
        for kind in [Kind::Amap, Kind::Apmap] {
            let message = refused(kind, "mpi");
            assert!(
                message.starts_with("`mpi` is an option of `#[pmap]` and `#[imap]` only"),
                "{message}"
            );
        }
    }

    #[test]
    fn the_async_pool_has_no_chunks() {
        for attr in ["chunksize = 8", "process, chunksize = 8"] {
            let (verdict, _) = judge(Kind::Apmap, attr);
            let message = verdict.unwrap_err().to_string();
            assert!(
                message.starts_with("`chunksize` is not an option of `#[apmap]`: its async pool")
                    && message.contains("`concurrency = 100`"),
                "{message}"
            );
        }
    }
}
