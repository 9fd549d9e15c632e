//! The seed's "Image Processing (CPU-Bound)", on the `image` crate: make thumbnails of a
//! folder of PNG files in parallel with `#[pmap]`.
//!
//! The example first writes its input: two dozen PNG photos-to-be of 1.5 to 2 megapixels
//! (colour gradients crossed by interference rings, made procedurally) and one damaged
//! PNG (a real file cut in half), in a temporary folder it names. Then `#[pmap]` decodes
//! each file, scales it to fit 320×320 with the Lanczos3 filter and writes the thumbnail
//! as PNG; the damaged file is reported on its own line while every other file is done.
//! Last, the same function runs over the same files on one thread, for the speed-up and
//! to check that the parallel run wrote the same thumbnails, byte for byte.
//!
//! Python needs processes for CPU-bound work because of its interpreter lock; Rust threads
//! have none, so `#[pmap]` on threads is the fast choice here. Add `process` to the
//! attribute (`#[pmap(process)]`) to isolate each file in a worker process instead, as you
//! would for a decoder you do not trust: the items and results then cross as bytes, so
//! they must be serde types (a `PathBuf` is; keep the error as a `String`).
//!
//! Run: `cargo run --release --example image_resize` (add `-- --keep` to keep the folder
//! and look at the thumbnails).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::imageops::FilterType;
use image::{ImageError, ImageResult, Rgb, RgbImage};
use twat_mp::pmap;

/// Thumbnails fit in a square of this side, keeping their aspect ratio.
const THUMBNAIL_SIDE: u32 = 320;

/// How many pictures the example makes (the damaged file comes on top).
const PICTURES: u32 = 24;

/// Sizes of the pictures, in turn: landscape, portrait, square, full HD.
const SIZES: [(u32, u32); 4] = [
    (1_600, 1_000),
    (1_000, 1_500),
    (1_280, 1_280),
    (1_920, 1_080),
];

/// Picture `seed`: a colour gradient crossed by the rings of two interfering point
/// sources, whose places and wavelength differ from seed to seed.
fn picture(seed: u32, width: u32, height: u32) -> RgbImage {
    let (w, h) = (width as f32, height as f32);
    let s = seed as f32;
    let first = (w * (0.15 + 0.05 * (seed % 7) as f32), h * 0.3);
    let second = (
        w * (0.85 - 0.04 * (seed % 5) as f32),
        h * (0.5 + 0.05 * (seed % 4) as f32),
    );
    let wavelength = 8.0 + 3.0 * (seed % 9) as f32;
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let near = (fx - first.0).hypot(fy - first.1);
        let far = (fx - second.0).hypot(fy - second.1);
        // 0 to 1: the sum of the two waves, bright where they meet in phase.
        let wave = 0.5 + 0.25 * ((near / wavelength).sin() + (far / (wavelength + s * 0.1)).sin());
        let (gx, gy) = (fx / w, fy / h);
        Rgb([
            (255.0 * wave * (0.35 + 0.65 * gx)) as u8,
            (255.0 * wave * (0.35 + 0.65 * gy)) as u8,
            (255.0 * (1.0 - wave) * (0.5 + 0.5 * (1.0 - gx))) as u8,
        ])
    })
}

/// Writes picture `seed` as a PNG file at `path`, and gives its size in bytes. A failure
/// here is the example's own and ends it: the `Result` form of `#[pmap]` returns the
/// lowest failing item's error. (The attribute reads the name `Result` in the signature:
/// with the alias `ImageResult<u64>` it would need the option `result`.)
#[pmap]
fn write_picture(seed: u32, path: PathBuf) -> Result<u64, ImageError> {
    let (width, height) = SIZES[seed as usize % SIZES.len()];
    picture(seed, width, height).save(&path)?;
    Ok(fs::metadata(&path)?.len())
}

/// What making one thumbnail read, wrote and took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Thumbnail {
    /// The source's dimensions.
    source: (u32, u32),
    /// The source file's size in bytes.
    source_bytes: u64,
    /// The thumbnail's dimensions.
    size: (u32, u32),
    /// The thumbnail file's size in bytes.
    bytes: u64,
    /// Decoding, scaling and encoding, on the thread that did them.
    took: Duration,
}

/// Decodes the image at `source`, scales it to fit `THUMBNAIL_SIDE` with Lanczos3 and
/// writes it as PNG at `target`.
fn thumbnail(source: &Path, target: &Path) -> ImageResult<Thumbnail> {
    let start = Instant::now();
    let source_bytes = fs::metadata(source)?.len();
    let image = image::open(source)?;
    let small = image.resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, FilterType::Lanczos3);
    small.save(target)?;
    Ok(Thumbnail {
        source: (image.width(), image.height()),
        source_bytes,
        size: (small.width(), small.height()),
        bytes: fs::metadata(target)?.len(),
        took: start.elapsed(),
    })
}

/// One file's thumbnail, or why it could not be made. This is a plain value, not a
/// `Result`: a function that returned `ImageResult` would make the whole call fail with
/// the first bad file's error, while this way every file is done and reported.
struct Outcome {
    source: PathBuf,
    result: ImageResult<Thumbnail>,
}

