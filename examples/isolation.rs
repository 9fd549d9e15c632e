//! Crash isolation: a real parser, `serde_json`, reads a batch of order documents in a
//! `ProcessPool`. Most documents are valid; a few are malformed, and serde_json returns
//! its error (the item fails with it, as `Err`); two are adversarially deep (a million
//! nested arrays in a free-form field). The parser runs with its recursion limit turned
//! off, as a service that must accept deeply nested data might do
//! (`Deserializer::disable_recursion_limit`, feature `unbounded_depth`), so on those two it
//! recurses until it overflows its stack: the worker process dies, as it would on a
//! segfault in a C library. Each failure costs exactly its own item; every other document
//! is parsed, checked against what was generated, and the pool goes on working.
//!
//! The report prints each item's outcome, and for each failure its one sentence (`{}`) and
//! its report (`{:#}`: the input, the worker and its pid, the attempts, each cause). The
//! per-item pass uses `imap`, which hands back each item's `Result`; then `try_map`, the
//! eager form, shows a parse error as it comes back inside a `WorkerError`.
//!
//! (The fix for this parser is to keep its depth limit, or to grow its stack with
//! `serde_stacker`; a pool of processes is what contains the crash nobody foresaw.)
//!
//! For contrast, the same batch then runs on a `ThreadPool`, in a copy of this program
//! started for the purpose: there the overflow takes the whole process down.
//!
//! `cargo run --release --example isolation`

use std::process::Command;
use std::time::Instant;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use twat_mp::{ErrorKind, ProcessPool, ThreadPool, WorkerError};

/// One order, as a shop's clients send it.
#[derive(Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    lines: Vec<Line>,
    /// Free-form data from the client, kept as it came.
    metadata: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct Line {
    sku: String,
    quantity: u32,
    unit_cents: u64,
}

/// What parsing an order gives back to the caller.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Receipt {
    id: u64,
    lines: usize,
    total_cents: u64,
}

impl Receipt {
    /// The receipt of `order`: its line count and total.
    fn of(order: &Order) -> Receipt {
        Receipt {
            id: order.id,
            lines: order.lines.len(),
            total_cents: order
                .lines
                .iter()
                .map(|line| u64::from(line.quantity) * line.unit_cents)
                .sum(),
        }
    }
}

/// Parses one order document. The depth limit is off: nothing here bounds the recursion.
fn parse_order(document: String) -> anyhow::Result<Receipt> {
    let mut json = serde_json::Deserializer::from_str(&document);
    json.disable_recursion_limit();
    let order = Order::deserialize(&mut json)
        .and_then(|order| json.end().map(|()| order))
        .with_context(|| format!("not a valid order document ({} bytes)", document.len()))?;
    Ok(Receipt::of(&order))
}

/// `parse_order` for the per-item report: a malformed document's error as its chain of
/// messages, a `String`, which crosses back as part of the item's value.
fn parse_order_or_message(document: String) -> Result<Receipt, String> {
    parse_order(document).map_err(|err| format!("{err:#}"))
}

/// What each document is, and so what parsing it must give.
enum Expect {
    Parsed(Receipt),
    Malformed(&'static str),
    TooDeep,
}

/// How deep the adversarial documents nest: far more than any stack holds.
const DEPTH: usize = 1_000_000;

/// A small deterministic generator (xorshift), so every run sees the same documents.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn order(&mut self, id: u64) -> Order {
        let lines = (0..1 + self.below(4))
            .map(|_| Line {
                sku: format!("SKU-{:04}", self.below(10_000)),
                quantity: 1 + self.below(5) as u32,
                unit_cents: 99 + self.below(20_000),
            })
            .collect();
        let names = ["ada", "grace", "edsger", "barbara", "ken", "margaret"];
        Order {
            id,
            customer: names[self.below(names.len() as u64) as usize].to_owned(),
            lines,
            metadata: serde_json::json!({ "channel": "web", "coupon": self.below(3) == 0 }),
        }
    }
}

/// The batch: 24 documents, with three malformed and two adversarially deep among them.
fn documents() -> Vec<(String, Expect)> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..24)
        .map(|id| {
            let order = rng.order(id);
            let valid = serde_json::to_string(&order).expect("an order serializes");
            match id {
                5 => (
                    valid[..valid.len() / 2].to_owned(),
                    Expect::Malformed("cut short"),
                ),
                11 => (
                    valid.replacen("\"quantity\":", "\"quantity\":-", 1),
                    Expect::Malformed("negative quantity"),
                ),
                17 => (
                    valid.replacen('}', ",}", 1),
                    Expect::Malformed("trailing comma"),
                ),
                8 | 20 => {
                    let deep = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
                    let document = valid.replacen(
                        "\"metadata\":{",
                        &format!("\"metadata\":{{\"trace\":{deep},"),
                        1,
                    );
                    (document, Expect::TooDeep)
                }
                _ => {
                    let receipt = Receipt::of(&order);
                    (valid, Expect::Parsed(receipt))
                }
            }
        })
        .collect()
}

/// Prints a failure's one sentence (`{}`) and its report (`{:#}`).
fn print_failure(err: &WorkerError) {
    println!("     {{}}    {err}");
    let report = format!("{err:#}");
    let mut lines = report.lines();
    println!("     {{:#}}  {}", lines.next().unwrap_or_default());
    for line in lines {
        println!("           {line}");
    }
}

