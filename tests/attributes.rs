//! `#[pmap]`, `#[imap]` and `#[amap]` through the public API, as a user writes them.

#[path = "../twat-mp/tests/support/mod.rs"]
mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use twat_mp::{amap, imap, pmap};
use twat_mp_workspace::numbers::collatz_steps;

/// Generous bound for waits that only a broken mapper would reach.
const PATIENCE: Duration = Duration::from_secs(30);

/// A door that work items wait at until the test opens it. Waiting past [`PATIENCE`]
/// panics, so a broken mapper fails the test instead of hanging it.
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    const fn new() -> Self {
        Gate {
            open: Mutex::new(false),
            opened: Condvar::new(),
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let open = self.open.lock().unwrap();
        let (open, waited) = self
            .opened
            .wait_timeout_while(open, PATIENCE, |open| !*open)
            .unwrap();
        assert!(*open && !waited.timed_out(), "the gate was never opened");
    }
}

// ---------------------------------------------------------------------------------------
// #[pmap]

#[pmap(nodes = 3)]
fn steps(n: u64) -> u32 {
    collatz_steps(n)
}

#[test]
fn pmap_returns_every_result_in_input_order() {
    let serial: Vec<u32> = (1..=2_000).map(collatz_steps).collect();
    assert_eq!(steps(1..=2_000), serial);
    assert_eq!(steps(vec![27, 1, 9]), [111, 0, 19]);
    assert!(steps(Vec::new()).is_empty());
}

#[pmap]
fn scaled(x: u64, factor: u64) -> u64 {
    x * factor
}

#[pmap(chunksize = 2)]
fn sum_pair((a, b): (u8, u8), mut n: u64) -> u64 {
    n += u64::from(a) + u64::from(b);
    n
}

#[test]
fn several_parameters_map_over_tuples() {
    assert_eq!(scaled(vec![(1, 2), (3, 4), (5, 6)]), [2, 12, 30]);
    assert_eq!(sum_pair([((1, 2), 10), ((3, 4), 20)]), [13, 27]);
}

#[pmap]
fn describe<T: std::fmt::Debug>(x: T) -> String {
    format!("<{x:?}>")
}

#[pmap]
fn parse_as<T: std::str::FromStr>(text: &str) -> Option<T> {
    text.parse().ok()
}

#[test]
fn generic_functions_stay_generic() {
    assert_eq!(describe([1, 2]), ["<1>", "<2>"]);
    assert_eq!(describe(vec!["a"]), ["<\"a\">"]);
    assert_eq!(parse_as::<u8>(["7", "x", "300"]), [Some(7), None, None]);
    assert_eq!(parse_as::<f32>(["0.5"]), [Some(0.5)]);
}

mod geometry {
    use twat_mp::pmap;

    /// The area of a square of side `side`.
    #[pmap]
    pub fn area(side: f64) -> f64 {
        side * side
    }
}

#[test]
fn visibility_is_kept() {
    assert_eq!(geometry::area([1.5, 2.0]), [2.25, 4.0]);
}

#[pmap]
fn word_length(word: &str) -> usize {
    word.len()
}

