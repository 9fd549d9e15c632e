//! A tour of twat-mp: every feature once, each on real work.
//!
//! Run: `cargo run --release --example tour`
//!
//! 1. `#[pmap]`: primes in blocks of numbers, in parallel, in input order.
//! 2. `#[pmap]` on a `Result` function: the lowest failing item's own error comes back.
//! 3. `#[imap]` over an endless input: lazy, and it pulls only what it needs.
//! 4. `#[amap]`: returns at once; the results are collected later.
//! 5. `ThreadPool` with pathos's methods, and `WorkerError` naming the failed item.
//! 6. `ProcessPool` and `#[pmap(process)]`: a crashing or hanging item costs only itself.
//! 7. `AsyncMultiPool` and `#[apmap]`: async file I/O, many tasks in flight.
//! 8. Debug mode: pool, worker and failure events through `tracing`.
//! 9. A state per worker (`map_init`, `init = ...`) and data shared by all (`map_with`).
//! 10. Progress bars and insights: what each worker did, and the slowest items.
//! 11. Where to go next: the examples that show each part on real work.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use twat_mp::{
    AsyncMultiPool, ErrorKind, ProcessPool, ThreadPool, amap, apmap, imap, pmap, set_debug_mode,
};
use twat_mp_workspace::factors::{FactorTable, largest_prime_factor, primes_below};
use twat_mp_workspace::numbers::{collatz_steps, count_primes, is_prime};

fn section(title: &str) {
    println!("\n== {title}");
}

// 1 ------------------------------------------------------------------------------------

/// Primes in `[n * 250_000, (n + 1) * 250_000)`.
#[pmap]
fn primes_in_block(n: u64) -> usize {
    count_primes(n * 250_000, (n + 1) * 250_000)
}

// 2 ------------------------------------------------------------------------------------

/// Why a line of a settings file was refused.
#[derive(Debug, PartialEq)]
enum BadLine {
    NoEquals(String),
    NotANumber(String),
}

/// Parses `key = number`.
#[pmap]
fn parse_setting(line: &str) -> Result<(String, u32), BadLine> {
    let (key, value) = line
        .split_once('=')
        .ok_or_else(|| BadLine::NoEquals(line.to_owned()))?;
    let value = value
        .trim()
        .parse()
        .map_err(|_| BadLine::NotANumber(value.trim().to_owned()))?;
    Ok((key.trim().to_owned(), value))
}

// 3 ------------------------------------------------------------------------------------

/// `n` with its Collatz chain length.
#[imap]
fn chain(n: u64) -> (u64, u32) {
    (n, collatz_steps(n))
}

// 4 ------------------------------------------------------------------------------------

/// Twin primes (p, p + 2) below `limit`.
#[amap]
fn twin_primes_below(limit: u64) -> usize {
    (2..limit)
        .filter(|&p| is_prime(p) && is_prime(p + 2))
        .count()
}

// 6 ------------------------------------------------------------------------------------

/// A stand-in for a native decoder with a memory-safety bug: it aborts the whole process
/// on a record whose length byte lies, and hangs forever on an empty record, as buggy C
/// libraries do. Isolated in worker processes, only those records are lost.
fn decode_record(record: Vec<u8>) -> u64 {
    match record.split_first() {
        None => loop {
            std::thread::park(); // a hang: waits for a wake-up that never comes
        },
        Some((&len, body)) if usize::from(len) != body.len() => std::process::abort(),
        Some((_, body)) => body.iter().map(|&b| u64::from(b)).sum(),
    }
}

/// Halves a generated picture with the `image` crate, in a worker process, and gives the
/// mean brightness of the result.
#[pmap(process, nodes = 2)]
fn thumbnail_mean(seed: u64) -> u64 {
    let rings = 1.0 + (seed % 5) as f64 / 4.0;
    let picture = image::GrayImage::from_fn(512, 512, |x, y| {
        let r = f64::from(x).hypot(f64::from(y)) * rings;
        image::Luma([(127.5 + 127.5 * (r / 3.0).sin()) as u8])
    });
    let half = image::imageops::resize(&picture, 256, 256, image::imageops::FilterType::Triangle);
    half.pixels().map(|p| u64::from(p.0[0])).sum::<u64>() / (256 * 256)
}

// 7 ------------------------------------------------------------------------------------

/// Counts the words of one file with tokio's async file I/O.
#[apmap(concurrency = 32)]
async fn word_count(path: PathBuf) -> io::Result<usize> {
    let text = tokio::fs::read_to_string(&path).await?;
    Ok(text.split_whitespace().count())
}

// 9 ------------------------------------------------------------------------------------

/// The table each worker makes once per call: the smallest prime factor of every number
/// below 2,000,000 (a sieve, some milliseconds of work).
fn factor_table() -> FactorTable {
    INITS.fetch_add(1, Ordering::Relaxed);
    FactorTable::below(2_000_000)
}

static INITS: AtomicUsize = AtomicUsize::new(0);

