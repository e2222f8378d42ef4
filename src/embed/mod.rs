//! `embed`: images and sentences to L2-normalised CLIP vectors through ONNX Runtime.
//!
//! Owns: loading and validating a model package (`model.json`, the two ONNX graphs,
//! `tokenizer.json`), ONNX Runtime sessions on the CUDA or CPU execution provider,
//! CLIP preprocessing and tokenisation. The only module that imports `ort` and
//! `tokenizers`. Knows nothing of video, storage or search: batch in, batch out.
//!
//! Here: the [`Embedder`] (a loaded package) and its accessors, [`Embeddings`] and
//! the reading of a graph's output into them. The rest, by responsibility:
//! `manifest` (model.json), `load` (sessions on a provider, the probe run), `check`
//! (a graph against its manifest), `image_tower` and `text_tower` (the runs of each
//! graph), `stream` (the indexing path's device-resident image batches), `combine`
//! (concurrent text runs as one), `preprocess` (pixels), `text` (tokens), `labels`
//! (the vocabulary files), `inspect` (a graph's inputs and outputs), `external`
//! (external-data files), `runtime` (the ONNX Runtime library), `graph` (a plain graph
//! for the other leaves that run models: `ocr`), `error`, `options`.

mod check;
mod combine;
mod error;
mod external;
pub mod graph;
mod image_tower;
mod inspect;
mod labels;
mod load;
mod manifest;
mod options;
pub mod preprocess;
pub mod runtime;
mod stream;
pub mod text;
mod text_tower;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::Session;

pub use error::EmbedError;
pub use external::external_data_files;
pub use inspect::{GraphIo, inspect};
pub use labels::{parse_labels, read_templates};
pub use manifest::{FORMAT, Files, ImageSpec, Io, Link, MANIFEST_FILE, Manifest, Origin, Scoring, TextClean, TextSpec};
pub use options::{Device, EmbedOptions};
pub use preprocess::Filter;
pub use runtime::Runtime;
pub use stream::{ImageStream, Padding, StreamOptions};
pub use text::{TokenizerFacts, tokenizer_facts};

use check::{TextGraph, text_inputs};

/// L2-normalised vectors, one row per input.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Embeddings {
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.dim.max(1))
    }
}

/// A loaded model package: both towers and the tokenizer, ready to embed.
pub struct Embedder {
    dir: PathBuf,
    manifest: Manifest,
    visual: Mutex<Session>,
    textual: Mutex<Session>,
    /// Concurrent small text runs, combined into batches.
    text_queue: combine::Combiner<Vec<Vec<u32>>, Result<Embeddings, EmbedError>>,
    tokenizer: text::TextTokenizer,
    provider: &'static str,
    fp16: bool,
    text: TextGraph,
    /// The text tower's graph file in use (plain, fused or int8).
    text_file: PathBuf,
    /// The batch size the image graph is fixed at.
    image_batch: Option<usize>,
    filter: Filter,
    /// The package's label vocabulary (`files.labels`), when it has one.
    labels: Option<Vec<String>>,
    /// The package's prompt templates (`files.templates`), when it has them.
    templates: Option<Vec<String>>,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dir", &self.dir)
            .field("model", &self.manifest.name)
            .field("provider", &self.provider)
            .finish()
    }
}

impl Embedder {
    /// The package's prompt templates, when it ships them.
    pub fn templates(&self) -> Option<&[String]> {
        self.templates.as_deref()
    }

    /// The package's label vocabulary, when it ships one.
    pub fn labels(&self) -> Option<&[String]> {
        self.labels.as_deref()
    }

    /// The package's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The package folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Model identity stored with every vector.
    pub fn model_name(&self) -> &str {
        &self.manifest.name
    }
    /// Length of the vectors.
    pub fn dim(&self) -> usize {
        self.manifest.embedding_dim
    }
    /// Side of the square model input.
    pub fn image_size(&self) -> u32 {
        self.manifest.image.size
    }
    /// The text tower's graph file in use: the package's plain one, its fused one (CPU),
    /// its int8 one (CPU, `text_int8`) or its half one (CUDA).
    pub fn text_graph(&self) -> &Path {
        &self.text_file
    }

    /// Whether the half-precision graphs are in use (CUDA with an fp16 package).
    pub fn is_fp16(&self) -> bool {
        self.fp16
    }
    /// The execution provider in use: "CUDA" or "CPU".
    pub fn provider(&self) -> &'static str {
        self.provider
    }
    /// Number of floats of one preprocessed image.
    pub fn pixels_per_image(&self) -> usize {
        let s = self.image_size() as usize;
        3 * s * s
    }
    /// The batch size the image graph is fixed at (work is split into such batches).
    pub fn image_batch(&self) -> Option<usize> {
        self.image_batch
    }

    /// The batch size the text graph is fixed at.
    pub fn text_batch(&self) -> Option<usize> {
        self.text.batch
    }
    /// Token ids of `text` (start and end included, truncated to the context length).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        self.tokenizer.ids(text)
    }
}

/// The first `keep` rows of output `name`, which must be `rows` x `dim` (a padded batch
/// has more rows than images), L2-normalised.
fn extract(
    outputs: &ort::session::SessionOutputs<'_>,
    name: &str,
    rows: usize,
    keep: usize,
    dim: usize,
    what: &'static str,
) -> Result<Embeddings, EmbedError> {
    let value = outputs.get(name).ok_or_else(|| EmbedError::Inference {
        what,
        reason: format!("no output named {name:?}"),
    })?;
    let (shape, data) = value.try_extract_tensor::<f32>().map_err(|e| EmbedError::Inference {
        what,
        reason: e.to_string(),
    })?;
    if shape.len() != 2 || shape[0] as usize != rows || shape[1] as usize != dim {
        return Err(EmbedError::Inference {
            what,
            reason: format!(
                "output {name:?} has shape {:?}, expected [{rows}, {dim}] (check embedding_dim in model.json)",
                &shape[..]
            ),
        });
    }
    let mut data = data[..keep * dim].to_vec();
    for row in data.chunks_exact_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v /= norm);
        }
    }
    Ok(Embeddings { dim, data })
}
