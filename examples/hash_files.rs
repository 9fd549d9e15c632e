//! Hash every file of a folder tree with BLAKE3, in parallel, with a progress bar: what a
//! backup or deduplication tool does first.
//!
//! The example writes its input: a tree of a few hundred files of random bytes, from
//! empty to 2 MB, in nested folders, with a few exact copies among them, in a temporary
//! folder it names. It walks the tree with `walkdir`, hashes the files with
//! `#[pmap(progress)]` (the bar is drawn on stderr when stderr is a terminal, and leaves a
//! line saying what the call did), and reports the bytes hashed and how fast, a few
//! digests, the copies it found by their digests, and one digest of the whole tree. Then
//! it hashes the same files again on one thread, checks that every digest is the same and
//! gives the speed-up.
//!
//! The files were just written, so they are read from the operating system's page cache:
//! the speed is the hashing's, not the disk's. On a disk, a tree not in the cache is read
//! at the disk's speed; more threads still help an SSD, which serves several reads at
//! once.
//!
//! Run: `cargo run --release --example hash_files` (add `-- --keep` to keep the tree
//! and check a digest with `b3sum`).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use twat_mp::pmap;
use walkdir::WalkDir;

/// A file's length in bytes and its BLAKE3 digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileDigest {
    len: u64,
    digest: blake3::Hash,
}

/// Reads the file at `path` through BLAKE3. An error names the file.
fn digest_of(path: &Path) -> io::Result<FileDigest> {
    let named = |err: io::Error| io::Error::new(err.kind(), format!("{}: {err}", path.display()));
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(File::open(path).map_err(named)?)
        .map_err(named)?;
    Ok(FileDigest {
        len: hasher.count(),
        digest: hasher.finalize(),
    })
}

/// The digest of each file, in parallel, with a progress bar. A file that cannot be read
/// makes the call return that file's error (the lowest in the input, if several fail).
#[pmap(progress)]
fn hash_file(path: PathBuf) -> io::Result<FileDigest> {
    digest_of(&path)
}

/// Writes a tree of random files under `root`, the same tree on every run: files of
/// 0 bytes to 2 MB (sizes spread evenly over their orders of magnitude) in folders up to
/// three deep, and in `root/backup` exact copies of a few of them.
fn write_tree(root: &Path) -> io::Result<()> {
    let mut rng = fastrand::Rng::with_seed(2_024);
    let mut written = Vec::new();
    let mut folders = vec![(root.to_path_buf(), 0)];
    while let Some((folder, depth)) = folders.pop() {
        fs::create_dir_all(&folder)?;
        for n in 0..rng.usize(6..16) {
            let extension = ["txt", "log", "bin", "dat", "json"][rng.usize(..5)];
            let path = folder.join(format!("file-{n:02}.{extension}"));
            let len = match rng.u32(..40) {
                0 => 0,
                _ => {
                    let scale = 1_usize << rng.u32(4..=20);
                    scale + rng.usize(..scale)
                }
            };
            let mut bytes = vec![0; len];
            rng.fill(&mut bytes);
            fs::write(&path, bytes)?;
            written.push(path);
        }
        if depth < 3 {
            for n in 0..rng.usize(1..5) {
                folders.push((folder.join(format!("dir-{depth}{n}")), depth + 1));
            }
        }
    }
    let backup = root.join("backup");
    fs::create_dir(&backup)?;
    for n in 0..4 {
        let original = &written[rng.usize(..written.len())];
        fs::copy(original, backup.join(format!("copy-{n}.bak")))?;
    }
    Ok(())
}

/// `path` under `root`, with `/` between its parts on every platform.
fn relative(path: &Path, root: &Path) -> String {
    let inside = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<_> = inside.iter().map(|part| part.to_string_lossy()).collect();
    parts.join("/")
}

