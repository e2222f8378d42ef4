//! Reading the detected boxes as the reference pipeline does: each box straightened
//! into its own picture (turned upright when it is at least 1.5 times taller than
//! wide), its orientation classified at 80x160 and turned half a turn when the
//! classifier says 180 degrees with more than 0.9, then recognised at a height of 48 px
//! with its aspect kept (padded to the widest of its batch, at least 320 px), and the
//! CTC output decoded greedily (repeats merged, blanks dropped) with the dictionary.
//! Batches of 6, by increasing aspect, as the reference batches them.

use super::det::Detected;
use super::pixels;
use super::{OcrError, Params};
use crate::embed::graph::Graph;
use crate::image::RgbImage;

/// The straightened picture of one box (the reference's `get_rotate_crop_image`).
pub fn crop(frame: &RgbImage, d: &Detected) -> Option<RgbImage> {
    let p = d.points;
    let dist = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let w = dist(p[0], p[1]).max(dist(p[2], p[3])) as u32;
    let h = dist(p[0], p[3]).max(dist(p[1], p[2])) as u32;
    if w == 0 || h == 0 {
        return None;
    }
    let img = pixels::warp(frame, &p, w, h)?;
    Some(if h as f32 / w as f32 >= 1.5 {
        img.rotate(270)
    } else {
        img
    })
}

/// `img` resized to height `h` keeping its aspect, at most `w` wide, into a zeroed
/// 3 x h x `w` slot.
fn fit(img: &RgbImage, h: u32, w: u32, out: &mut [f32]) {
    let ratio = img.width as f32 / img.height as f32;
    let rw = ((h as f32 * ratio).ceil() as u32).clamp(1, w);
    let resized = pixels::resize(img, rw, h);
    pixels::normalise_into(&resized, out, w as usize);
}

/// Indices of `crops` by increasing aspect (the reference's batching order).
fn by_aspect(crops: &[RgbImage]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..crops.len()).collect();
    idx.sort_by(|&a, &b| {
        let r = |i: usize| crops[i].width as f32 / crops[i].height as f32;
        r(a).total_cmp(&r(b))
    });
    idx
}

/// Turns the crops the orientation classifier finds upside down (80 x 160 input).
pub fn orient(graph: &Graph, crops: &mut [RgbImage], p: &Params) -> Result<(), OcrError> {
    let (h, w) = (80u32, 160u32);
    let per = 3 * (h * w) as usize;
    let order = by_aspect(crops);
    for batch in order.chunks(p.batch) {
        let mut input = vec![0f32; per * batch.len()];
        for (k, &i) in batch.iter().enumerate() {
            fit(&crops[i], h, w, &mut input[k * per..(k + 1) * per]);
        }
        let out = graph.run(&input, &[batch.len(), 3, h as usize, w as usize])?;
        if out.shape[..] != [batch.len(), 2] {
            return Err(OcrError::Graph {
                path: graph.path().to_path_buf(),
                reason: format!("the orientation classifier returned shape {:?}, not [N, 2]", out.shape),
            });
        }
        for (k, &i) in batch.iter().enumerate() {
            let (up, down) = (out.data[2 * k], out.data[2 * k + 1]);
            if down > up && down > p.cls_thresh {
                crops[i] = std::mem::take(&mut crops[i]).rotate(180);
            }
        }
    }
    Ok(())
}

/// The text and confidence of each crop, in the crops' order.
pub fn recognise(
    graph: &Graph,
    dict: &[String],
    crops: &[RgbImage],
    p: &Params,
) -> Result<Vec<(String, f32)>, OcrError> {
    let h = 48u32;
    let mut out = vec![(String::new(), 0.0); crops.len()];
    let order = by_aspect(crops);
    for batch in order.chunks(p.batch) {
        let ratio = batch
            .iter()
            .map(|&i| crops[i].width as f32 / crops[i].height as f32)
            .fold(320.0 / 48.0, f32::max);
        let w = (h as f32 * ratio) as u32;
        let per = 3 * (h * w) as usize;
        let mut input = vec![0f32; per * batch.len()];
        for (k, &i) in batch.iter().enumerate() {
            fit(&crops[i], h, w, &mut input[k * per..(k + 1) * per]);
        }
        let t = graph.run(&input, &[batch.len(), 3, h as usize, w as usize])?;
        let (n, steps, classes) = match t.shape[..] {
            [n, s, c] if n == batch.len() => (n, s, c),
            _ => {
                return Err(OcrError::Graph {
                    path: graph.path().to_path_buf(),
                    reason: format!("the recogniser returned shape {:?}, not [N, T, C]", t.shape),
                });
            }
        };
        if classes != dict.len() {
            return Err(OcrError::DictionaryMismatch {
                classes,
                entries: dict.len(),
                path: graph.path().to_path_buf(),
            });
        }
        for k in 0..n {
            let rows = &t.data[k * steps * classes..(k + 1) * steps * classes];
            out[batch[k]] = ctc_greedy(rows, classes, dict);
        }
    }
    Ok(out)
}

/// Greedy CTC decoding of `rows` (T x `classes` probabilities): the best class per
/// step, repeats merged, the blank (class 0) dropped; the confidence is the mean of the
/// kept steps' probabilities (0 when none is kept).
pub fn ctc_greedy(rows: &[f32], classes: usize, dict: &[String]) -> (String, f32) {
    let mut text = String::new();
    let (mut sum, mut n) = (0f32, 0usize);
    let mut prev = usize::MAX;
    for row in rows.chunks_exact(classes) {
        let (best, p) = row.iter().enumerate().fold(
            (0, f32::MIN),
            |(bi, bp), (i, &v)| if v > bp { (i, v) } else { (bi, bp) },
        );
        if best != 0 && best != prev {
            text.push_str(&dict[best]);
            sum += p;
            n += 1;
        }
        prev = best;
    }
    (text, if n == 0 { 0.0 } else { sum / n as f32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctc_merges_repeats_and_drops_blanks() {
        let dict: Vec<String> = ["blank", "a", "b", " "].iter().map(|s| s.to_string()).collect();
        // Steps: a a blank a b b space
        let steps = [1, 1, 0, 1, 2, 2, 3];
        let mut rows = Vec::new();
        for s in steps {
            let mut r = vec![0.0f32; 4];
            r[s] = 0.8;
            rows.extend(r);
        }
        let (text, conf) = ctc_greedy(&rows, 4, &dict);
        assert_eq!(text, "aab ");
        assert!((conf - 0.8).abs() < 1e-6);
        assert_eq!(ctc_greedy(&[0.9, 0.1, 0.0, 0.0], 4, &dict), (String::new(), 0.0));
    }
}
