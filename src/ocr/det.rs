//! DB text detection as the reference pipeline runs it (RapidOCR's `TextDetector` with
//! its defaults): the frame resized so its short side is at least 736 px, both sides
//! rounded to multiples of 32; normalised; the probability map thresholded at 0.3 and
//! dilated by a 2x2 square; each connected region's minimum-area rectangle kept when its
//! short side is at least 3 px and the map's mean inside it at least 0.5 (the box
//! score); grown by the unclip distance (area x 1.6 / perimeter); scaled back to the
//! frame; ordered and clipped; boxes 3 px or less on a side dropped.

use super::geom::{self, Pt};
use super::pixels;
use super::{OcrError, Params};
use crate::embed::graph::Graph;
use crate::image::RgbImage;

/// A detected text box in frame pixels (top-left, top-right, bottom-right, bottom-left)
/// and its box score.
#[derive(Clone, Debug, PartialEq)]
pub struct Detected {
    pub points: [Pt; 4],
    pub score: f32,
}

/// The detector's input size for a `w` x `h` frame (the reference's `limit_type: min`).
pub fn input_size(w: u32, h: u32, min_side: u32) -> (u32, u32) {
    let short = w.min(h) as f64;
    let ratio = if short < min_side as f64 {
        min_side as f64 / short
    } else {
        1.0
    };
    let round32 = |v: f64| (((v as i64) as f64 / 32.0).round() as u32 * 32).max(32);
    (round32(w as f64 * ratio), round32(h as f64 * ratio))
}

/// The text boxes of `frame`, in reading order.
pub fn detect(graph: &Graph, frame: &RgbImage, p: &Params) -> Result<Vec<Detected>, OcrError> {
    let (w, h) = input_size(frame.width, frame.height, p.det_min_side);
    let resized = pixels::resize(frame, w, h);
    let mut input = vec![0f32; 3 * w as usize * h as usize];
    pixels::normalise_into(&resized, &mut input, w as usize);
    let out = graph.run(&input, &[1, 3, h as usize, w as usize])?;
    let (mh, mw) = match out.shape[..] {
        [1, 1, mh, mw] if mh * mw == out.data.len() => (mh, mw),
        _ => {
            return Err(OcrError::Graph {
                path: graph.path().to_path_buf(),
                reason: format!("the detector returned shape {:?}, not [1, 1, H, W]", out.shape),
            });
        }
    };
    let mut boxes = boxes_from_map(&out.data, mw, mh, frame.width, frame.height, p);
    geom::reading_order(&mut boxes, |d| d.points[0]);
    Ok(boxes)
}

/// The thresholded map dilated by a 2x2 square anchored as OpenCV anchors it: a pixel is
/// set when it, its left, upper or upper-left neighbour is above `thresh`.
fn dilated(map: &[f32], w: usize, h: usize, thresh: f32) -> Vec<u8> {
    let on = |x: usize, y: usize| map[y * w + x] > thresh;
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            let set =
                on(x, y) || (x > 0 && on(x - 1, y)) || (y > 0 && on(x, y - 1)) || (x > 0 && y > 0 && on(x - 1, y - 1));
            out[y * w + x] = set as u8;
        }
    }
    out
}

/// The reference's `boxes_from_bitmap`: boxes in frame pixels (`fw` x `fh`).
fn boxes_from_map(map: &[f32], w: usize, h: usize, fw: u32, fh: u32, p: &Params) -> Vec<Detected> {
    let mask = dilated(map, w, h, p.det_thresh);
    let mut out = Vec::new();
    for region in geom::regions(&mask, w, h, p.max_candidates) {
        let rect = geom::min_area_rect(&region);
        if rect.short_side() < 3.0 {
            continue;
        }
        let quad = geom::mini_box(rect.corners());
        let score = geom::mean_inside(map, w, h, &quad);
        if score < p.box_thresh {
            continue;
        }
        let (area, perimeter) = geom::area_perimeter(&quad);
        let grown = rect.grown(area * p.unclip_ratio / perimeter);
        if grown.short_side() < 5.0 {
            continue;
        }
        let quad = geom::mini_box(grown.corners());
        let scale = |q: Pt| {
            [
                (q[0] / w as f32 * fw as f32).round_ties_even().clamp(0.0, fw as f32),
                (q[1] / h as f32 * fh as f32).round_ties_even().clamp(0.0, fh as f32),
            ]
        };
        let mut points = geom::clockwise(quad.map(scale));
        for q in &mut points {
            q[0] = q[0].clamp(0.0, fw as f32 - 1.0).trunc();
            q[1] = q[1].clamp(0.0, fh as f32 - 1.0).trunc();
        }
        let side = |a: Pt, b: Pt| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt() as i64;
        if side(points[0], points[1]) <= 3 || side(points[0], points[3]) <= 3 {
            continue;
        }
        out.push(Detected { points, score });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_size_follows_the_reference() {
        // 854x480: short side raised to 736, sides to multiples of 32.
        assert_eq!(input_size(854, 480, 736), (1312, 736));
        assert_eq!(input_size(1920, 1080, 736), (1920, 1088));
    }

    #[test]
    fn a_bright_bar_in_the_map_becomes_one_grown_box() {
        let (w, h) = (64, 32);
        let mut map = vec![0f32; w * h];
        for y in 10..16 {
            for x in 8..50 {
                map[y * w + x] = 0.9;
            }
        }
        let p = Params::default();
        let b = boxes_from_map(&map, w, h, 128, 64, &p);
        assert_eq!(b.len(), 1, "{b:?}");
        let [tl, tr, br, bl] = b[0].points;
        assert!(
            tl[0] < 16.0 && tr[0] > 100.0 && bl[1] > tl[1] + 12.0 && br[1] == bl[1],
            "{b:?}"
        );
        // The box follows the dilated mask, one pixel wider and taller than the bar, so
        // its mean is 0.9 x (42 x 6) / (43 x 7), as the reference's box score is.
        assert!((b[0].score - 0.9 * 252.0 / 301.0).abs() < 1e-3, "{}", b[0].score);
    }
}