/// Megabytes per second.
fn rate(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keep = std::env::args().skip(1).any(|arg| arg == "--keep");
    let folder = tempfile::Builder::new()
        .prefix("twat-mp-hash-files-")
        .tempdir()?;
    let root = folder.path().join("tree");
    let start = Instant::now();
    write_tree(&root)?;
    println!(
        "Wrote a tree of random files in {:.2?}: {} ({})",
        start.elapsed(),
        root.display(),
        if keep {
            "kept"
        } else {
            "removed at exit; run with `-- --keep` to keep it"
        }
    );

    // The walk: every file, in an order that is the same on every run.
    let start = Instant::now();
    let mut folders = 0;
    let mut files = Vec::new();
    for entry in WalkDir::new(&root).sort_by_file_name() {
        let entry = entry?;
        if entry.file_type().is_file() {
            files.push(entry.into_path());
        } else if entry.file_type().is_dir() {
            folders += 1;
        }
    }
    println!(
        "walkdir found {} files in {folders} folders in {:.2?}",
        files.len(),
        start.elapsed()
    );

    // The hashing, in parallel.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    let digests = hash_file(files.clone())?;
    let parallel = start.elapsed();
    let bytes: u64 = digests.iter().map(|d| d.len).sum();
    println!(
        "#[pmap(progress)] hashed {} files, {:.1} MB, in {parallel:.2?} on {threads} threads: \
         {:.0} MB/s",
        digests.len(),
        bytes as f64 / 1e6,
        rate(bytes, parallel.as_secs_f64())
    );

    println!("\nThe largest files:");
    let mut by_size: Vec<(&PathBuf, &FileDigest)> = files.iter().zip(&digests).collect();
    by_size.sort_by_key(|&(path, d)| (std::cmp::Reverse(d.len), path));
    for (path, d) in by_size.iter().take(3) {
        println!(
            "  {}  {:>9} bytes  {}",
            d.digest,
            d.len,
            relative(path, &root)
        );
    }
    if let Some((path, d)) = by_size.last() {
        println!(
            "and the smallest:\n  {}  {:>9} bytes  {}",
            d.digest,
            d.len,
            relative(path, &root)
        );
    }

    // Copies: files whose digests are the same (empty files aside: they all are).
    let mut by_digest: BTreeMap<[u8; 32], Vec<&PathBuf>> = BTreeMap::new();
    for (path, d) in files.iter().zip(&digests).filter(|(_, d)| d.len > 0) {
        by_digest
            .entry(*d.digest.as_bytes())
            .or_default()
            .push(path);
    }
    let copies: Vec<&Vec<&PathBuf>> = by_digest.values().filter(|p| p.len() > 1).collect();
    let empty = digests.iter().filter(|d| d.len == 0).count();
    println!(
        "\n{} sets of files with the same contents (besides the {empty} empty files):",
        copies.len()
    );
    for set in &copies {
        let names: Vec<String> = set.iter().map(|path| relative(path, &root)).collect();
        println!("  {}", names.join(" = "));
    }

    // One digest for the tree: each file's relative path and digest, in walk order.
    let mut tree = blake3::Hasher::new();
    for (path, d) in files.iter().zip(&digests) {
        tree.update(relative(path, &root).as_bytes());
        tree.update(&[0]);
        tree.update(d.digest.as_bytes());
    }
    println!(
        "\nThe tree's digest (its files' paths and digests): {}",
        tree.finalize()
    );

    // The same files on this thread alone.
    let start = Instant::now();
    let serial: Vec<FileDigest> = files
        .iter()
        .map(|path| digest_of(path))
        .collect::<io::Result<_>>()?;
    let one_thread = start.elapsed();
    let same = serial.iter().zip(&digests).filter(|(a, b)| a == b).count();
    println!(
        "One thread: {:.1} MB in {one_thread:.2?}, {:.0} MB/s; #[pmap] was {:.2}x as fast, and \
         {same} of {} digests are the same",
        bytes as f64 / 1e6,
        rate(bytes, one_thread.as_secs_f64()),
        one_thread.as_secs_f64() / parallel.as_secs_f64(),
        digests.len()
    );
    if same != digests.len() || serial.len() != digests.len() {
        return Err("the parallel and the serial digests differ".into());
    }

    if keep {
        let kept = folder.keep();
        println!(
            "\nThe tree is in {}; check a digest with `b3sum FILE`",
            kept.join("tree").display()
        );
    }
    Ok(())
}