#[pmap]
fn first_word(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

#[test]
fn pmap_items_may_borrow() {
    let text = String::from("one three fifteen");
    assert_eq!(word_length(text.split_whitespace()), [3, 5, 7]);
    let lines = [String::from("alpha beta"), String::from("gamma")];
    let firsts = first_word(lines.iter().map(String::as_str));
    assert_eq!(firsts, ["alpha", "gamma"]);
}

#[derive(Debug, PartialEq)]
struct Boom(u32);

#[pmap(nodes = 2, chunksize = 1)]
fn fragile(x: u32) -> u32 {
    if x == 3 || x == 7 {
        std::panic::panic_any(Boom(x));
    }
    x
}

#[test]
fn a_panicking_item_resumes_its_own_payload_in_the_caller() {
    let payload = catch_unwind(|| fragile(0..10)).expect_err("items 3 and 7 panic");
    let boom = payload
        .downcast::<Boom>()
        .expect("the payload is the one the item panicked with");
    assert_eq!(*boom, Boom(3), "the lowest failing item is reported");
    assert_eq!(fragile(0..3), [0, 1, 2]);
}

#[pmap]
fn shout(word: String) -> String {
    assert!(!word.is_empty(), "an empty word: {word:?}");
    word.to_uppercase()
}

#[test]
fn a_panic_message_comes_back_as_written() {
    let payload = catch_unwind(|| shout(vec!["a".into(), String::new()])).unwrap_err();
    let message = payload.downcast::<String>().expect("a formatted message");
    assert_eq!(*message, "an empty word: \"\"");
}

/// An error type that is not `std::error::Error`, not even `Debug`.
struct Refused {
    item: u32,
}

#[pmap(nodes = 2, chunksize = 1)]
fn check(x: u32) -> Result<u32, Refused> {
    if x % 4 == 3 {
        Err(Refused { item: x })
    } else {
        Ok(x * 10)
    }
}

#[pmap]
fn parse_number(text: &str) -> Result<u64, std::num::ParseIntError> {
    text.parse()
}

#[pmap]
fn file_size(path: std::path::PathBuf) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

#[test]
fn a_result_function_returns_the_lowest_failing_items_own_error() {
    match check(0..12) {
        Err(Refused { item }) => assert_eq!(item, 3),
        Ok(values) => panic!("items 3, 7 and 11 fail, yet got {values:?}"),
    }
    assert!(matches!(check([0, 1, 2]), Ok(v) if v == [0, 10, 20]));

    assert_eq!(parse_number(["1", "22"]), Ok(vec![1, 22]));
    let err = parse_number(["1", "x", "-"]).unwrap_err();
    assert_eq!(err, "x".parse::<u64>().unwrap_err());

    let manifest = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let sizes = file_size([manifest.clone()]).unwrap();
    assert_eq!(sizes, [std::fs::metadata(&manifest).unwrap().len()]);
    let missing = file_size([manifest, "no/such/file".into()]).unwrap_err();
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
}

/// The error of [`parse_marked`], behind the alias [`Parsed`].
#[derive(Debug, PartialEq)]
struct NotANumber(String);

/// A `Result` behind an alias of another name: the attributes see only `Parsed<T>`.
type Parsed<T> = Result<T, NotANumber>;

#[pmap(result, nodes = 2)]
fn parse_marked(text: &str) -> Parsed<u32> {
    text.parse().map_err(|_| NotANumber(text.to_owned()))
}

#[imap(result)]
fn parse_marked_lazily(text: String) -> Parsed<u32> {
    text.parse().map_err(|_| NotANumber(text))
}

#[amap(result)]
fn parse_marked_in_background(text: String) -> Parsed<u32> {
    text.parse().map_err(|_| NotANumber(text))
}

/// `fmt::Result` has no `R` written, yet it is recognised by its name.
#[pmap]
fn small(x: u32) -> std::fmt::Result {
    if x < 10 { Ok(()) } else { Err(std::fmt::Error) }
}

#[test]
fn a_result_behind_an_alias_is_a_result_when_marked() {
    let all: Parsed<Vec<u32>> = parse_marked(["1", "22"]);
    assert_eq!(all, Ok(vec![1, 22]));
    assert_eq!(
        parse_marked(["1", "x", "y"]),
        Err(NotANumber("x".to_owned()))
    );
    let each: Vec<Parsed<u32>> = parse_marked_lazily(["3", "z"].map(String::from)).collect();
    assert_eq!(each, [Ok(3), Err(NotANumber("z".to_owned()))]);
    assert_eq!(
        parse_marked_in_background(["4", "w"].map(String::from)).get(),
        Err(NotANumber("w".to_owned()))
    );
    assert_eq!(small([1, 2]), Ok(vec![(), ()]));
    assert_eq!(small([1, 20, 30]), Err(std::fmt::Error));
}

// ---------------------------------------------------------------------------------------
// Associated functions: the function of one item sees `Self` and the impl's generics.

#[derive(Debug, PartialEq)]
struct Celsius(f64);

impl Celsius {
    const FREEZING_F: f64 = 32.0;

    #[pmap]
    fn from_fahrenheit(f: f64) -> Self {
        Self((f - Self::FREEZING_F) / 1.8)
    }

    #[amap(nodes = 2)]
    fn checked(f: f64) -> Result<Self, String> {
        if f < -459.67 {
            Err(format!("{f} °F is below absolute zero"))
        } else {
            Ok(Self::from_one(f))
        }
    }

    fn from_one(f: f64) -> Self {
        Self((f - Self::FREEZING_F) / 1.8)
    }
}

#[derive(Debug, PartialEq)]
struct Labelled<T> {
    label: &'static str,
    value: T,
}

impl<T: Clone + Send + 'static> Labelled<T> {
    #[imap]
    fn twice(value: T) -> (T, T) {
        (value.clone(), value)
    }

    #[pmap]
    fn unlabelled(value: T) -> Self {
        Labelled { label: "", value }
    }
}

