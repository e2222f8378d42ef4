//! Plain pixel buffers shared by the leaf modules (`decode` produces them, `embed`
//! consumes them, `synth` renders them). No outside library.

/// An 8-bit RGB image, rows top to bottom, pixels packed `[r, g, b]`, no padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Packed RGB, row after row.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// A `width` x `height` image filled with one colour.
    pub fn filled(width: u32, height: u32, rgb: [u8; 3]) -> Self {
        let data = rgb
            .iter()
            .copied()
            .cycle()
            .take(width as usize * height as usize * 3)
            .collect();
        Self { width, height, data }
    }

    /// Wraps packed RGB bytes; `None` when the length does not match the size.
    pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Option<Self> {
        (data.len() == width as usize * height as usize * 3).then_some(Self { width, height, data })
    }

    /// The RGB of pixel (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}
