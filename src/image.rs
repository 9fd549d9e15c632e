//! Grayscale images: made procedurally, scaled down with a box filter.

/// An 8-bit grayscale image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Its name, as a file name would be.
    pub name: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` pixels, row by row.
    pub pixels: Vec<u8>,
}

impl Image {
    /// A `width` × `height` test pattern (interference rings) that differs by `seed`.
    ///
    /// ```
    /// let img = twat_mp_workspace::image::Image::pattern("a.png", 64, 32, 7);
    /// assert_eq!(img.pixels.len(), 64 * 32);
    /// ```
    pub fn pattern(name: &str, width: usize, height: usize, seed: u64) -> Image {
        let (cx, cy) = ((seed % 97) as f64, (seed % 89) as f64);
        let pixels = (0..height)
            .flat_map(|y| {
                (0..width).map(move |x| {
                    let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                    let r = (dx * dx + dy * dy).sqrt() * (1.0 + (seed % 5) as f64 / 4.0);
                    (127.5 + 127.5 * (r / 3.0).sin()) as u8
                })
            })
            .collect();
        Image {
            name: name.to_owned(),
            width,
            height,
            pixels,
        }
    }

    /// The image at half its width and height, each pixel the mean of a 2×2 block.
    ///
    /// ```
    /// let img = twat_mp_workspace::image::Image::pattern("a.png", 64, 32, 7);
    /// let half = img.half_size();
    /// assert_eq!((half.width, half.height), (32, 16));
    /// ```
    pub fn half_size(&self) -> Image {
        let (width, height) = (self.width / 2, self.height / 2);
        let mut pixels = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                let at = |dx: usize, dy: usize| {
                    u32::from(self.pixels[(2 * y + dy) * self.width + 2 * x + dx])
                };
                pixels.push(((at(0, 0) + at(1, 0) + at(0, 1) + at(1, 1) + 2) / 4) as u8);
            }
        }
        Image {
            name: self.name.clone(),
            width,
            height,
            pixels,
        }
    }

    /// The mean brightness, 0 to 255.
    pub fn mean(&self) -> f64 {
        let sum: u64 = self.pixels.iter().map(|&p| u64::from(p)).sum();
        sum as f64 / self.pixels.len().max(1) as f64
    }
}
