//! Pixel work of PP-OCR's pre-processing, written to match the reference's OpenCV calls:
//! bilinear resizing with pixel-centre alignment (`cv2.resize`, INTER_LINEAR), the
//! perspective crop of a text box with bicubic sampling and replicated borders
//! (`cv2.warpPerspective`, INTER_CUBIC, BORDER_REPLICATE), quarter turns, and the
//! normalisation to the graphs' planar input, channels in BGR order as PaddleOCR's
//! models were trained on.

use super::geom::Pt;
use crate::image::RgbImage;

/// One axis of a bilinear resize: for each output index, the two source indices and the
/// weight of the second.
fn axis(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|i| {
            let f = (i as f64 + 0.5) * scale - 0.5;
            let mut s = f.floor();
            let mut t = f - s;
            if s < 0.0 {
                s = 0.0;
                t = 0.0;
            }
            let s = s as usize;
            if s + 1 >= src {
                (src - 1, src - 1, 0.0)
            } else {
                (s, s + 1, t as f32)
            }
        })
        .collect()
}

/// `img` resized to `w` x `h` (bilinear, pixel centres aligned, no smoothing when
/// shrinking: what `cv2.resize` does by default).
pub fn resize(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = (img.width as usize, img.height as usize);
    let (xs, ys) = (axis(sw, w as usize), axis(sh, h as usize));
    let mut out = vec![0u8; w as usize * h as usize * 3];
    let mut row = vec![0f32; sw * 3];
    for (y, &(y0, y1, ty)) in ys.iter().enumerate() {
        let (r0, r1) = (
            &img.data[y0 * sw * 3..(y0 + 1) * sw * 3],
            &img.data[y1 * sw * 3..(y1 + 1) * sw * 3],
        );
        for (i, v) in row.iter_mut().enumerate() {
            *v = r0[i] as f32 * (1.0 - ty) + r1[i] as f32 * ty;
        }
        let o = &mut out[y * w as usize * 3..(y + 1) * w as usize * 3];
        for (x, &(x0, x1, tx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let v = row[x0 * 3 + c] * (1.0 - tx) + row[x1 * 3 + c] * tx;
                o[x * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    RgbImage {
        width: w,
        height: h,
        data: out,
    }
}

/// The homography taking `from[i]` to `to[i]` (a 3x3 matrix, row-major, h33 = 1).
pub fn homography(from: &[Pt; 4], to: &[Pt; 4]) -> Option<[f64; 9]> {
    let mut a = [[0f64; 9]; 8];
    for i in 0..4 {
        let (x, y) = (from[i][0] as f64, from[i][1] as f64);
        let (u, v) = (to[i][0] as f64, to[i][1] as f64);
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -x * u, -y * u, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -x * v, -y * v, v];
    }
    for col in 0..8 {
        let piv = (col..8).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        for r in 0..8 {
            if r != col {
                let f = a[r][col] / a[col][col];
                for c in col..9 {
                    a[r][c] -= f * a[col][c];
                }
            }
        }
    }
    let h: Vec<f64> = (0..8).map(|i| a[i][8] / a[i][i]).collect();
    Some([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0])
}

fn invert(m: &[f64; 9]) -> Option<[f64; 9]> {
    let det =
        m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
    if det.abs() < 1e-12 {
        return None;
    }
    let d = 1.0 / det;
    Some([
        (m[4] * m[8] - m[5] * m[7]) * d,
        (m[2] * m[7] - m[1] * m[8]) * d,
        (m[1] * m[5] - m[2] * m[4]) * d,
        (m[5] * m[6] - m[3] * m[8]) * d,
        (m[0] * m[8] - m[2] * m[6]) * d,
        (m[2] * m[3] - m[0] * m[5]) * d,
        (m[3] * m[7] - m[4] * m[6]) * d,
        (m[1] * m[6] - m[0] * m[7]) * d,
        (m[0] * m[4] - m[1] * m[3]) * d,
    ])
}

/// OpenCV's cubic kernel (a = -0.75) weights for fraction `t`.
fn cubic(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let w0 = ((A * (t + 1.0) - 5.0 * A) * (t + 1.0) + 8.0 * A) * (t + 1.0) - 4.0 * A;
    let w1 = ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
    let w2 = ((A + 2.0) * (1.0 - t) - (A + 3.0)) * (1.0 - t) * (1.0 - t) + 1.0;
    [w0, w1, w2, 1.0 - w0 - w1 - w2]
}

/// The quadrilateral `q` (top-left, top-right, bottom-right, bottom-left) of `img`
/// straightened into a `w` x `h` picture: bicubic samples, the border replicated.
pub fn warp(img: &RgbImage, q: &[Pt; 4], w: u32, h: u32) -> Option<RgbImage> {
    let to = [[0.0, 0.0], [w as f32, 0.0], [w as f32, h as f32], [0.0, h as f32]];
    let inv = invert(&homography(q, &to)?)?;
    let (sw, sh) = (img.width as i64, img.height as i64);
    let px = |x: i64, y: i64, c: usize| {
        let (x, y) = (x.clamp(0, sw - 1) as usize, y.clamp(0, sh - 1) as usize);
        img.data[(y * sw as usize + x) * 3 + c] as f32
    };
    let mut out = vec![0u8; w as usize * h as usize * 3];
    for y in 0..h as usize {
        for x in 0..w as usize {
            let (fx, fy) = (x as f64, y as f64);
            let d = inv[6] * fx + inv[7] * fy + inv[8];
            let sx = ((inv[0] * fx + inv[1] * fy + inv[2]) / d) as f32;
            let sy = ((inv[3] * fx + inv[4] * fy + inv[5]) / d) as f32;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (wx, wy) = (cubic(sx - x0), cubic(sy - y0));
            let (x0, y0) = (x0 as i64 - 1, y0 as i64 - 1);
            for c in 0..3 {
                let mut v = 0f32;
                for (j, wyj) in wy.iter().enumerate() {
                    let mut r = 0f32;
                    for (i, wxi) in wx.iter().enumerate() {
                        r += wxi * px(x0 + i as i64, y0 + j as i64, c);
                    }
                    v += wyj * r;
                }
                out[(y * w as usize + x) * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Some(RgbImage {
        width: w,
        height: h,
        data: out,
    })
}

/// `img` into `out` (3 planes of `stride` columns, BGR, `(v / 255 - 0.5) / 0.5`), from
/// column 0; the columns beyond its width are left as they are (the caller's padding).
pub fn normalise_into(img: &RgbImage, out: &mut [f32], stride: usize) {
    let (w, h) = (img.width as usize, img.height as usize);
    let plane = stride * h;
    for y in 0..h {
        for x in 0..w {
            let p = &img.data[(y * w + x) * 3..(y * w + x) * 3 + 3];
            for (k, c) in [2usize, 1, 0].into_iter().enumerate() {
                out[k * plane + y * stride + x] = (p[c] as f32 / 255.0 - 0.5) / 0.5;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> RgbImage {
        let data = (0..w * h)
            .flat_map(|i| [(i % w * 10) as u8, (i / w * 10) as u8, 7])
            .collect();
        RgbImage {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn resizing_to_the_same_size_and_warping_the_whole_picture_change_nothing() {
        let img = ramp(12, 8);
        assert_eq!(resize(&img, 12, 8), img);
        let q = [[0.0, 0.0], [12.0, 0.0], [12.0, 8.0], [0.0, 8.0]];
        assert_eq!(warp(&img, &q, 12, 8).unwrap(), img);
    }
}
