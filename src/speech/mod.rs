//! `speech`: what is said, through OpenAI's Whisper run by whisper.cpp (`whisper-rs`).
//! The seam ([`Engine`]): 16 kHz mono `f32` samples in; segments with their words, each
//! with start and end times in seconds, out. Whisper models come in the CTranslate2
//! (faster-whisper) layout that PyPI and `Systran/faster-whisper-*` publish, and are
//! converted here, in Rust, to whisper.cpp's format (`ct2` reads, `ggml` writes); a
//! whisper.cpp file (`ggml-*.bin`) is used as it is.
//!
//! Owns: model folders (`model`), the conversion, the engine and its settings
//! (`engine`), writing a transcript as SRT or WebVTT (`export`). Does not: decode audio (that is `decode`), store or index anything.

mod ct2;
mod engine;
mod error;
mod export;
mod ggml;
mod model;

pub use engine::{Engine, Settings, Whisper};
pub use error::SpeechError;
pub use export::{srt, vtt};
#[allow(unused_imports)]
pub use ggml::{Dims, mel_filters};
#[allow(unused_imports)]
pub use model::{MANIFEST, ModelInfo, SpeechModel, convert_folder, find_installed, is_ct2_whisper, locate};

/// Samples per second the engine takes.
pub const SAMPLE_RATE: u32 = 16_000;

/// One recognised word.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Word {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// One recognised stretch of speech (a Whisper segment): its time range, its text and
/// its words.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// Seconds from the first sample.
    pub start: f64,
    /// Seconds from the first sample.
    pub end: f64,
    /// What was said.
    pub text: String,
    /// Its words, in order.
    pub words: Vec<Word>,
}