const IN_THREADS: &str = "--in-threads";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some(IN_THREADS) {
        // The copy of this program that shows what a thread does with the same batch.
        let documents: Vec<String> = documents().into_iter().map(|(d, _)| d).collect();
        let pool = ThreadPool::with_nodes(2)?;
        let parsed = pool.map(|d: String| parse_order(d).is_ok(), documents)?;
        println!("the thread pool parsed {} documents", parsed.len());
        return Ok(());
    }

    let batch = documents();
    let bytes: usize = batch.iter().map(|(d, _)| d.len()).sum();
    let (documents, expected): (Vec<String>, Vec<Expect>) = batch.into_iter().unzip();
    println!(
        "{} order documents ({:.1} MB) parsed by serde_json in a ProcessPool of 2 worker processes.\n\
         A worker process that overflows its stack prints std's message on stderr as it dies: \
         it shows among the results.\n",
        documents.len(),
        bytes as f64 / 1e6
    );

    let pool = ProcessPool::builder().nodes(2).insights(true).build()?;
    let start = Instant::now();
    let (mut exact, mut malformed, mut crashed, mut wrong) = (0, 0, 0, Vec::new());
    let outcomes = pool.imap(parse_order_or_message, documents.clone());
    for (index, outcome) in outcomes.enumerate() {
        let expect = &expected[index];
        match (outcome, expect) {
            (Ok(Ok(receipt)), Expect::Parsed(want)) if receipt == *want => {
                exact += 1;
                println!(
                    "{index:>3}  ok        order {:>2}: {} line(s), total {:>7.2}",
                    receipt.id,
                    receipt.lines,
                    receipt.total_cents as f64 / 100.0
                );
            }
            (Ok(Err(message)), Expect::Malformed(what)) => {
                malformed += 1;
                println!("{index:>3}  ERROR     ({what}): {message}");
            }
            (Err(err), Expect::TooDeep) if matches!(err.kind(), ErrorKind::Crashed { .. }) => {
                crashed += 1;
                println!("{index:>3}  CRASHED   ({DEPTH} nested arrays): the worker process died");
                print_failure(&err);
            }
            (outcome, _) => {
                let got = match outcome {
                    Ok(parsed) => format!("{parsed:?}"),
                    Err(err) => format!("{err:#}"),
                };
                println!("{index:>3}  UNEXPECTED: {got}");
                wrong.push(index);
            }
        }
    }
    let elapsed = start.elapsed();
    let parsed = expected
        .iter()
        .filter(|e| matches!(e, Expect::Parsed(_)))
        .count();
    println!(
        "\n{exact} of {parsed} valid documents parsed, each receipt equal to the order generated; \
         {malformed} malformed documents returned their parse error; {crashed} crashed their \
         worker process and cost only themselves ({elapsed:.2?})."
    );

    if let Some(insights) = pool.insights() {
        let restarts: u64 = insights.workers().iter().filter_map(|w| w.restarts()).sum();
        println!(
            "So far the pool has started {restarts} worker processes in place of ones that died \
             (a batch whose worker dies runs again item by item, so that only the item that \
             kills a worker fails)."
        );
    }

    // The eager form of the call returns one failure: the lowest index's, with the
    // function's own error inside the `WorkerError`.
    println!(
        "\ntry_map over the same batch returns one error, the failure of lowest index \
         (the deep documents crash their workers again meanwhile):"
    );
    match pool.try_map(parse_order, documents.clone()) {
        Ok(receipts) => {
            println!("  UNEXPECTED: {} receipts", receipts.len());
            wrong.push(usize::MAX);
        }
        Err(err) => {
            if !matches!(err.kind(), ErrorKind::Failed(_)) || err.index() != 5 {
                wrong.push(err.index());
            }
            print_failure(&err);
        }
    }

    // The pool replaced the dead workers and goes on: the whole valid batch again.
    let valid: Vec<String> = documents
        .iter()
        .zip(&expected)
        .filter(|(_, e)| matches!(e, Expect::Parsed(_)))
        .map(|(d, _)| d.clone())
        .collect();
    let again = pool.try_map(parse_order, valid)?;
    let want: Vec<&Receipt> = expected
        .iter()
        .filter_map(|e| match e {
            Expect::Parsed(receipt) => Some(receipt),
            _ => None,
        })
        .collect();
    let same = again.iter().zip(&want).all(|(got, want)| got == *want);
    println!(
        "\nThe same pool, after the crashes: {} valid documents parsed again, {}.",
        again.len(),
        if same { "all exact" } else { "NOT all exact" }
    );

    // The contrast: the same batch in threads, in a copy of this program.
    println!("\nThe same batch on a ThreadPool (in a copy of this program, started to show it):");
    let child = Command::new(std::env::current_exe()?)
        .arg(IN_THREADS)
        .output()?;
    let stderr = String::from_utf8_lossy(&child.stderr);
    for line in stderr.lines().filter(|line| !line.trim().is_empty()) {
        println!("  stderr: {line}");
    }
    println!(
        "  the program ended: {}; it printed {} results.",
        describe(child.status),
        String::from_utf8_lossy(&child.stdout).lines().count()
    );

    if !wrong.is_empty() || !same || crashed != 2 || malformed != 3 {
        return Err(format!("unexpected outcomes for items {wrong:?}").into());
    }
    Ok(())
}

/// How a process ended, in words.
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("it exited with status {code}"),
        (None, Some(6)) => "it was killed by signal 6 (SIGABRT)".to_owned(),
        (None, Some(signal)) => format!("it was killed by signal {signal}"),
        (None, None) => "it ended in an unknown way".to_owned(),
    }
}
