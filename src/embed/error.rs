//! The embedding runtime's one error type and its fault classes: every message names
//! the file or setting involved and what to do about it.

use std::path::PathBuf;

/// Errors of the embedding runtime. Every message names the file or setting involved
/// and what to do about it.
#[derive(Debug, thiserror::Error)]
// The variants' fields are what their messages print.
#[allow(missing_docs)]
pub enum EmbedError {
    /// No ONNX Runtime shared library was found.
    #[error("ONNX Runtime library not found (looked in: {}); {hint}", list(searched))]
    RuntimeMissing { searched: Vec<PathBuf>, hint: &'static str },
    /// The library exists but could not be loaded (wrong version, broken file).
    #[error(
        "cannot load ONNX Runtime from {}: {reason}; vidseek needs ONNX Runtime 1.31 or newer \
         (.ci/setup installs it, or point --ort-lib / ORT_DYLIB_PATH at another libonnxruntime.so)",
        path.display()
    )]
    RuntimeLoad { path: PathBuf, reason: String },
    /// The model folder does not exist.
    #[error(
        "model package {} not found: pass --model DIR (a folder with model.json, see models/README.md) \
         or get one with `vidseek model pull NAME`",
        dir.display()
    )]
    PackageMissing { dir: PathBuf },
    /// model.json is missing, unreadable or inconsistent.
    #[error("{}: {reason}; fix the manifest (format: models/README.md)", path.display())]
    Manifest { path: PathBuf, reason: String },
    /// A file named by the manifest is missing.
    #[error(
        "{} ({role}, named in {}) is missing: restore the package, or rebuild it \
         (models/export_clip.py, models/fuse_text.py for the fused text tower, or `vidseek model import`)",
        path.display(),
        manifest.display()
    )]
    FileMissing {
        path: PathBuf,
        role: &'static str,
        manifest: PathBuf,
    },
    /// An ONNX graph cannot be loaded or does not match the manifest.
    #[error("{}: {reason}", path.display())]
    Graph { path: PathBuf, reason: String },
    /// tokenizer.json cannot be read.
    #[error(
        "{}: not a usable tokenizer ({reason}); the package needs CLIP's tokenizer.json \
         (build it with `python3 models/clip_tokenizer.py {}`)",
        path.display(),
        path.display()
    )]
    Tokenizer { path: PathBuf, reason: String },
    /// `--device cuda` was asked for and CUDA cannot start.
    #[error("CUDA was requested (--device cuda) but cannot be used: {reason} (--device cpu or auto runs on the CPU)")]
    Cuda { reason: String },
    /// ONNX Runtime failed while running a graph.
    #[error("{what} failed: {reason}")]
    Inference { what: &'static str, reason: String },
    /// The caller passed something unusable (an empty image, an empty batch of ids).
    #[error("{0}")]
    BadInput(String),
}

impl crate::error::Classified for EmbedError {
    fn fault(&self) -> crate::error::Fault {
        use crate::error::Fault;
        match self {
            EmbedError::BadInput(_) => Fault::BadInput,
            // A package that is missing or broken: whoever chose it can fix it.
            EmbedError::PackageMissing { .. }
            | EmbedError::Manifest { .. }
            | EmbedError::FileMissing { .. }
            | EmbedError::Graph { .. }
            | EmbedError::Tokenizer { .. } => Fault::BadInput,
            EmbedError::RuntimeMissing { .. } | EmbedError::RuntimeLoad { .. } | EmbedError::Cuda { .. } => {
                Fault::Unavailable
            }
            EmbedError::Inference { .. } => Fault::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            EmbedError::BadInput(_) => "bad_query",
            EmbedError::Inference { .. }
            | EmbedError::RuntimeMissing { .. }
            | EmbedError::RuntimeLoad { .. }
            | EmbedError::Cuda { .. } => self.fault().code(),
            _ => "bad_model",
        }
    }
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
