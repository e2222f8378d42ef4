//! CLIP image preprocessing, bit-exact with the reference path
//! (`torchvision.transforms.Resize(size, BICUBIC)` on a PIL image, `CenterCrop(size)`,
//! `ToTensor`, `Normalize(mean, std)`).
//!
//! Resizing reproduces Pillow's separable resampler (`libImaging/Resample.c`): per axis
//! a filter whose support widens with the downscale factor (antialiasing), weights
//! normalised and converted to 22-bit fixed point, the horizontal pass first into an
//! 8-bit intermediate, then the vertical pass, each rounded and clamped to 0..255. Only
//! the pixels that survive the centre crop are computed; each output pixel depends only
//! on its own coefficients, so the result equals resize-then-crop. An axis whose size
//! does not change is not resampled at all (Pillow skips it too), which is the fast path
//! for video frames the decoder already scaled to the resize geometry.

/// Pillow's fixed-point precision for 8-bit images: 32 - 8 - 2.
const PRECISION_BITS: u32 = 22;

/// Resampling filter of the resize step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Pillow's bicubic (Keys, a = -0.5): CLIP's.
    Bicubic,
    /// Pillow's bilinear (a triangle filter).
    Bilinear,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bicubic => 2.0,
            Filter::Bilinear => 1.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bicubic => {
                // Keys cubic with a = -0.5, as Pillow.
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
        }
    }
}

/// Output size of "resize the shortest side to `size`", as torchvision computes it
/// (the long side is truncated, not rounded).
pub fn resized_dims(width: u32, height: u32, size: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = (size as f64 * long as f64 / short as f64) as u32;
    if width <= height {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// torchvision's centre-crop offset: `int(round((len - crop) / 2.0))`, with Python's
/// round-half-to-even.
pub fn crop_offset(len: u32, crop: u32) -> u32 {
    let d = len.saturating_sub(crop);
    let half = d / 2;
    if d.is_multiple_of(2) || half.is_multiple_of(2) {
        half
    } else {
        half + 1
    }
}

/// Fixed-point coefficients of one axis for output positions `first..first + count`
/// of a resize from `in_size` to `out_size`.
struct Coeffs {
    /// (first input index, number of taps) per output position.
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    weights: Vec<i32>,
}

impl Coeffs {
    fn new(in_size: u32, out_size: u32, first: u32, count: u32, filter: Filter) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filter.support() * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(count as usize);
        let mut weights = vec![0i32; ksize * count as usize];
        let mut k = vec![0f64; ksize];
        for (i, xx) in (first..first + count).enumerate() {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C's (int) truncates toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let taps = xmax.saturating_sub(xmin);
            let mut ww = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(taps) {
                let w = filter.weight((x as f64 + xmin as f64 - center + 0.5) * ss);
                *kx = w;
                ww += w;
            }
            for (x, kx) in k.iter().enumerate().take(taps) {
                let w = if ww != 0.0 { kx / ww } else { *kx };
                let fixed = w * (1u32 << PRECISION_BITS) as f64;
                weights[i * ksize + x] = if w < 0.0 {
                    (-0.5 + fixed) as i32
                } else {
                    (0.5 + fixed) as i32
                };
            }
            bounds.push((xmin, taps));
        }
        Self { bounds, ksize, weights }
    }

    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (xmin, n) = self.bounds[i];
        (xmin, &self.weights[i * self.ksize..i * self.ksize + n])
    }
}

#[inline]
fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Resizes the shortest side of `rgb` (`width` x `height`) to `size` with Pillow's
/// arithmetic and returns the centre `size` x `size` crop as packed RGB.
pub fn resize_center_crop(rgb: &[u8], width: u32, height: u32, size: u32, filter: Filter) -> Vec<u8> {
    let (nw, nh) = resized_dims(width, height, size);
    let (left, top) = (crop_offset(nw, size), crop_offset(nh, size));
    resize_region(
        rgb,
        width,
        height,
        (nw, nh),
        (left, top),
        (size.min(nw), size.min(nh)),
        filter,
    )
}

/// Resizes `rgb` to `size` x `size` whatever its aspect ratio (`Image.resize((size,
/// size))`, the "squash" of SigLIP and some open_clip models), with Pillow's arithmetic.
pub fn resize_squash(rgb: &[u8], width: u32, height: u32, size: u32, filter: Filter) -> Vec<u8> {
    resize_region(rgb, width, height, (size, size), (0, 0), (size, size), filter)
}

