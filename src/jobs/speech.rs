//! The speech stage of indexing: [`SpeechStage`] (the engine and which audio stream to
//! hear) and its thread, started beside a file's decoding and joined when its frames are
//! done: the file's audio decoded by `decode::audio`, recognised by the engine, and
//! returned as timed texts of kind `speech`. Does not decode pictures or write the store.

use std::path::Path;
use std::thread::{Scope, ScopedJoinHandle};

use crate::catalog::{NewText, TextKind};
use crate::decode;

/// The speech stage of indexing: the engine and which audio stream to hear.
pub struct SpeechStage {
    pub engine: Box<dyn crate::speech::Engine>,
    /// The audio stream (counted among the file's audio streams from 0); None: FFmpeg's
    /// best.
    pub audio_stream: Option<usize>,
}

impl std::fmt::Debug for SpeechStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechStage")
            .field("engine", &self.engine.describe())
            .field("audio_stream", &self.audio_stream)
            .finish()
    }
}

/// Starts recognising `path`'s speech on a thread of its own within `scope`; [`heard`]
/// joins it.
pub(super) fn start<'scope>(
    scope: &'scope Scope<'scope, '_>,
    stage: &'scope SpeechStage,
    path: &'scope Path,
    audio_streams: usize,
) -> ScopedJoinHandle<'scope, Vec<NewText>> {
    std::thread::Builder::new()
        .name("vidseek-speech".into())
        .spawn_scoped(scope, move || transcribe(stage, path, audio_streams))
        .expect("spawn speech thread")
}

/// The texts of a speech thread started by [`start`] (none when there was none, or when
/// it panicked: logged, the file keeps its frames).
pub(super) fn heard(thread: Option<ScopedJoinHandle<'_, Vec<NewText>>>, path: &Path) -> Vec<NewText> {
    thread
        .map(|h| h.join().unwrap_or_else(|_| panicked(path)))
        .unwrap_or_default()
}

/// The file's speech as timed texts of kind `speech`, one per recognised segment, with
/// its words. A file without audio, or whose audio or recognition fails, has none
/// (logged, naming the file): its frames and other texts are still indexed.
fn transcribe(stage: &SpeechStage, path: &Path, audio_streams: usize) -> Vec<NewText> {
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
fn panicked(path: &Path) -> Vec<NewText> {
    tracing::error!(
        "the speech recogniser panicked on {}; its speech is not indexed",
        path.display()
    );
    Vec::new()
}
