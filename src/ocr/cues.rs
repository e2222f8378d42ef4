//! A video's frames into timed cues of on-screen text: which sampled frames are read,
//! and readings of the same text on consecutive frames merged into one cue (start, end,
//! box, best reading).
//!
//! A frame is not read when it is the same picture as the last one read (mean absolute
//! luma difference under [`SAME_FRAME`]: its lines are carried over), or when a cheap
//! test finds no sharp edge anywhere (fewer than [`MIN_EDGE_FRACTION`] of its pixels
//! beside a luma step of [`EDGE_STEP`] or more: black frames, fades, soft gradients).
//! A detected box whose pixels have not changed since the last read (same place, mean
//! luma difference under [`SAME_REGION`]) keeps its reading without running the
//! recogniser again. Readings below the confidence asked for, or without a letter or
//! digit, are dropped.

use super::det::Detected;
use super::{Line, Ocr, OcrError, geom};
use crate::image::RgbImage;

/// Mean absolute luma difference (0..255) under which a frame is the last one again.
pub const SAME_FRAME: f32 = 1.0;
/// Mean absolute luma difference inside a box under which its text has not changed.
pub const SAME_REGION: f32 = 2.0;
/// A luma step between neighbours that counts as an edge.
pub const EDGE_STEP: u8 = 48;
/// The share of edge pixels under which a frame holds no text.
pub const MIN_EDGE_FRACTION: f32 = 0.0005;

/// On-screen text shown from `start` to `end`, its box in fractions of the frame.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Cue {
    /// When it first shows, in seconds.
    pub start: f64,
    /// When it is last seen, in seconds.
    pub end: f64,
    /// Top-left, top-right, bottom-right, bottom-left; x / width and y / height.
    pub points: [[f32; 2]; 4],
    /// The best reading.
    pub text: String,
    /// That reading's confidence.
    pub confidence: f32,
}

/// What the reader did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ReaderStats {
    pub frames: usize,
    /// Frames the detector ran on.
    pub detected: usize,
    /// Frames taken as the last one again.
    pub same: usize,
    /// Frames the edge test found no text in.
    pub blank: usize,
    /// Lines recognised, and lines whose reading was carried over.
    pub recognised: usize,
    pub carried: usize,
}

struct Seen {
    gray: Vec<u8>,
    width: u32,
    height: u32,
    lines: Vec<Line>,
}

struct Open {
    cue: Cue,
    /// Where it was last seen, in pixels.
    last: [[f32; 2]; 4],
}

/// Reads one video's frames, in order.
pub struct CueReader<'a> {
    ocr: &'a Ocr,
    min_confidence: f32,
    last: Option<Seen>,
    open: Vec<Open>,
    done: Vec<Cue>,
    stats: ReaderStats,
}

impl<'a> CueReader<'a> {
    /// A reader keeping readings of at least `min_confidence`.
    pub fn new(ocr: &'a Ocr, min_confidence: f32) -> Self {
        Self {
            ocr,
            min_confidence,
            last: None,
            open: Vec::new(),
            done: Vec::new(),
            stats: ReaderStats::default(),
        }
    }

    /// The next frame, shown from `start` to `end`.
    pub fn frame(&mut self, img: &RgbImage, start: f64, end: f64) -> Result<(), OcrError> {
        self.stats.frames += 1;
        let gray = luma(img);
        let same_size = |s: &Seen| (s.width, s.height) == (img.width, img.height);
        let lines = match &self.last {
            Some(s) if same_size(s) && mean_diff(&gray, &s.gray, img.width as usize, None) < SAME_FRAME => {
                self.stats.same += 1;
                s.lines.clone()
            }
            _ if !has_edges(&gray, img.width as usize) => {
                self.stats.blank += 1;
                Vec::new()
            }
            _ => {
                self.stats.detected += 1;
                let boxes = self.ocr.detect(img)?;
                self.read_boxes(img, &gray, boxes)?
            }
        };
        self.merge(&lines, img.width, img.height, start, end);
        self.last = Some(Seen {
            gray,
            width: img.width,
            height: img.height,
            lines,
        });
        Ok(())
    }

