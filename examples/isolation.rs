//! Crash isolation: a fragile, native-style expression parser run over generated inputs in
//! a `ProcessPool`. Some inputs make it overflow its stack (a segfault), overflow a fixed
//! token buffer (an abort, as a C library's failed assertion does) or divide by zero (a
//! panic). Each of those costs exactly its own item; every other input is evaluated, and
//! the program prints a report per item.
//!
//! `cargo run --release --example isolation`

use std::time::Instant;

use twat_mp::{ErrorKind, ProcessPool};

/// Evaluates an integer expression with `+ - * /` and parentheses, as a native parser
/// would: recursion with no depth limit, digits copied into a fixed buffer, no checks on
/// division.
fn evaluate(source: String) -> i64 {
    let mut parser = Parser {
        bytes: source.as_bytes(),
        at: 0,
    };
    parser.expression()
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn expression(&mut self) -> i64 {
        let mut value = self.term();
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.at += 1;
            let rhs = self.term();
            value = if op == b'+' {
                value.wrapping_add(rhs)
            } else {
                value.wrapping_sub(rhs)
            };
        }
        value
    }

    fn term(&mut self) -> i64 {
        let mut value = self.factor();
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.at += 1;
            let rhs = self.factor();
            value = if op == b'*' {
                value.wrapping_mul(rhs)
            } else {
                assert!(rhs != 0, "division by zero at byte {}", self.at);
                value.wrapping_div(rhs)
            };
        }
        value
    }

    fn factor(&mut self) -> i64 {
        if self.peek() == Some(b'(') {
            self.at += 1;
            // No depth limit: deep enough nesting overflows the stack.
            let value = self.expression();
            self.at += usize::from(self.peek() == Some(b')'));
            return value;
        }
        let mut token = [0_u8; 18];
        let mut len = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            if len == token.len() {
                // What `assert(len < sizeof token)` does in C.
                eprintln!("parser: token buffer overflow at byte {}", self.at);
                std::process::abort();
            }
            token[len] = digit;
            len += 1;
            self.at += 1;
        }
        token[..len].iter().fold(0_i64, |n, d| {
            n.wrapping_mul(10).wrapping_add(i64::from(d - b'0'))
        })
    }
}

/// A small deterministic generator (xorshift), so every run sees the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }

    fn expression(&mut self, depth: u32) -> String {
        if depth == 0 || self.next(3) == 0 {
            return self.next(1000).to_string();
        }
        let lhs = self.expression(depth - 1);
        let rhs = self.expression(depth - 1);
        let op = ["+", "-", "*", "/"][self.next(4) as usize];
        let rhs = if op == "/" && rhs == "0" {
            "7".into()
        } else {
            rhs
        };
        if self.next(2) == 0 {
            format!("({lhs}{op}{rhs})")
        } else {
            format!("{lhs}{op}{rhs}")
        }
    }

    /// One input: mostly well-formed, now and then one that breaks the parser.
    fn input(&mut self) -> String {
        let body = self.expression(6);
        match self.next(10) {
            0 => {
                let depth = 1 << 22;
                format!("{}{body}{}", "(".repeat(depth), ")".repeat(depth))
            }
            1 => format!("{body}+{}", "9".repeat(40)),
            2 => format!("{body}/(5-5)"),
            _ => body,
        }
    }
}

fn shorten(input: &str) -> String {
    if input.len() <= 32 {
        input.to_owned()
    } else {
        format!("{}… ({} bytes)", &input[..24], input.len())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let inputs: Vec<String> = (0..40).map(|_| rng.input()).collect();
    let shown: Vec<String> = inputs.iter().map(|input| shorten(input)).collect();

    let pool = ProcessPool::with_nodes(2)?;
    let start = Instant::now();
    let (mut ok, mut failed) = (0, 0);
    println!("{:>4}  {:<36} outcome", "item", "input");
    for (index, outcome) in pool.imap(evaluate, inputs).enumerate() {
        let report = match outcome {
            Ok(value) => {
                ok += 1;
                format!("= {value}")
            }
            Err(err) => {
                failed += 1;
                match err.kind() {
                    ErrorKind::Crashed { status } => format!("CRASHED: the worker {status}"),
                    ErrorKind::Panicked { message } => format!("PANICKED: {message}"),
                    other => format!("FAILED: {other}"),
                }
            }
        };
        println!("{index:>4}  {:<36} {report}", shown[index]);
    }
    println!(
        "\n{ok} evaluated, {failed} lost to their own crash or panic, in {:.2?}; \
         the program and the pool are unharmed:",
        start.elapsed()
    );
    println!("2 + 3 * 4 = {}", pool.apply(evaluate, "2+3*4".to_owned())?);
    Ok(())
}