/// How many prime factors `n` has, counted with multiplicity, from the worker's table.
#[pmap(init = factor_table)]
fn prime_factor_count(table: &mut FactorTable, n: u64) -> u32 {
    table.factors(n).len() as u32
}

async fn line_count(path: PathBuf) -> usize {
    tokio::fs::read_to_string(&path)
        .await
        .map_or(0, |text| text.lines().count())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    section("1. #[pmap]: primes in 12 blocks of 250,000 numbers");
    let start = Instant::now();
    let primes_per_block = primes_in_block(0..12);
    println!(
        "   {primes_per_block:?}\n   {} primes below 3,000,000 in {:.0?}",
        primes_per_block.iter().sum::<usize>(),
        start.elapsed()
    );

    section("2. #[pmap] on a Result function: the lowest failing line's own error");
    let good = parse_setting(["threads = 8", "retries = 3"]).expect("two good lines");
    println!("   parsed {good:?}");
    let bad = parse_setting(["threads = 8", "retries: 3", "timeout = soon"]);
    println!("   a file with two bad lines gives {bad:?}");

    section("3. #[imap] over an endless input: the first 5 numbers with chains over 200 steps");
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let numbers = (1_u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let long: Vec<(u64, u32)> = chain(numbers).filter(|&(_, s)| s > 200).take(5).collect();
    println!(
        "   {long:?}\n   computed after pulling {} numbers from an endless range",
        pulled.load(Ordering::Relaxed)
    );

    section("4. #[amap]: started in the background, collected later");
    let pending = twin_primes_below([10_000, 100_000, 1_000_000]);
    println!("   returned at once (ready: {})", pending.ready());
    println!("   twin primes below 10^4, 10^5, 10^6: {:?}", pending.get());

    section("5. ThreadPool: map, imap, uimap, amap, starmap, apply, apipe; WorkerError");
    let pool = ThreadPool::new()?;
    let words = ["parallel", "map", "with", "one", "attribute"];
    let suffix = "!"; // borrowed by every item: map waits for all of them
    println!(
        "   map      {:?}",
        pool.map(|w: &str| format!("{w}{suffix}"), words)?
    );
    let squares: Vec<u64> = pool
        .imap(|n: u64| n * n, 1..)
        .take(6)
        .collect::<Result<_, _>>()?;
    println!("   imap     first squares of an endless range: {squares:?}");
    let mut done: Vec<u64> = pool
        .uimap(
            |limit: u64| count_primes(0, limit) as u64,
            vec![2_000_000, 10, 1_000],
        )
        .collect::<Result<_, _>>()?;
    println!("   uimap    in completion order: {done:?}");
    done.sort_unstable();
    println!(
        "   amap     {:?}",
        pool.amap(collatz_steps, [27, 97, 871]).get()?
    );
    let spans = vec![(0, 100), (100, 1_000), (1_000, 10_000)];
    println!(
        "   starmap  primes per span: {:?}",
        pool.starmap(|a: u64, b: u64| count_primes(a, b), spans)?
    );
    println!("   apply    {:?}", pool.apply(collatz_steps, 837_799)?);
    println!("   apipe    {:?}", pool.apipe(collatz_steps, 77_031).get()?);
    let err = pool
        .map(|n: u64| 1_000 / (n % 40), 1..100)
        .expect_err("n % 40 == 0 divides by zero");
    println!("   a failure: {err}");
    println!(
        "   index {} (the lowest of the 2 failing items, every run), worker {:?}, backtrace of {} lines",
        err.index(),
        err.worker(),
        err.traceback().map_or(0, |t| t.lines().count())
    );
    // `{:#}` (or `err.report()`) adds the details on lines of their own, as for a log.
    println!("   in full, with {{:#}} (up to its traceback):");
    for line in format!("{err:#}")
        .lines()
        .take_while(|line| line.trim() != "traceback:")
    {
        println!("     {line}");
    }

    section("6. ProcessPool: a crash or a hang costs only its own item");
    let records: Vec<Vec<u8>> = vec![
        vec![3, 1, 2, 3],
        vec![9, 1], // lies about its length: aborts the process decoding it
        vec![2, 200, 55],
        vec![], // hangs the process decoding it
        vec![1, 42],
    ];
    let isolated = ProcessPool::builder()
        .nodes(2)
        .timeout(Duration::from_secs(1))
        .build()?;
    for (i, record) in records.iter().enumerate() {
        let result = isolated.apply(decode_record, record.clone());
        match result {
            Ok(sum) => println!("   record {i}: sum {sum}"),
            Err(err) => match err.kind() {
                ErrorKind::Crashed { .. } | ErrorKind::TimedOut { .. } => {
                    println!("   record {i}: lost, {}", err.kind())
                }
                _ => println!("   record {i}: {err}"),
            },
        }
    }
    let sums = isolated.map(decode_record, records.clone());
    println!(
        "   one map over the same records reports the lowest loss: {}",
        sums.unwrap_err()
    );
    let sums = isolated.map(decode_record, vec![vec![2, 7, 8], vec![1, 9]])?;
    println!("   and the pool is still usable: {sums:?}");
    let retrying = ProcessPool::builder().nodes(2).retries(2).build()?;
    let err = retrying
        .apply(decode_record, vec![9, 1])
        .expect_err("it crashes on every run");
    println!(
        "   with retries(2) a crash runs again on a fresh worker: {} attempts, then {}",
        err.attempts(),
        err.kind()
    );
    println!(
        "   #[pmap(process)] thumbnail means: {:?}",
        thumbnail_mean(0..6)
    );

    section("7. AsyncMultiPool and #[apmap]: async file I/O");
    let dir = std::env::temp_dir().join(format!("twat-mp-tour-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let paths: Vec<PathBuf> = (0..200)
        .map(|n| {
            let path = dir.join(format!("page-{n}.html"));
            let html = format!(
                "<html><title>Page {n}</title><p>{}</p></html>",
                "word ".repeat(n % 7 + 1)
            );
            std::fs::write(&path, html).map(|()| path)
        })
        .collect::<io::Result<_>>()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let counts = word_count(paths.clone()).await?;
        println!(
            "   #[apmap]  {} files, {} words in all",
            counts.len(),
            counts.iter().sum::<usize>()
        );
        let pool = AsyncMultiPool::with_nodes(2)?;
        let lines = pool.map(line_count, paths.clone()).await?;
        println!(
            "   AsyncMultiPool::map  {} lines in all",
            lines.iter().sum::<usize>()
        );
        let missing = word_count(vec![dir.join("page-0.html"), dir.join("no-such-file")]).await;
        println!(
            "   a missing file gives its own error: {:?}",
            missing.map_err(|e| e.kind())
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    std::fs::remove_dir_all(&dir)?;

    section("8. Debug mode: events on stderr (set_debug_mode or TWAT_MP_DEBUG=1)");
    set_debug_mode(true);
    let small = ThreadPool::with_nodes(2)?;
    let _ = small.map(|n: u32| assert!(n != 3, "three"), 0..5);
    drop(small);
    set_debug_mode(false);

    section("9. A state per worker (map_init, init = ...) and data shared by all (map_with)");
    let numbers: Vec<u64> = (1_000_000..1_400_000).collect();
    let counts = prime_factor_count(numbers.clone());
    println!(
        "   #[pmap(init = factor_table)]  {} numbers, {} prime factors in all; the 2,000,000-entry \
         table was made {} times (once per worker), not {}",
        counts.len(),
        counts.iter().map(|&c| u64::from(c)).sum::<u64>(),
        INITS.load(Ordering::Relaxed),
        counts.len()
    );
    let primes = primes_below(1_100_000);
    let processes = ProcessPool::with_nodes(2)?;
    let big: Vec<u64> = (0..10_000)
        .map(|i| 1_000_000_007 * 1_009 + i * 7_919)
        .collect();
    let largest = processes.map_with(primes.clone(), largest_prime_factor, big.clone())?;
    println!(
        "   ProcessPool::map_with  largest prime factors of {} numbers, e.g. {} of {}: the \
         table of {} primes crossed once to each of 2 worker processes, not with each item",
        largest.len(),
        largest[0],
        big[0],
        primes.len()
    );

    section("10. Progress bars and insights (a bar shows when stderr is a terminal)");
    let observed = ThreadPool::builder()
        .nodes(2)
        .progress(true)
        .insights(true)
        .build()?;
    let limits: Vec<u64> = (1..=64).map(|i| i * i * 500).collect();
    let counted = observed.map(|limit: u64| count_primes(0, limit), limits)?;
    println!(
        "   counted the primes below 64 limits (the last: {})",
        counted.last().copied().unwrap_or(0)
    );
    let insights = observed.insights().expect("built with insights(true)");
    for line in insights.to_string().lines() {
        println!("   {line}");
    }

    section("11. Next: the examples that show each part on real work");
    for (example, what) in [
        (
            "web_titles",
            "page titles with ureq on a ThreadPool, against an axum site on 127.0.0.1",
        ),
        (
            "thread_status",
            "URL statuses on threads, a 404 and a refused connection among them",
        ),
        (
            "async_fetch",
            "#[apmap] and reqwest fetching 300 pages at once",
        ),
        (
            "image_resize",
            "Lanczos3 thumbnails of PNG files with the image crate and #[pmap]",
        ),
        (
            "hash_files",
            "a tree walked with walkdir and hashed with blake3, with a progress bar",
        ),
        (
            "isolation",
            "serde_json overflowing its stack in worker processes, item by item",
        ),
        ("decorators", "the four attributes side by side"),
        ("process_squares", "ProcessPool in a few lines"),
        (
            "mpi_map",
            "MpiPool over the ranks of an MPI job (--features mpi, under mpirun)",
        ),
    ] {
        println!("   cargo run --release --example {example:<16} {what}");
    }

    let distinct: HashSet<usize> = primes_per_block.into_iter().collect();
    println!("\ndone ({} distinct block counts)", distinct.len());
    Ok(())
}
