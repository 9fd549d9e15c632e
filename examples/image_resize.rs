//! The seed's "Image Processing (CPU-Bound)": scale a set of images to half size in
//! parallel. The images are made procedurally (interference patterns), so the example
//! needs no files; the work per image is a real box-filter downscale.
//!
//! Python needs processes for CPU-bound work because of its interpreter lock; Rust threads
//! have none, so `#[pmap]` on threads is the fast choice here. Add `process` to the
//! attribute to isolate each image in a worker process instead (the image type would then
//! derive serde's `Serialize` and `Deserialize`).
//!
//! Run: `cargo run --release --example image_resize`

use twat_mp::pmap;
use twat_mp_workspace::image::Image;

/// Halves an image twice, as a thumbnail step would, and reports the result.
#[pmap]
fn resize_image(image: Image) -> String {
    let thumbnail = image.half_size().half_size();
    format!(
        "Resized {}: {}x{} -> {}x{}, mean brightness {:.1} -> {:.1}",
        image.name,
        image.width,
        image.height,
        thumbnail.width,
        thumbnail.height,
        image.mean(),
        thumbnail.mean()
    )
}

fn main() {
    let images = (0..8).map(|i| Image::pattern(&format!("image_{i}.png"), 1_920, 1_080, i));
    for line in resize_image(images) {
        println!("{line}");
    }
}