#[test]
fn associated_functions_map_with_self_and_the_impls_generics() {
    assert_eq!(
        Celsius::from_fahrenheit([32.0, 212.0]),
        [Celsius(0.0), Celsius(100.0)]
    );
    assert_eq!(Celsius::checked(vec![32.0]).get(), Ok(vec![Celsius(0.0)]));
    assert_eq!(
        Celsius::checked(vec![32.0, -500.0]).get(),
        Err("-500 °F is below absolute zero".to_owned())
    );
    let pairs: Vec<(u8, u8)> = Labelled::<u8>::twice(1..3).collect();
    assert_eq!(pairs, [(1, 1), (2, 2)]);
    let plain = Labelled::unlabelled(["a".to_owned()]);
    assert_eq!(
        plain,
        [Labelled {
            label: "",
            value: "a".to_owned()
        }]
    );
}

/// A function that calls itself by name calls its function of one item, as written.
#[pmap]
fn fibonacci(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fibonacci(n - 1) + fibonacci(n - 2)
    }
}

#[test]
fn a_recursive_function_calls_itself_on_one_item() {
    assert_eq!(fibonacci(0..8), [0, 1, 1, 2, 3, 5, 8, 13]);
}

#[pmap(debug)]
fn debugged(x: u32) -> u32 {
    x + 1
}

#[test]
fn the_debug_option_works() {
    assert_eq!(debugged([1, 2, 3]), [2, 3, 4]);
}