    /// The boxes' readings: carried over where the box's pixels are unchanged.
    fn read_boxes(&mut self, img: &RgbImage, gray: &[u8], boxes: Vec<Detected>) -> Result<Vec<Line>, OcrError> {
        let mut out: Vec<Option<Line>> = vec![None; boxes.len()];
        let mut fresh = Vec::new();
        for (i, b) in boxes.into_iter().enumerate() {
            let carried = self
                .last
                .as_ref()
                .filter(|s| (s.width, s.height) == (img.width, img.height))
                .and_then(|s| {
                    s.lines.iter().find(|l| {
                        geom::iou(&l.points, &b.points) > 0.8
                            && mean_diff(gray, &s.gray, img.width as usize, Some(&b.points)) < SAME_REGION
                    })
                });
            match carried {
                Some(l) => {
                    self.stats.carried += 1;
                    out[i] = Some(Line {
                        points: b.points,
                        box_score: b.score,
                        ..l.clone()
                    });
                }
                None => fresh.push((i, b)),
            }
        }
        let (idx, boxes): (Vec<usize>, Vec<Detected>) = fresh.into_iter().unzip();
        self.stats.recognised += boxes.len();
        for (i, line) in idx.into_iter().zip(self.ocr.recognise_boxes(img, boxes)?) {
            out[i] = Some(line);
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Extends the open cues the frame's lines continue; opens the others; closes the
    /// open cues the frame does not continue.
    fn merge(&mut self, lines: &[Line], w: u32, h: u32, start: f64, end: f64) {
        let mut open = std::mem::take(&mut self.open);
        let mut next = Vec::new();
        for l in lines
            .iter()
            .filter(|l| l.confidence >= self.min_confidence && l.text.chars().any(char::is_alphanumeric))
        {
            let norm = l.points.map(|p| [p[0] / w as f32, p[1] / h as f32]);
            let text = l.text.trim().to_string();
            let found = open
                .iter()
                .position(|o| geom::iou(&o.last, &l.points) >= 0.3 && similar(&o.cue.text, &text));
            match found {
                Some(k) => {
                    let mut o = open.swap_remove(k);
                    o.cue.end = end;
                    o.last = l.points;
                    if l.confidence > o.cue.confidence {
                        (o.cue.text, o.cue.points, o.cue.confidence) = (text, norm, l.confidence);
                    }
                    next.push(o);
                }
                None => next.push(Open {
                    cue: Cue {
                        start,
                        end,
                        points: norm,
                        text,
                        confidence: l.confidence,
                    },
                    last: l.points,
                }),
            }
        }
        self.done.extend(open.into_iter().map(|o| o.cue));
        self.open = next;
    }

    /// Every cue, by start time, and what was done.
    pub fn finish(mut self) -> (Vec<Cue>, ReaderStats) {
        self.done.extend(self.open.into_iter().map(|o| o.cue));
        self.done.sort_by(|a, b| a.start.total_cmp(&b.start));
        (self.done, self.stats)
    }
}

/// Whether two readings are of the same text: equal once case and spaces are put
/// aside, or at most one character in five apart.
fn similar(a: &str, b: &str) -> bool {
    let key = |s: &str| {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect::<Vec<_>>()
    };
    let (a, b) = (key(a), key(b));
    edit_distance(&a, &b) * 5 <= a.len().max(b.len())
}

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + (ca != cb) as usize).min(row[j] + 1).min(up + 1);
            diag = up;
        }
    }
    row[b.len()]
}

fn luma(img: &RgbImage) -> Vec<u8> {
    img.data
        .chunks_exact(3)
        .map(|p| ((p[0] as u32 * 77 + p[1] as u32 * 150 + p[2] as u32 * 29) >> 8) as u8)
        .collect()
}

/// Mean absolute difference of two luma pictures of width `w` (every other row and
/// column), over the bounds of `region` when given.
fn mean_diff(a: &[u8], b: &[u8], w: usize, region: Option<&[[f32; 2]; 4]>) -> f32 {
    let h = a.len() / w;
    let (x0, y0, x1, y1) = match region {
        Some(q) => (
            q.iter().map(|p| p[0] as usize).min().unwrap_or(0),
            q.iter().map(|p| p[1] as usize).min().unwrap_or(0),
            q.iter().map(|p| p[0] as usize + 1).max().unwrap_or(w).min(w),
            q.iter().map(|p| p[1] as usize + 1).max().unwrap_or(h).min(h),
        ),
        None => (0, 0, w, h),
    };
    let (mut sum, mut n) = (0u64, 0u64);
    for y in (y0..y1).step_by(2) {
        for x in (x0..x1).step_by(2) {
            sum += a[y * w + x].abs_diff(b[y * w + x]) as u64;
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { sum as f32 / n as f32 }
}

/// The cheap no-text test: whether enough pixels sit beside a sharp luma step.
fn has_edges(gray: &[u8], w: usize) -> bool {
    let h = gray.len() / w.max(1);
    let mut edges = 0usize;
    for y in (0..h.saturating_sub(1)).step_by(2) {
        let row = &gray[y * w..(y + 1) * w];
        let below = &gray[(y + 1) * w..(y + 2) * w];
        for x in 0..w - 1 {
            if row[x].abs_diff(row[x + 1]) >= EDGE_STEP || row[x].abs_diff(below[x]) >= EDGE_STEP {
                edges += 1;
            }
        }
    }
    edges as f32 >= MIN_EDGE_FRACTION * (w * h / 2) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_wrong_letter_in_five_is_the_same_text() {
        assert!(similar("Quarterly revenue", "quarterly  revenue"));
        assert!(similar("Quarterly revenue", "Quarterlv revenue"));
        assert!(!similar("Quarterly revenue", "Lighthouse keeper"));
        assert_eq!(edit_distance(&['a', 'b'], &['b']), 1);
    }

    #[test]
    fn flat_frames_have_no_edges_and_text_like_steps_do() {
        let (w, h) = (200, 100);
        let mut g = vec![40u8; w * h];
        assert!(!has_edges(&g, w));
        for y in 40..54 {
            for x in (20..120).step_by(6) {
                g[y * w + x] = 250;
            }
        }
        assert!(has_edges(&g, w));
    }
}
