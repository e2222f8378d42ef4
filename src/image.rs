//! Plain pixel buffers shared by the leaf modules (`decode` produces them, `embed`
//! consumes them, `synth` renders them, `ocr` reads them), and their rotation. No outside
//! library.

/// An 8-bit RGB image, rows top to bottom, pixels packed `[r, g, b]`, no padding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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

    /// The image turned clockwise by `cw` degrees: 0, 90, 180 or 270 (any other value
    /// is taken as 270). Used for display rotation (`decode`) and for text lines
    /// (`ocr`: numpy's `rot90`, a quarter counter-clockwise, is 270 here).
    pub fn rotate(self, cw: u32) -> Self {
        let (w, h) = (self.width as usize, self.height as usize);
        match cw {
            0 => return self,
            180 => {
                let data = self.data.chunks_exact(3).rev().flatten().copied().collect();
                return Self { data, ..self };
            }
            _ => {}
        }
        let mut out = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let (nx, ny) = if cw == 90 { (h - 1 - y, x) } else { (y, w - 1 - x) };
                let s = (y * w + x) * 3;
                let d = (ny * h + nx) * 3;
                out[d..d + 3].copy_from_slice(&self.data[s..s + 3]);
            }
        }
        Self {
            width: h as u32,
            height: w as u32,
            data: out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_moves_corners_clockwise() {
        // 2x1 image: red, green.
        let img = RgbImage::from_raw(2, 1, vec![255, 0, 0, 0, 255, 0]).unwrap();
        let r90 = img.clone().rotate(90);
        assert_eq!((r90.width, r90.height), (1, 2));
        assert_eq!(r90.pixel(0, 0), [255, 0, 0]);
        assert_eq!(r90.pixel(0, 1), [0, 255, 0]);
        let r270 = img.clone().rotate(270);
        assert_eq!(r270.pixel(0, 0), [0, 255, 0]);
        let r180 = img.clone().rotate(180);
        assert_eq!(r180.pixel(0, 0), [0, 255, 0]);
        assert_eq!(img.clone().rotate(0), img);
    }

    #[test]
    fn turns_compose() {
        let data = (0..6u8).flat_map(|i| [i * 10, i, 7]).collect();
        let img = RgbImage::from_raw(3, 2, data).unwrap();
        // numpy's rot90 (a quarter counter-clockwise): the old top-right is the new top-left.
        let r = img.clone().rotate(270);
        assert_eq!((r.width, r.height), (2, 3));
        assert_eq!(r.pixel(0, 0), img.pixel(2, 0));
        assert_eq!(img.clone().rotate(90).rotate(270), img);
        assert_eq!(img.clone().rotate(90).rotate(90), img.clone().rotate(180));
        assert_eq!(img.clone().rotate(180).pixel(0, 0), img.pixel(2, 1));
    }
}