#[pmap(nodes = 2)]
fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn a_mapper_may_be_called_from_several_threads_at_once() {
    let expected: Vec<u64> = (0..500).map(|x| x * x).collect();
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| (0..20).map(|_| square(0..500)).collect::<Vec<_>>()))
            .collect();
        for call in calls {
            for result in call.join().unwrap() {
                assert_eq!(result, expected);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// #[imap]

static PULLED: AtomicUsize = AtomicUsize::new(0);

#[imap(nodes = 2)]
fn cube(x: u64) -> u64 {
    x * x * x
}

#[test]
fn imap_on_an_endless_input_yields_its_first_results_and_pulls_a_bounded_number() {
    // A mapper that drained its input would fail here instead of running forever.
    let endless = (0_u64..).inspect(|_| {
        let pulled = PULLED.fetch_add(1, Ordering::SeqCst);
        assert!(pulled < 100_000, "the endless input is being drained");
    });
    let mut cubes = cube(endless);
    let first: Vec<u64> = cubes.by_ref().take(5).collect();
    assert_eq!(first, [0, 1, 8, 27, 64]);
    // The default window: two chunks per thread ahead of the consumer, a chunk that
    // doubles with each fast job up to 1,024 items (the last one may reach past the
    // window), and an input that gives its items at once (this one) read at most 128
    // further: the documented bound of the adaptive chunks, as in the thread pool's tests.
    let bound = 5 + 2 * 2 * 1_024 + 1_023 + 128;
    let pulled = PULLED.load(Ordering::SeqCst);
    assert!(pulled <= bound, "{pulled} items pulled for 5 results");
    drop(cubes);
    let pulled = PULLED.load(Ordering::SeqCst);
    assert!(pulled <= bound + 1, "{pulled} items pulled for 5 results");
}

#[imap(ordered = false, nodes = 2)]
fn doubled(x: u64) -> u64 {
    x * 2
}

#[test]
fn imap_unordered_gives_every_result() {
    let mut all: Vec<u64> = doubled(0..300).collect();
    all.sort_unstable();
    assert_eq!(all, (0..300).map(|x| x * 2).collect::<Vec<_>>());
}

static LATE: Gate = Gate::new();

#[imap(ordered = false, nodes = 2, chunksize = 1)]
fn late_zero(x: u32) -> u32 {
    if x == 0 {
        LATE.pass();
    }
    x
}

#[test]
fn imap_unordered_yields_in_completion_order() {
    let mut results = late_zero(vec![0, 1]);
    // Item 0 waits until item 1's result has been seen.
    assert_eq!(results.next(), Some(1));
    LATE.open();
    assert_eq!(results.next(), Some(0));
    assert_eq!(results.next(), None);
}

#[imap(nodes = 2)]
fn checked(x: u32) -> Result<u32, String> {
    if x == 2 {
        Err(format!("no {x}"))
    } else {
        Ok(x)
    }
}

#[imap]
fn fragile_lazy(x: u32) -> u32 {
    if x == 2 {
        std::panic::panic_any(Boom(x));
    }
    x
}

#[test]
fn imap_gives_each_items_result_and_resumes_panics_where_they_are_reached() {
    let results: Vec<Result<u32, String>> = checked(0..4).collect();
    assert_eq!(results, [Ok(0), Ok(1), Err("no 2".to_string()), Ok(3)]);

    let mut values = fragile_lazy(vec![0, 1, 2, 3]);
    assert_eq!(values.next(), Some(0));
    assert_eq!(values.next(), Some(1));
    let payload = catch_unwind(AssertUnwindSafe(|| values.next())).unwrap_err();
    assert_eq!(*payload.downcast::<Boom>().unwrap(), Boom(2));
}

/// Sends `0..n` into a channel and keeps its sender open: an input with `n` items ready
/// that then waits for more, as a socket would.
fn live_input(n: u64) -> (std::sync::mpsc::Sender<u64>, std::sync::mpsc::Receiver<u64>) {
    let (sender, receiver) = std::sync::mpsc::channel();
    for item in 0..n {
        sender.send(item).unwrap();
    }
    (sender, receiver)
}

#[imap(nodes = 2)]
fn tripled(x: u64) -> u64 {
    x * 3
}

#[imap(ordered = false, nodes = 2, chunksize = 16)]
fn tripled_unordered(x: u64) -> u64 {
    x * 3
}

#[test]
fn imap_takes_exactly_what_a_live_input_sent() {
    let (ordered, mut unordered) = support::within(PATIENCE, "#[imap] over a live input", || {
        let (sender, input) = live_input(4);
        let ordered: Vec<u64> = tripled(input).take(4).collect();
        let (more, input) = live_input(4);
        let unordered: Vec<u64> = tripled_unordered(input).take(4).collect();
        drop((sender, more));
        (ordered, unordered)
    });
    assert_eq!(ordered, [0, 3, 6, 9]);
    unordered.sort_unstable();
    assert_eq!(unordered, [0, 3, 6, 9]);
}

#[test]
fn imap_hands_each_result_over_while_a_live_input_waits() {
    support::within(PATIENCE, "#[imap], one item at a time", || {
        let (sender, input) = std::sync::mpsc::channel();
        let mut results = tripled(input);
        for n in 0..10 {
            sender.send(n).unwrap();
            assert_eq!(results.next(), Some(n * 3));
        }
        drop(sender);
        assert_eq!(results.next(), None);
    });
}

// ---------------------------------------------------------------------------------------
// #[amap]

static AMAP_GATE: Gate = Gate::new();
static AMAP_STARTED: AtomicUsize = AtomicUsize::new(0);

#[amap(nodes = 2)]
fn gated_double(x: u32) -> u32 {
    AMAP_STARTED.fetch_add(1, Ordering::SeqCst);
    AMAP_GATE.pass();
    x * 2
}

#[test]
fn amap_returns_before_the_work_is_done() {
    let mut pending = gated_double(vec![1, 2, 3]);
    // The call returned while every item is still held at the gate.
    assert!(!pending.ready());
    assert!(!pending.wait(Duration::from_millis(20)));
    AMAP_GATE.open();
    assert!(pending.wait(PATIENCE));
    assert_eq!(pending.get(), [2, 4, 6]);
    assert_eq!(AMAP_STARTED.load(Ordering::SeqCst), 3);
}

#[amap]
fn halve(x: u32) -> Result<u32, Refused> {
    if x % 2 == 1 {
        Err(Refused { item: x })
    } else {
        Ok(x / 2)
    }
}

#[amap]
fn fragile_background(x: u32) -> u32 {
    if x == 1 {
        std::panic::panic_any(Boom(x));
    }
    x
}

#[test]
fn amap_get_gives_what_pmap_would() {
    assert!(matches!(halve(vec![2, 4]).get(), Ok(v) if v == [1, 2]));
    match halve(vec![2, 5, 7]).get() {
        Err(Refused { item }) => assert_eq!(item, 5),
        Ok(v) => panic!("5 and 7 fail, yet got {v:?}"),
    }
    let pending = fragile_background(0..3);
    let payload = catch_unwind(AssertUnwindSafe(|| pending.get())).unwrap_err();
    assert_eq!(*payload.downcast::<Boom>().unwrap(), Boom(1));
}

// ---------------------------------------------------------------------------------------
// `process`: the same attributes on worker processes.

#[cfg(target_os = "linux")]
mod in_worker_processes {
    use twat_mp::{amap, imap, pmap};

    #[pmap(process, nodes = 2)]
    fn square(x: u64) -> u64 {
        x * x
    }

    #[pmap(process, timeout = "30s")]
    fn parse(line: String) -> Result<u32, String> {
        line.parse().map_err(|_| format!("not a number: {line}"))
    }

    #[imap(process, ordered = false)]
    fn cube(x: u64) -> u64 {
        x * x * x
    }

    #[imap(process, nodes = 2)]
    fn doubled(x: u64) -> u64 {
        x * 2
    }

    #[amap(process)]
    fn halve(x: u64) -> Result<u64, String> {
        if x % 2 == 0 {
            Ok(x / 2)
        } else {
            Err(format!("odd: {x}"))
        }
    }

    /// An associated function under `process`: the closure that the worker runs sees
    /// `Self`.
    struct Scale;

    impl Scale {
        const FACTOR: u64 = 3;

        #[pmap(process)]
        fn scaled(x: u64) -> u64 {
            x * Self::FACTOR
        }
    }

    #[test]
    fn an_associated_function_maps_in_worker_processes() {
        assert_eq!(Scale::scaled(1..=3), [3, 6, 9]);
    }

    #[test]
    fn process_mappers_give_what_thread_mappers_give() {
        assert_eq!(square(1..=5), [1, 4, 9, 16, 25]);
        assert_eq!(parse(vec!["1".into(), "22".into()]), Ok(vec![1, 22]));
        assert_eq!(
            parse(vec!["1".into(), "x".into(), "y".into()]),
            Err("not a number: x".to_string())
        );
        let mut cubes: Vec<u64> = cube(1..5).collect();
        cubes.sort_unstable();
        assert_eq!(cubes, [1, 8, 27, 64]);
        assert_eq!(halve(vec![2, 4]).get(), Ok(vec![1, 2]));
        assert_eq!(halve(vec![2, 5, 7]).get(), Err("odd: 5".to_string()));
    }

    #[test]
    fn process_imap_takes_exactly_what_a_live_input_sent() {
        let (ordered, mut unordered) = super::support::within(
            super::PATIENCE,
            "#[imap(process)] over a live input",
            || {
                let (sender, input) = super::live_input(4);
                let ordered: Vec<u64> = doubled(input).take(4).collect();
                let (more, input) = super::live_input(4);
                let unordered: Vec<u64> = cube(input).take(4).collect();
                drop((sender, more));
                (ordered, unordered)
            },
        );
        assert_eq!(ordered, [0, 2, 4, 6]);
        unordered.sort_unstable();
        assert_eq!(unordered, [0, 1, 8, 27]);
    }

    #[test]
    fn process_imap_hands_each_result_over_while_a_live_input_waits() {
        super::support::within(
            super::PATIENCE,
            "#[imap(process)], one item at a time",
            || {
                let (sender, input) = std::sync::mpsc::channel();
                let mut results = doubled(input);
                for n in 0..10 {
                    sender.send(n).unwrap();
                    assert_eq!(results.next(), Some(n * 2));
                }
                drop(sender);
                assert_eq!(results.next(), None);
            },
        );
    }
}

/// The mapper's own names (`items`, the closure's parameter) cannot clash with the user's.
#[pmap]
fn items(item: u32, items: u32) -> u32 {
    item + items
}

#[test]
fn generated_names_do_not_clash_with_the_users() {
    assert_eq!(items([(1, 2), (3, 4)]), [3, 7]);
}

#[cfg(feature = "aio")]
mod async_associated_functions {
    use twat_mp::apmap;

    struct Page;

    impl Page {
        const HEADER: &'static str = "# ";

        #[apmap]
        async fn heading(text: String) -> String {
            tokio::task::yield_now().await;
            format!("{}{text}", Self::HEADER)
        }
    }

    #[tokio::test]
    async fn apmap_on_an_associated_function_sees_self() {
        let headings = Page::heading(["a", "b"].map(String::from)).await;
        assert_eq!(headings, ["# a", "# b"]);
    }
}

// ---------------------------------------------------------------------------------------
// `init = make_state`: a state per worker thread

mod worker_state {
    use std::num::ParseIntError;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use twat_mp::{amap, imap, pmap};

    static BUFFERS: AtomicUsize = AtomicUsize::new(0);

    fn make_buffer() -> String {
        BUFFERS.fetch_add(1, Ordering::SeqCst);
        String::with_capacity(32)
    }

    /// The state comes first; the items are the remaining argument.
    #[pmap(nodes = 2, init = make_buffer)]
    fn render(buffer: &mut String, n: u64) -> usize {
        buffer.clear();
        buffer.push_str(&n.to_string());
        buffer.len()
    }

    #[test]
    fn pmap_with_init_makes_at_most_one_state_per_thread_and_call() {
        let before = BUFFERS.load(Ordering::SeqCst);
        let lengths = render(0..100_000);
        assert_eq!(lengths.len(), 100_000);
        assert_eq!(lengths[..3], [1, 1, 1]);
        assert_eq!(lengths[99_999], 5);
        let made = BUFFERS.load(Ordering::SeqCst) - before;
        assert!((1..=2).contains(&made), "{made} states");
    }

    fn new_count() -> u32 {
        0
    }

    /// Several item parameters map over tuples; `Result` gives the lowest failing `E`.
    #[pmap(nodes = 1, init = new_count)]
    fn parse_sum(parsed: &mut u32, text: &str, extra: u32) -> Result<u32, ParseIntError> {
        *parsed += 1;
        Ok(text.parse::<u32>()? + extra)
    }

    #[test]
    fn pmap_with_init_and_several_parameters_returns_the_items_error() {
        assert_eq!(parse_sum([("1", 10), ("2", 20)]), Ok(vec![11, 22]));
        let err = parse_sum([("1", 0), ("x", 0), ("y", 0)]).unwrap_err();
        assert_eq!(err, "x".parse::<u32>().unwrap_err());
    }

    /// Lazily, over an endless input: each thread counts what it ran.
    #[imap(nodes = 2, init = new_count)]
    fn numbered(ran: &mut u32, n: u64) -> (u64, u32) {
        *ran += 1;
        (n, *ran)
    }

    #[test]
    fn imap_with_init_runs_over_an_endless_input() {
        let first: Vec<(u64, u32)> = numbered(1..).take(6).collect();
        assert_eq!(
            first.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6]
        );
        // Every item saw a state that had run at least that item.
        assert!(first.iter().all(|(_, ran)| *ran >= 1));
        let total: u32 = first.iter().map(|(_, ran)| *ran).max().unwrap();
        assert!(total <= 6);
    }

    #[amap(init = make_buffer)]
    fn shout(buffer: &mut String, word: &'static str) -> String {
        buffer.clear();
        buffer.push_str(word);
        buffer.to_uppercase()
    }

    #[test]
    fn amap_with_init_gives_what_pmap_would() {
        assert_eq!(shout(["a", "b"]).get(), ["A", "B"]);
    }

    fn broken_model() -> Vec<f32> {
        panic!("the model file is missing")
    }

    #[pmap(nodes = 1, init = broken_model)]
    fn predict(model: &mut Vec<f32>, x: f32) -> f32 {
        model.iter().sum::<f32>() * x
    }

    #[test]
    fn a_panicking_init_resumes_its_own_panic_in_the_caller() {
        let payload = catch_unwind(AssertUnwindSafe(|| predict([1.0, 2.0]))).unwrap_err();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"the model file is missing")
        );
    }

    /// `init` with `process`: the state is made in each worker process, at most once per
    /// worker per call, and never crosses.
    #[cfg(target_os = "linux")]
    mod in_worker_processes {
        use std::panic::{AssertUnwindSafe, catch_unwind};

        use twat_mp::{ErrorKind, WorkerError, amap, imap, pmap};

        use super::super::{PATIENCE, support};

        /// What each worker process makes: its own id, and a count of the items it ran
        /// with this state.
        fn worker_id() -> (u32, u32) {
            (std::process::id(), 0)
        }

        // A configuration of its own, so that its pool is not shared with tests whose calls
        // stop early (a stopped call's running workers are killed and replaced, which would
        // give this call a third process and a fresh state mid-call).
        #[pmap(process, nodes = 2, chunksize = 50, init = worker_id)]
        fn tag(state: &mut (u32, u32), n: u64) -> (u32, u32, u64) {
            state.1 += 1;
            (state.0, state.1, n)
        }

        #[test]
        fn pmap_process_init_makes_at_most_one_state_per_worker_process_and_call() {
            for _call in 0..2 {
                let tagged = support::within(PATIENCE, "#[pmap(process, init)]", || tag(0..2_000));
                assert_eq!(
                    tagged.iter().map(|t| t.2).collect::<Vec<_>>(),
                    (0..2_000).collect::<Vec<_>>()
                );
                let mut pids: Vec<u32> = tagged.iter().map(|t| t.0).collect();
                pids.sort_unstable();
                pids.dedup();
                assert!((1..=2).contains(&pids.len()), "{pids:?}");
                assert!(!pids.contains(&std::process::id()), "ran in the caller");
                // One state per worker for the whole call: each worker's counts go
                // 1, 2, 3, ... across its batches, and together they cover every item;
                // a second call starts again from 1.
                for pid in &pids {
                    let mut counts: Vec<u32> =
                        tagged.iter().filter(|t| t.0 == *pid).map(|t| t.1).collect();
                    counts.sort_unstable();
                    let expected: Vec<u32> = (1..=u32::try_from(counts.len()).unwrap()).collect();
                    assert_eq!(counts, expected, "worker {pid}");
                }
            }
        }

        #[imap(process, nodes = 2, init = worker_id)]
        fn numbered(state: &mut (u32, u32), n: u64) -> (u32, u64) {
            state.1 += 1;
            (state.0, n)
        }

        #[test]
        fn imap_process_init_runs_over_an_endless_input() {
            let first: Vec<(u32, u64)> =
                support::within(PATIENCE, "#[imap(process, init)] over 0..", || {
                    numbered(0..).take(50).collect()
                });
            assert_eq!(
                first.iter().map(|t| t.1).collect::<Vec<_>>(),
                (0..50).collect::<Vec<_>>()
            );
            assert!(first.iter().all(|t| t.0 != std::process::id()));
        }

        fn separator() -> String {
            ", ".to_owned()
        }

        #[amap(process, init = separator)]
        fn joined(separator: &mut String, words: Vec<String>) -> String {
            words.join(separator)
        }

        #[test]
        fn amap_process_init_gives_what_pmap_would() {
            let words = vec![vec!["a".to_owned(), "b".to_owned()], vec!["c".to_owned()]];
            let pending = joined(words);
            let joined = support::within(PATIENCE, "#[amap(process, init)]", move || pending.get());
            assert_eq!(joined, ["a, b", "c"]);
        }

        fn radix() -> u32 {
            16
        }

        /// The `Result` form: the lowest failing item's own error comes back.
        #[pmap(process, init = radix)]
        fn parse_hex(radix: &mut u32, text: String) -> Result<u32, String> {
            u32::from_str_radix(&text, *radix).map_err(|err| format!("{text}: {err}"))
        }

        #[test]
        fn pmap_process_init_result_returns_the_first_error() {
            let texts = |list: &[&str]| list.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
            assert_eq!(parse_hex(texts(&["ff", "10"])), Ok(vec![255, 16]));
            assert_eq!(
                parse_hex(texts(&["1", "xyz", "g", "2"])),
                Err("xyz: invalid digit found in string".to_owned())
            );
        }

        fn no_database() -> Vec<u8> {
            panic!("no database here")
        }

        #[pmap(process, nodes = 1, init = no_database)]
        fn query(db: &mut Vec<u8>, n: u64) -> usize {
            db.len() + usize::try_from(n).unwrap()
        }

        #[test]
        fn a_panicking_init_resumes_as_a_worker_error_of_kind_init_panicked() {
            let payload = support::within(PATIENCE, "#[pmap(process, init)] panicking", || {
                catch_unwind(AssertUnwindSafe(|| query(0..10))).unwrap_err()
            });
            let err = payload
                .downcast::<WorkerError>()
                .expect("the payload is the WorkerError");
            assert_eq!(err.index(), 0);
            assert!(
                matches!(err.kind(), ErrorKind::InitPanicked { message } if message == "no database here"),
                "{err}"
            );
        }
    }
}
