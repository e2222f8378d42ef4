//! The texts a file brings besides its pictures, gathered by the decode threads:
//! subtitle cues (its own streams, sidecar files), on-screen text read by OCR from
//! the sampled frames as they go by, and speech recognised in its audio.

use std::path::Path;

use crate::catalog::{NewText, TextKind};
use crate::decode::{self, SampledFrame, VideoInfo};
use crate::ocr::CueReader;

use super::SpeechStage;

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

/// The file's speech as timed texts of kind `speech`, one per recognised segment, with
/// its words. A file without audio, or whose audio or recognition fails, has none
/// (logged, naming the file): its frames and other texts are still indexed.
pub(super) fn speech(stage: &SpeechStage, path: &Path, audio_streams: usize) -> Vec<NewText> {
    if audio_streams == 0 {
        tracing::info!("{}: no audio stream: nothing to transcribe", path.display());
        return Vec::new();
    }
    let t0 = std::time::Instant::now();
    let track = match decode::audio(path, stage.audio_stream) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("{e}; its speech is not indexed");
            return Vec::new();
        }
    };
    if track.streams > 1 {
        tracing::info!(
            "{}: {} audio streams; transcribing stream {} ({}), choose another with --audio-stream N",
            path.display(),
            track.streams,
            track.stream,
            track.source
        );
    }
    if let Some(why) = &track.damaged {
        tracing::warn!(
            "{}: the audio track is damaged: {why}; the speech in the rest is kept",
            path.display()
        );
    }
    let segments = match stage.engine.transcribe(&track.samples) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("{}: speech not recognised: {e}", path.display());
            return Vec::new();
        }
    };
    let secs = track.samples.len() as f64 / decode::AUDIO_RATE as f64;
    tracing::debug!(
        "{}: {} speech segments from {secs:.1} s of audio in {:.1} s",
        path.display(),
        segments.len(),
        t0.elapsed().as_secs_f64()
    );
    let at = track.offset;
    segments
        .into_iter()
        .map(|s| NewText {
            kind: TextKind::Speech,
            start: Some(s.start + at),
            end: Some(s.end + at),
            text: s.text,
            quad: None,
            words: Some(
                s.words
                    .into_iter()
                    .map(|w| (w.start + at, w.end + at, w.text))
                    .collect(),
            ),
        })
        .collect()
}

/// A panic of the speech thread: logged with the file's name; the file keeps its frames.
pub(super) fn speech_panicked(path: &Path) -> Vec<NewText> {
    tracing::error!(
        "the speech recogniser panicked on {}; its speech is not indexed",
        path.display()
    );
    Vec::new()
}