/// The thumbnail of `source`, written at `target`: in parallel over all the files.
#[pmap]
fn make_thumbnail(source: PathBuf, target: PathBuf) -> Outcome {
    let result = thumbnail(&source, &target);
    Outcome { source, result }
}

/// A size in bytes, as people read it.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        if b >= 1e6 {
            write!(f, "{:.1} MB", b / 1e6)
        } else {
            write!(f, "{:.0} kB", b / 1e3)
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keep = std::env::args().skip(1).any(|arg| arg == "--keep");
    let folder = tempfile::Builder::new()
        .prefix("twat-mp-image-resize-")
        .tempdir()?;
    let (originals, thumbnails, serial) = (
        folder.path().join("originals"),
        folder.path().join("thumbnails"),
        folder.path().join("thumbnails-serial"),
    );
    for dir in [&originals, &thumbnails, &serial] {
        fs::create_dir(dir)?;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "Thumbnails of {PICTURES} generated PNG pictures (and a damaged one), fit in \
         {THUMBNAIL_SIDE}x{THUMBNAIL_SIDE} with Lanczos3, on {threads} threads"
    );
    println!(
        "Folder: {} ({})\n",
        folder.path().display(),
        if keep {
            "kept"
        } else {
            "removed at exit; run with `-- --keep` to keep it"
        }
    );

    // The input: real PNG files, written in parallel too.
    let start = Instant::now();
    let sizes = write_picture(
        (0..PICTURES).map(|seed| (seed, originals.join(format!("picture-{seed:02}.png")))),
    )?;
    let damaged = originals.join("picture-damaged.png");
    let whole = fs::read(originals.join("picture-00.png"))?;
    fs::write(&damaged, &whole[..whole.len() / 2])?;
    println!(
        "Wrote {PICTURES} pictures ({} in all) and {} (the first half of picture-00.png) in {:.2?}\n",
        Bytes(sizes.iter().sum()),
        damaged.file_name().unwrap_or_default().to_string_lossy(),
        start.elapsed()
    );

    let mut sources: Vec<PathBuf> = fs::read_dir(&originals)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    sources.sort();
    let jobs = |into: &Path| -> Vec<(PathBuf, PathBuf)> {
        sources
            .iter()
            .map(|source| {
                (
                    source.clone(),
                    into.join(source.file_name().unwrap_or_default()),
                )
            })
            .collect()
    };

    // In parallel: one thumbnail per item of #[pmap].
    let start = Instant::now();
    let outcomes = make_thumbnail(jobs(&thumbnails));
    let parallel = start.elapsed();

    println!(
        "{:<20} {:>18}      {:>15}  {:>5}",
        "file", "source", "thumbnail", "time"
    );
    let (mut read, mut written, mut busy, mut failed) = (0, 0, Duration::ZERO, 0);
    for outcome in &outcomes {
        let name = outcome
            .source
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        match &outcome.result {
            Ok(t) => {
                println!(
                    "{name:<20} {:>9} {:>8}  ->  {:>7} {:>7}  {:>5.0?}",
                    format!("{}x{}", t.source.0, t.source.1),
                    Bytes(t.source_bytes).to_string(),
                    format!("{}x{}", t.size.0, t.size.1),
                    Bytes(t.bytes).to_string(),
                    t.took
                );
                read += t.source_bytes;
                written += t.bytes;
                busy += t.took;
            }
            Err(err) => {
                failed += 1;
                println!("{name:<20} failed: {err}");
            }
        }
    }
    let made = outcomes.len() - failed;
    println!(
        "\n#[pmap]: {made} thumbnails ({}) from {} of PNG in {parallel:.2?}, {:.1} pictures/s; \
         {failed} file{} failed",
        Bytes(written),
        Bytes(read),
        made as f64 / parallel.as_secs_f64(),
        if failed == 1 { "" } else { "s" }
    );
    println!(
        "the items' own times add up to {busy:.2?}: {:.2} threads busy on average",
        busy.as_secs_f64() / parallel.as_secs_f64()
    );

    // The same work on this thread alone, into a folder of its own.
    let start = Instant::now();
    let serial_results: Vec<ImageResult<Thumbnail>> = jobs(&serial)
        .iter()
        .map(|(source, target)| thumbnail(source, target))
        .collect();
    let one_thread = start.elapsed();
    let mut same = 0;
    for ((outcome, serial_result), (_, target)) in
        outcomes.iter().zip(&serial_results).zip(jobs(&serial))
    {
        if let (Ok(_), Ok(_)) = (&outcome.result, serial_result) {
            let name = target.file_name().unwrap_or_default();
            if fs::read(thumbnails.join(name))? == fs::read(&target)? {
                same += 1;
            }
        }
    }
    let serial_made = serial_results.iter().filter(|r| r.is_ok()).count();
    println!(
        "one thread: {serial_made} thumbnails in {one_thread:.2?}; #[pmap] was {:.2}x as fast, \
         and wrote the same {same} of {made} thumbnails byte for byte",
        one_thread.as_secs_f64() / parallel.as_secs_f64()
    );
    if same != made || serial_made != made {
        return Err("the parallel and the serial runs made different thumbnails".into());
    }

    if keep {
        let kept = folder.keep();
        println!("\nThe pictures are in {}", kept.join("originals").display());
        println!(
            "and their thumbnails in {}",
            kept.join("thumbnails").display()
        );
    }
    Ok(())
}