/// The `cw` x `ch` region at (`left`, `top`) of `rgb` resized to `nw` x `nh`, computing
/// only the output pixels inside the region.
fn resize_region(
    rgb: &[u8],
    width: u32,
    height: u32,
    (nw, nh): (u32, u32),
    (left, top): (u32, u32),
    (cw, ch): (u32, u32),
    filter: Filter,
) -> Vec<u8> {
    let w = width as usize;

    // Rows of the source the vertical pass reads (or the crop rows, when it is skipped).
    let vert = (nh != height).then(|| Coeffs::new(height, nh, top, ch, filter));
    let (row0, rows) = match &vert {
        Some(c) => {
            let first = c.bounds.iter().map(|b| b.0).min().unwrap_or(0);
            let last = c.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(0);
            (first, last - first)
        }
        None => (top as usize, ch as usize),
    };

    // Horizontal pass into an 8-bit intermediate of `rows` x `cw`.
    let cwu = cw as usize;
    let mut tmp = vec![0u8; rows * cwu * 3];
    if nw != width {
        let hc = Coeffs::new(width, nw, left, cw, filter);
        let half = 1i32 << (PRECISION_BITS - 1);
        for r in 0..rows {
            let src = &rgb[(row0 + r) * w * 3..(row0 + r + 1) * w * 3];
            let dst = &mut tmp[r * cwu * 3..(r + 1) * cwu * 3];
            for xx in 0..cwu {
                let (xmin, k) = hc.taps(xx);
                let (mut s0, mut s1, mut s2) = (half, half, half);
                for (x, &kx) in k.iter().enumerate() {
                    let p = (xmin + x) * 3;
                    s0 += src[p] as i32 * kx;
                    s1 += src[p + 1] as i32 * kx;
                    s2 += src[p + 2] as i32 * kx;
                }
                dst[xx * 3] = clip8(s0);
                dst[xx * 3 + 1] = clip8(s1);
                dst[xx * 3 + 2] = clip8(s2);
            }
        }
    } else {
        let l = left as usize;
        for r in 0..rows {
            let src = &rgb[((row0 + r) * w + l) * 3..((row0 + r) * w + l + cwu) * 3];
            tmp[r * cwu * 3..(r + 1) * cwu * 3].copy_from_slice(src);
        }
    }

    let Some(vc) = vert else {
        return tmp;
    };
    let chu = ch as usize;
    let mut out = vec![0u8; chu * cwu * 3];
    let half = 1i32 << (PRECISION_BITS - 1);
    let stride = cwu * 3;
    for yy in 0..chu {
        let (ymin, k) = vc.taps(yy);
        let base = ymin - row0;
        let dst = &mut out[yy * stride..(yy + 1) * stride];
        for (c, d) in dst.iter_mut().enumerate() {
            let mut s = half;
            for (y, &ky) in k.iter().enumerate() {
                s += tmp[(base + y) * stride + c] as i32 * ky;
            }
            *d = clip8(s);
        }
    }
    out
}

/// Writes a cropped `size` x `size` RGB image as a normalised CHW float tensor.
pub fn normalise_chw(rgb: &[u8], size: u32, mean: [f32; 3], std: [f32; 3], out: &mut [f32]) {
    let plane = size as usize * size as usize;
    debug_assert_eq!(rgb.len(), plane * 3);
    debug_assert_eq!(out.len(), plane * 3);
    for c in 0..3 {
        let (m, s) = (mean[c], std[c]);
        let dst = &mut out[c * plane..(c + 1) * plane];
        for (i, d) in dst.iter_mut().enumerate() {
            *d = (rgb[i * 3 + c] as f32 / 255.0 - m) / s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_dims_truncate_the_long_side_like_torchvision() {
        assert_eq!(resized_dims(1920, 1080, 224), (398, 224));
        assert_eq!(resized_dims(1080, 1920, 224), (224, 398));
        assert_eq!(resized_dims(640, 480, 224), (298, 224));
        assert_eq!(resized_dims(224, 224, 224), (224, 224));
    }

    #[test]
    fn crop_offset_rounds_half_to_even() {
        // (398 - 224) / 2 = 87; (299 - 224) / 2 = 37.5 -> 38; (297 - 224) / 2 = 36.5 -> 36
        assert_eq!(crop_offset(398, 224), 87);
        assert_eq!(crop_offset(299, 224), 38);
        assert_eq!(crop_offset(297, 224), 36);
        assert_eq!(crop_offset(224, 224), 0);
    }

    #[test]
    fn identity_geometry_only_crops() {
        let (w, h) = (300u32, 224u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let out = resize_center_crop(&rgb, w, h, 224, Filter::Bicubic);
        let left = crop_offset(w, 224) as usize;
        for y in [0usize, 100, 223] {
            let a = &out[y * 224 * 3..(y + 1) * 224 * 3];
            let b = &rgb[(y * w as usize + left) * 3..(y * w as usize + left + 224) * 3];
            assert_eq!(a, b);
        }
    }

    #[test]
    fn squash_resizes_each_axis_on_its_own() {
        // A horizontal ramp squashed from 640x360 keeps its rows identical and its
        // vertical axis untouched in content.
        let (w, h) = (640u32, 360u32);
        let rgb: Vec<u8> = (0..h)
            .flat_map(|_| (0..w).flat_map(|x| [(x * 255 / (w - 1)) as u8; 3]))
            .collect();
        let out = resize_squash(&rgb, w, h, 224, Filter::Bicubic);
        assert_eq!(out.len(), 224 * 224 * 3);
        let row = |y: usize| &out[y * 224 * 3..(y + 1) * 224 * 3];
        assert_eq!(row(0), row(223));
        assert!(row(0)[0] < 5 && row(0)[223 * 3] > 250, "the whole width is kept");
        // Same size in: only the copy.
        let sq: Vec<u8> = (0..224 * 224 * 3).map(|i| (i % 253) as u8).collect();
        assert_eq!(resize_squash(&sq, 224, 224, 224, Filter::Bicubic), sq);
    }

    #[test]
    fn uniform_image_stays_uniform_when_resized() {
        let rgb: Vec<u8> = [10u8, 200, 77].repeat(640 * 480);
        let out = resize_center_crop(&rgb, 640, 480, 224, Filter::Bicubic);
        assert_eq!(out.len(), 224 * 224 * 3);
        assert!(out.chunks(3).all(|p| p == [10, 200, 77]));
    }
}
