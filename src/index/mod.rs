//! `index`: derived, rebuildable search structures. `vector` (hnsw_rs) holds the frame
//! vectors, `text` (tantivy) the subtitle cues, titles and file names. Both record the
//! store generation they reflect, so a stale or damaged one is rebuilt from SQLite.

pub mod text;
pub mod vector;

use std::path::{Path, PathBuf};

pub use text::{LexicalQuery, TextDoc, TextHit, TextIndex};
pub use vector::{HnswParams, VectorBackend, VectorIndex, quantise};

/// Errors of the derived indexes. None of them loses data: the store is the source of
/// truth and every index can be rebuilt from it.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading or writing index files failed.
    #[error("{}: {reason}", path.display())]
    Io {
        path: PathBuf,
        reason: String,
        kind: std::io::ErrorKind,
    },
    /// The index files are damaged.
    #[error("the index in {} is damaged ({reason}); it will be rebuilt from the database", dir.display())]
    Corrupt { dir: PathBuf, reason: String },
    /// The index was made for another model or store state.
    #[error("stale index: {0}")]
    Stale(String),
    /// Writing the HNSW dump failed.
    #[error("cannot write the vector index into {}: {reason}", dir.display())]
    Dump { dir: PathBuf, reason: String },
    /// A vector of the wrong length was offered.
    #[error("vector of {got} dimensions offered to an index of {expected}")]
    Dimension { expected: usize, got: usize },
    /// tantivy failed.
    #[error("text index: {0}")]
    Text(String),
}

impl IndexError {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> Self {
        IndexError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
            kind: e.kind(),
        }
    }
}

impl crate::error::Classified for IndexError {
    fn fault(&self) -> crate::error::Fault {
        match self {
            IndexError::Io { kind, .. } => crate::error::io_fault(&std::io::Error::from(*kind)),
            _ => crate::error::Fault::Internal,
        }
    }
}
