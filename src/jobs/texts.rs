//! The texts a file brings besides its pictures, gathered by the decode threads:
//! subtitle cues (its own streams, sidecar files), on-screen text read by OCR from
//! the sampled frames as they go by (speech: `speech.rs`).

use std::path::Path;

use crate::catalog::{NewText, TextKind};
use crate::decode::{self, SampledFrame, VideoInfo};
use crate::ocr::CueReader;

/// Reads the on-screen text of a sampled frame; a failure stops reading this file's
/// text (logged), its frames and subtitles are still indexed.
pub(super) fn read_text(reader: &mut Option<CueReader<'_>>, path: &Path, f: &SampledFrame) {
    let failed = match reader {
        Some(r) => r.frame(&f.image, f.start, f.end).err(),
        None => None,
    };
    if let Some(e) = failed {
        tracing::warn!(
            "{}: on-screen text not read from {:.1} s on: {e}",
            path.display(),
            f.start
        );
        *reader = None;
    }
}

/// The file's on-screen text as timed texts of kind `ocr` with their boxes.
pub(super) fn screen_text(reader: Option<CueReader<'_>>, path: &Path) -> Vec<NewText> {
    let Some(r) = reader else { return Vec::new() };
    let (cues, stats) = r.finish();
    tracing::debug!("{}: on-screen text: {} cues, {stats:?}", path.display(), cues.len());
    cues.into_iter()
        .map(|c| NewText {
            kind: TextKind::Ocr,
            start: Some(c.start),
            end: Some(c.end),
            text: c.text,
            quad: Some(c.points),
            words: None,
        })
        .collect()
}

/// Subtitle cues from the file's own streams and from sidecar files.
pub(super) fn subtitles(path: &Path, info: &VideoInfo) -> Vec<NewText> {
    let mut cues = Vec::new();
    if info.subtitle_streams > 0 {
        match decode::embedded_subtitles(path) {
            Ok(c) => cues.extend(c),
            Err(e) => tracing::warn!("{e}"),
        }
    }
    for side in decode::sidecar_files(path) {
        match decode::subtitle_file(&side) {
            Ok(c) => cues.extend(c),
            Err(e) => tracing::warn!("{e}"),
        }
    }
    cues.into_iter()
        .map(|c| NewText {
            kind: TextKind::Subtitle,
            start: Some(c.start),
            end: Some(c.end),
            text: c.text,
            quad: None,
            words: None,
        })
        .collect()
}
