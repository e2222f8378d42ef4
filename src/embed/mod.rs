//! `embed`: images and sentences to L2-normalised CLIP vectors through ONNX Runtime.
//!
//! Owns: loading and validating a model package (`model.json`, the two ONNX graphs,
//! `tokenizer.json`), ONNX Runtime sessions on the CUDA or CPU execution provider,
//! CLIP preprocessing and tokenisation. The only module that imports `ort` and
//! `tokenizers`. Knows nothing of video, storage or search: batch in, batch out.

mod combine;
mod external;
mod manifest;
pub mod preprocess;
pub mod runtime;
mod stream;
pub mod text;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ort::ep::ExecutionProvider;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorElementType, TensorRef, ValueType};

pub use external::external_data_files;
pub use manifest::{FORMAT, Files, ImageSpec, Io, Link, MANIFEST_FILE, Manifest, Origin, Scoring, TextClean, TextSpec};
pub use preprocess::Filter;
pub use runtime::Runtime;
pub use stream::{ImageStream, Padding, StreamOptions};
pub use text::{TokenizerFacts, tokenizer_facts};

use crate::image::RgbImage;

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

/// Where inference runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// CUDA when the library and the machine support it, else CPU (logged).
    #[default]
    Auto,
    /// The CPU execution provider.
    Cpu,
    /// CUDA or an error.
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            other => Err(format!("unknown device {other:?}: use auto, cpu or cuda")),
        }
    }
}

/// How to start the runtime.
#[derive(Clone, Debug, Default)]
pub struct EmbedOptions {
    /// Explicit libonnxruntime path (else the search in [`runtime::locate`]).
    pub ort_lib: Option<PathBuf>,
    /// Where inference runs.
    pub device: Device,
    /// Intra-op threads per session (default: ONNX Runtime's choice, one per core).
    pub intra_threads: Option<usize>,
    /// Queries through the package's int8 text tower (`files.textual_int8`) on the CPU.
    pub text_int8: bool,
    /// Many queries at once (a server): the text tower's idle threads sleep instead of
    /// spinning, as the image tower's always do.
    pub concurrent_queries: bool,
}

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

/// How long the thread running the queue of concurrent text runs waits for the next
/// job before it ends (a search starts another).
const TEXT_RUNNER_LINGER: Duration = Duration::from_millis(100);

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

/// Reads a label file: one label a line, blank lines and `#` comments skipped,
/// duplicates dropped.
pub fn read_labels(path: &Path) -> Result<Vec<String>, EmbedError> {
    let text = std::fs::read_to_string(path).map_err(|e| EmbedError::Manifest {
        path: path.to_path_buf(),
        reason: format!("cannot read the label vocabulary ({e})"),
    })?;
    let labels = parse_labels(&text);
    if labels.is_empty() {
        return Err(EmbedError::Manifest {
            path: path.to_path_buf(),
            reason: "the label vocabulary is empty: write one label a line".into(),
        });
    }
    Ok(labels)
}

/// Reads a prompt template file: one template a line with `{}` where the label goes,
/// blank lines and `#` comments skipped.
pub fn read_templates(path: &Path) -> Result<Vec<String>, EmbedError> {
    let bad = |reason: String| EmbedError::Manifest {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read the prompt templates ({e})")))?;
    let templates = parse_labels(&text);
    if templates.is_empty() {
        return Err(bad(
            "the prompt template file is empty: write one template a line, e.g. `a photo of a {}.`".into(),
        ));
    }
    if let Some(t) = templates.iter().find(|t| t.matches("{}").count() != 1) {
        return Err(bad(format!(
            "the template {t:?} must hold `{{}}` exactly once (where the label goes)"
        )));
    }
    Ok(templates)
}

/// Labels of a label file's text (see [`read_labels`]).
pub fn parse_labels(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| seen.insert(l.to_lowercase()))
        .map(str::to_string)
        .collect()
}

/// What the text graph takes, read from the graph itself.
#[derive(Clone, Copy, Debug)]
struct TextGraph {
    /// Token ids (and mask) are int32 rather than int64.
    ids_i32: bool,
    /// The sequence length every run uses (a fixed graph axis, or `pad_to_context`).
    fixed_len: Option<usize>,
    /// The batch size the graph is fixed at.
    batch: Option<usize>,
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
    /// Loads and validates the package in `dir`; every failure names the file and the fix.
    pub fn load(dir: &Path, opts: &EmbedOptions) -> Result<Self, EmbedError> {
        let manifest = Manifest::load(dir)?;
        let tok_path = dir.join(&manifest.files.tokenizer);
        let tokenizer = text::TextTokenizer::load(&tok_path, &manifest.text)?;
        let rt = runtime::init(opts.ort_lib.as_deref())?;

        let (sessions, provider) = match opts.device {
            Device::Cpu => (open_sessions(dir, &manifest, rt, opts, false)?, "CPU"),
            Device::Cuda => {
                if !ort::ep::CUDA::is_available().unwrap_or(false) {
                    return Err(EmbedError::Cuda {
                        reason: format!(
                            "the ONNX Runtime library {} was built without CUDA; install the \
                             onnxruntime-gpu 1.31 wheel's libraries (see README, GPU)",
                            rt.library.display()
                        ),
                    });
                }
                (open_sessions(dir, &manifest, rt, opts, true)?, "CUDA")
            }
            Device::Auto => {
                let cuda = if ort::ep::CUDA::is_available().unwrap_or(false) {
                    match open_sessions(dir, &manifest, rt, opts, true) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            tracing::warn!("CUDA is not usable, falling back to CPU: {e}");
                            None
                        }
                    }
                } else {
                    None
                };
                match cuda {
                    Some(s) => (s, "CUDA"),
                    None => (open_sessions(dir, &manifest, rt, opts, false)?, "CPU"),
                }
            }
        };
        let (visual, textual, fp16) = sessions;
        let provider_is_cpu = provider == "CPU";
        let (v_path, t_path) = {
            let (v, t) = graph_files(&manifest, fp16, provider_is_cpu, opts.text_int8);
            (dir.join(v), dir.join(t))
        };
        let image_batch = check_visual(&visual, &v_path, &manifest)?;
        let text = check_textual(&textual, &t_path, &manifest)?;
        let filter = match manifest.image.interpolation.as_str() {
            "bilinear" => Filter::Bilinear,
            _ => Filter::Bicubic,
        };
        let labels = match &manifest.files.labels {
            Some(f) => Some(read_labels(&dir.join(f))?),
            None => None,
        };
        let templates = match &manifest.files.templates {
            Some(f) => Some(read_templates(&dir.join(f))?),
            None => None,
        };
        let emb = Self {
            labels,
            templates,
            dir: dir.to_path_buf(),
            manifest,
            visual: Mutex::new(visual),
            textual: Mutex::new(textual),
            text_queue: combine::Combiner::new(),
            tokenizer,
            provider,
            fp16,
            text,
            text_file: t_path,
            image_batch,
            filter,
        };
        emb.probe(&v_path, &emb.text_file)?;
        tracing::info!(
            model = %emb.manifest.name,
            provider = emb.provider,
            text_graph = %emb.text_file.display(),
            "model loaded from {}",
            emb.dir.display()
        );
        Ok(emb)
    }

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

    /// CLIP preprocessing of one image into `out` (3 x size x size, CHW, normalised).
    pub fn preprocess(&self, img: &RgbImage, out: &mut [f32]) -> Result<(), EmbedError> {
        let size = self.image_size();
        if img.width == 0 || img.height == 0 || img.data.len() != img.width as usize * img.height as usize * 3 {
            return Err(EmbedError::BadInput(format!(
                "image of {}x{} with {} bytes is not a packed RGB image",
                img.width,
                img.height,
                img.data.len()
            )));
        }
        let resized = if self.manifest.image.resize == "squash" {
            preprocess::resize_squash(&img.data, img.width, img.height, size, self.filter)
        } else {
            preprocess::resize_center_crop(&img.data, img.width, img.height, size, self.filter)
        };
        preprocess::normalise_chw(&resized, size, self.manifest.image.mean, self.manifest.image.std, out);
        Ok(())
    }

    /// Number of floats of one preprocessed image.
    pub fn pixels_per_image(&self) -> usize {
        let s = self.image_size() as usize;
        3 * s * s
    }

    /// Embeds images of any size (preprocessed here).
    pub fn embed_images(&self, images: &[RgbImage]) -> Result<Embeddings, EmbedError> {
        let per = self.pixels_per_image();
        let mut pixels = vec![0f32; per * images.len()];
        for (img, out) in images.iter().zip(pixels.chunks_exact_mut(per)) {
            self.preprocess(img, out)?;
        }
        self.embed_pixels(&pixels)
    }

    /// The batch size the image graph is fixed at (work is split into such batches).
    pub fn image_batch(&self) -> Option<usize> {
        self.image_batch
    }

    /// The batch size the text graph is fixed at.
    pub fn text_batch(&self) -> Option<usize> {
        self.text.batch
    }

    /// Embeds already preprocessed images (N x 3 x size x size, concatenated), in
    /// batches of the graph's fixed size when it has one.
    pub fn embed_pixels(&self, pixels: &[f32]) -> Result<Embeddings, EmbedError> {
        let per = self.pixels_per_image();
        if pixels.is_empty() || !pixels.len().is_multiple_of(per) {
            return Err(EmbedError::BadInput(format!(
                "pixel buffer of {} floats is not a whole number of {per}-float images",
                pixels.len()
            )));
        }
        let Some(b) = self.image_batch else {
            return self.run_visual(pixels, pixels.len() / per);
        };
        let mut out = Embeddings {
            dim: self.dim(),
            data: Vec::with_capacity(pixels.len() / per * self.dim()),
        };
        let mut padded = Vec::new();
        for chunk in pixels.chunks(b * per) {
            let n = chunk.len() / per;
            let rows = if n == b {
                chunk
            } else {
                // The last, short batch is padded with blank images whose rows are dropped.
                padded.clear();
                padded.extend_from_slice(chunk);
                padded.resize(b * per, 0.0);
                &padded
            };
            let e = self.run_visual(rows, b)?;
            out.data.extend_from_slice(&e.data[..n * self.dim()]);
        }
        Ok(out)
    }

    /// One run of the image graph on `n` images.
    fn run_visual(&self, pixels: &[f32], n: usize) -> Result<Embeddings, EmbedError> {
        let s = self.image_size() as usize;
        let io = &self.manifest.io;
        let err = |e: ort::Error| EmbedError::Inference {
            what: "preparing the image batch",
            reason: e.to_string(),
        };
        let tensor = TensorRef::from_array_view(([n, 3, s, s], pixels)).map_err(err)?;
        let mut inputs: Vec<(std::borrow::Cow<'_, str>, ort::session::SessionInputValue<'_>)> =
            vec![(io.image_input.as_str().into(), tensor.into())];
        // A combined graph also wants text: the shortest sequence the model knows.
        let dummy = self
            .manifest
            .io
            .combined
            .then(|| self.token_batch(&[self.dummy_tokens()], 1));
        if let Some(batch) = &dummy {
            inputs.extend(batch.inputs(io).map_err(err)?);
        }
        let mut session = self.visual.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session.run(inputs).map_err(|e| EmbedError::Inference {
            what: "running the image tower",
            reason: e.to_string(),
        })?;
        extract(&outputs, &io.image_output, n, n, self.dim(), "the image tower")
    }

    /// Token ids of `text` (start and end included, truncated to the context length).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        self.tokenizer.ids(text)
    }

    /// The text inputs a combined graph's image runs are fed, as owned tensors (for an
    /// IO binding): (input name, value).
    fn dummy_text_tensors(&self) -> Result<Vec<(String, ort::value::DynValue)>, ort::Error> {
        let batch = self.token_batch(&[self.dummy_tokens()], 1);
        let io = &self.manifest.io;
        let shape = [batch.n, batch.len];
        let names = text_inputs(io);
        let mut out = Vec::new();
        for (name, values) in names.iter().zip([&batch.ids, &batch.mask]) {
            let v: ort::value::DynValue = if batch.i32 {
                let v32: Vec<i32> = values.iter().map(|&x| x as i32).collect();
                ort::value::Tensor::from_array((shape, v32))?.into_dyn()
            } else {
                ort::value::Tensor::from_array((shape, values.clone()))?.into_dyn()
            };
            out.push((name.to_string(), v));
        }
        Ok(out)
    }

    /// The smallest valid token sequence (what a combined graph's text side is fed when
    /// only images are wanted).
    fn dummy_tokens(&self) -> Vec<u32> {
        let t = &self.manifest.text;
        t.start_id.into_iter().chain([t.end_id]).collect()
    }

    /// Embeds sentences. Each batch runs at its longest true token length when the graph
    /// allows (CLIP pools at the end token behind a causal mask, so shorter rows padded
    /// after their end token are unaffected), else padded to the context length.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Embeddings, EmbedError> {
        let ids = texts.iter().map(|t| self.tokenize(t)).collect::<Result<Vec<_>, _>>()?;
        self.embed_token_ids(&ids, None)
    }

    /// [`Self::embed_texts`] for an async caller (the server's searches): the sentences
    /// join the queue of concurrent text runs, and the caller waits for its rows without
    /// a thread of its own. (A graph of a fixed batch size, or more rows than one
    /// combined run takes, runs as one call on a blocking thread.)
    pub async fn embed_texts_async(self: &Arc<Self>, texts: &[&str]) -> Result<Embeddings, EmbedError> {
        let ids = texts.iter().map(|t| self.tokenize(t)).collect::<Result<Vec<_>, _>>()?;
        let panicked = |detail: String| EmbedError::Inference {
            what: "running the text tower",
            reason: format!("the run panicked{detail}"),
        };
        if self.text.batch.is_some() || ids.is_empty() || ids.len() > combine::MAX_ROWS || ids.iter().any(Vec::is_empty)
        {
            let m = self.clone();
            return tokio::task::spawn_blocking(move || m.embed_token_ids(&ids, None))
                .await
                .map_err(|e| panicked(format!(": {e}")))?;
        }
        let n = ids.len();
        // The queue's runner: a thread of its own started by the caller (the searches'
        // threads run at normal priority; a pool thread may have been started by the
        // niced indexing work), kept while queries keep coming.
        let start = || {
            let m = self.clone();
            let spawned = std::thread::Builder::new()
                .name("vidseek-text".into())
                .spawn(move || m.run_text_queue(TEXT_RUNNER_LINGER));
            if let Err(e) = spawned {
                tracing::warn!("cannot start a thread for the text tower ({e}); running it on the blocking pool");
                let m = self.clone();
                tokio::task::spawn_blocking(move || m.run_text_queue(Duration::ZERO));
            }
        };
        self.text_queue
            .run_async(ids, n, start)
            .await
            .unwrap_or_else(|| Err(panicked(" (see the log)".into())))
    }

    /// Runs the queue of concurrent text runs until it has been empty for `linger`.
    fn run_text_queue(&self, linger: Duration) {
        self.text_queue.drain(|jobs| self.run_combined(jobs), linger);
    }

    /// Embeds token-id rows, padded with the manifest's pad id to `pad_to` (or to the
    /// longest row, or to the length the graph or the manifest fixes), in batches of the
    /// graph's fixed size when it has one.
    pub fn embed_token_ids(&self, rows: &[Vec<u32>], pad_to: Option<usize>) -> Result<Embeddings, EmbedError> {
        if rows.is_empty() || rows.iter().any(|r| r.is_empty()) {
            return Err(EmbedError::BadInput("no token ids to embed".into()));
        }
        let Some(b) = self.text.batch else {
            if pad_to.is_none() && rows.len() <= combine::MAX_ROWS {
                // Queries of concurrent requests share a run.
                return self
                    .text_queue
                    .run(rows.to_vec(), rows.len(), |jobs| self.run_combined(jobs));
            }
            return self.run_textual(rows, pad_to, rows.len());
        };
        let mut out = Embeddings {
            dim: self.dim(),
            data: Vec::with_capacity(rows.len() * self.dim()),
        };
        for chunk in rows.chunks(b) {
            let mut batch = chunk.to_vec();
            // Pad a short batch with copies of its first row; their vectors are dropped.
            batch.resize(b, chunk[0].clone());
            let e = self.run_textual(&batch, pad_to, b)?;
            out.data.extend_from_slice(&e.data[..chunk.len() * self.dim()]);
        }
        Ok(out)
    }

    /// One run of the text graph on several callers' rows (each padded to the longest
    /// row of all, as within one call), split back per caller. Should the run fail, each
    /// job runs alone so that a failure is reported to the caller it belongs to.
    fn run_combined(&self, jobs: Vec<Vec<Vec<u32>>>) -> Vec<Result<Embeddings, EmbedError>> {
        if jobs.len() > 1 {
            let all: Vec<Vec<u32>> = jobs.iter().flatten().cloned().collect();
            if let Ok(e) = self.run_textual(&all, None, all.len()) {
                let dim = self.dim();
                let mut at = 0;
                return jobs
                    .iter()
                    .map(|j| {
                        let data = e.data[at * dim..(at + j.len()) * dim].to_vec();
                        at += j.len();
                        Ok(Embeddings { dim, data })
                    })
                    .collect();
            }
        }
        jobs.iter().map(|j| self.run_textual(j, None, j.len())).collect()
    }

    /// Ids and mask of `rows` padded to one length: the graph's fixed length, else
    /// `pad_to` or the longest row.
    fn token_batch(&self, rows: &[Vec<u32>], pad_to: usize) -> TokenBatch {
        let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
        let len = self.text.fixed_len.unwrap_or(pad_to.max(longest));
        let n = rows.len();
        let pad = self.manifest.text.pad_id as i64;
        let mut ids = vec![pad; n * len];
        let mut mask = vec![0i64; n * len];
        for (i, r) in rows.iter().enumerate() {
            for (j, &t) in r.iter().enumerate().take(len) {
                ids[i * len + j] = t as i64;
                mask[i * len + j] = 1;
            }
        }
        TokenBatch {
            n,
            len,
            ids,
            mask,
            i32: self.text.ids_i32,
        }
    }

    /// One run of the text graph on `n` rows.
    fn run_textual(&self, rows: &[Vec<u32>], pad_to: Option<usize>, n: usize) -> Result<Embeddings, EmbedError> {
        let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
        let batch = self.token_batch(rows, pad_to.unwrap_or(longest));
        if longest > batch.len || batch.len > self.manifest.text.context_length {
            return Err(EmbedError::BadInput(format!(
                "{longest} tokens do not fit the context length {}",
                self.manifest.text.context_length
            )));
        }
        let io = &self.manifest.io;
        let err = |e: ort::Error| EmbedError::Inference {
            what: "preparing the token batch",
            reason: e.to_string(),
        };
        let mut inputs = batch.inputs(io).map_err(err)?;
        // A combined graph also wants an image: one blank one.
        let blank = io.combined.then(|| vec![0f32; self.pixels_per_image()]);
        if let Some(px) = &blank {
            let s = self.image_size() as usize;
            inputs.push((
                io.image_input.as_str().into(),
                TensorRef::from_array_view(([1, 3, s, s], &px[..])).map_err(err)?.into(),
            ));
        }
        let mut session = self.textual.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session.run(inputs).map_err(|e| EmbedError::Inference {
            what: "running the text tower",
            reason: e.to_string(),
        })?;
        extract(&outputs, &io.text_output, n, n, self.dim(), "the text tower")
    }

    /// A run of each tower before the first frame is embedded (at batch 2 where the
    /// batch is dynamic, so a graph that only works at batch 1 is caught now), checking
    /// the output size against the manifest.
    fn probe(&self, visual: &Path, textual: &Path) -> Result<(), EmbedError> {
        let ids = self.tokenize("a photo")?;
        let rows = vec![ids.clone(), self.dummy_tokens()];
        let n = if self.text.batch.is_some() { 1 } else { 2 };
        self.embed_token_ids(&rows[..n], None).map_err(|e| EmbedError::Graph {
            path: textual.to_path_buf(),
            reason: format!("a test run of the text tower failed: {e}"),
        })?;
        let n = if self.image_batch.is_some() { 1 } else { 2 };
        let pixels = vec![0f32; n * self.pixels_per_image()];
        self.embed_pixels(&pixels).map_err(|e| EmbedError::Graph {
            path: visual.to_path_buf(),
            reason: format!("a test run of the image tower failed: {e}"),
        })?;
        Ok(())
    }
}

/// A padded batch of token ids with its attention mask.
struct TokenBatch {
    n: usize,
    len: usize,
    ids: Vec<i64>,
    mask: Vec<i64>,
    i32: bool,
}

impl TokenBatch {
    /// The graph inputs: ids, and the mask when the graph takes one, in the graph's
    /// integer type.
    fn inputs<'a>(
        &'a self,
        io: &'a Io,
    ) -> Result<Vec<(std::borrow::Cow<'a, str>, ort::session::SessionInputValue<'a>)>, ort::Error> {
        let shape = [self.n, self.len];
        let mut out: Vec<(std::borrow::Cow<'a, str>, ort::session::SessionInputValue<'a>)> = Vec::new();
        let mut push = |name: &'a str, v: &'a [i64]| -> Result<(), ort::Error> {
            let value: ort::session::SessionInputValue<'a> = if self.i32 {
                let v32: Vec<i32> = v.iter().map(|&x| x as i32).collect();
                ort::value::Tensor::from_array((shape, v32))?.into()
            } else {
                TensorRef::from_array_view((shape, v))?.into()
            };
            out.push((name.into(), value));
            Ok(())
        };
        push(io.text_input.as_str(), &self.ids)?;
        if let Some(m) = &io.text_mask {
            push(m.as_str(), &self.mask)?;
        }
        Ok(out)
    }
}

/// The image and text graphs the engine runs: the half ones with `fp16`; on the CPU the
/// int8 text tower when asked for (`text_int8`), else the fused one when the package has
/// it; else the plain graphs.
fn graph_files(m: &Manifest, fp16: bool, cpu: bool, text_int8: bool) -> (&str, &str) {
    match (&m.fp16, fp16) {
        (Some(h), true) => (&h.visual, &h.textual),
        _ => {
            let f = &m.files;
            let text = match (cpu, text_int8) {
                (true, true) => f.textual_int8.as_deref(),
                (true, false) => f.textual_fused.as_deref(),
                (false, _) => None,
            };
            (&f.visual, text.unwrap_or(&f.textual))
        }
    }
}

type Sessions = (Session, Session, bool);

fn open_sessions(
    dir: &Path,
    m: &Manifest,
    rt: &Runtime,
    opts: &EmbedOptions,
    cuda: bool,
) -> Result<Sessions, EmbedError> {
    // Half-precision graphs only pay off on the GPU; the CPU runs the fp32 ones.
    let fp16 = cuda && m.fp16.is_some();
    let (v, t) = graph_files(m, fp16, !cuda, opts.text_int8);
    if opts.text_int8 && !cuda && m.files.textual_int8.is_none() {
        return Err(EmbedError::Manifest {
            path: dir.join(MANIFEST_FILE),
            reason: "--text-int8 asks for the int8 text tower but the package has none (files.textual_int8); \
                     make it with `python3 models/quantize_text.py DIR`, or search without --text-int8"
                .into(),
        });
    }
    if fp16 {
        for f in [v, t] {
            if !dir.join(f).is_file() {
                return Err(EmbedError::FileMissing {
                    path: dir.join(f),
                    role: "fp16 graph",
                    manifest: dir.join(MANIFEST_FILE),
                });
            }
        }
    }
    // Image batches come while a decoder shares the cores: its threads sleep when idle.
    // A lone query is a short run where latency counts: ONNX Runtime's default spin
    // (ViT-B/32 int8 text tower, 2 cores: 3.6 against 7.4 ms). Under many concurrent
    // queries the spinning threads take the cores the other searches need (the serve
    // bench, 50 connections: 761 against 1,517 requests/s): then they sleep.
    // A server indexes in the background: the image tower's pool threads (started with
    // its session) run below the searches' priority, as the job threads do.
    let before = opts.concurrent_queries.then(crate::util::priority::own_threads);
    let visual = open_session(&dir.join(v), rt, opts, cuda, false)?;
    for tid in before.iter().flat_map(|b| {
        crate::util::priority::own_threads()
            .into_iter()
            .filter(|t| !b.contains(t))
    }) {
        crate::util::priority::lower_thread_priority(tid, crate::util::priority::BACKGROUND_NICE);
    }
    let textual = open_session(&dir.join(t), rt, opts, cuda, !opts.concurrent_queries)?;
    Ok((visual, textual, fp16))
}

fn open_session(path: &Path, rt: &Runtime, opts: &EmbedOptions, cuda: bool, spin: bool) -> Result<Session, EmbedError> {
    let fail = |reason: String| EmbedError::Graph {
        path: path.to_path_buf(),
        reason,
    };
    let mut b = Session::builder(&rt.environment)
        .map_err(|e| fail(e.to_string()))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| fail(e.to_string()))?;
    if let Some(n) = opts.intra_threads {
        b = b.with_intra_threads(n).map_err(|e| fail(e.to_string()))?;
    }
    if !cuda && !spin {
        // Idle intra-op threads sleep instead of spinning: while indexing, the decoder
        // threads need those cores between two batches.
        b = b.with_intra_op_spinning(false).map_err(|e| fail(e.to_string()))?;
    }
    if cuda {
        b = b
            .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
            .map_err(|e| EmbedError::Cuda { reason: e.to_string() })?;
    }
    b.commit_from_file(path).map_err(|e| {
        if cuda {
            EmbedError::Cuda {
                reason: format!("{}: {e}", path.display()),
            }
        } else {
            fail(format!(
                "ONNX Runtime cannot load this graph ({e}); the file is corrupt or not ONNX: \
                 re-export it (models/export_clip.py) or restore the package"
            ))
        }
    })
}

fn tensor_shape(t: &ValueType) -> Option<(TensorElementType, Vec<i64>)> {
    match t {
        ValueType::Tensor { ty, shape, .. } => Some((*ty, shape.iter().copied().collect())),
        _ => None,
    }
}

fn find_tensor(
    list: &[ort::value::Outlet],
    name: &str,
    what: &str,
    path: &Path,
) -> Result<(TensorElementType, Vec<i64>), EmbedError> {
    let names: Vec<&str> = list.iter().map(|o| o.name()).collect();
    let o = list
        .iter()
        .find(|o| o.name() == name)
        .ok_or_else(|| EmbedError::Graph {
            path: path.to_path_buf(),
            reason: format!("has no {what} named {name:?} (it has {names:?}); set the name in model.json \"io\""),
        })?;
    tensor_shape(o.dtype()).ok_or_else(|| EmbedError::Graph {
        path: path.to_path_buf(),
        reason: format!("{what} {name:?} is not a tensor"),
    })
}

fn check_output_dim(shape: &[i64], m: &Manifest, path: &Path, name: &str) -> Result<(), EmbedError> {
    if shape.len() != 2 {
        return Err(EmbedError::Graph {
            path: path.to_path_buf(),
            reason: format!(
                "output {name:?} has shape {shape:?}; expected [batch, {}]",
                m.embedding_dim
            ),
        });
    }
    if shape[1] >= 0 && shape[1] as usize != m.embedding_dim {
        return Err(EmbedError::Graph {
            path: path.to_path_buf(),
            reason: format!(
                "output {name:?} has {} dimensions but model.json says embedding_dim {}: fix the manifest",
                shape[1], m.embedding_dim
            ),
        });
    }
    Ok(())
}

fn unexpected_inputs(session: &Session, known: &[&str], path: &Path) -> Result<(), EmbedError> {
    let extra: Vec<&str> = session
        .inputs()
        .iter()
        .map(|i| i.name())
        .filter(|n| !known.contains(n))
        .collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(EmbedError::Graph {
            path: path.to_path_buf(),
            reason: format!("has inputs the manifest does not describe: {extra:?} (see model.json \"io\")"),
        })
    }
}

/// The fixed batch size of a graph input's first axis, checked against the manifest's:
/// a graph fixed at a batch size is always fed batches of exactly that size.
fn fixed_batch(
    shape: &[i64],
    declared: Option<usize>,
    path: &Path,
    input: &str,
    key: &str,
) -> Result<Option<usize>, EmbedError> {
    let graph = shape.first().copied().filter(|d| *d > 0).map(|d| d as usize);
    match (graph, declared) {
        (Some(g), Some(d)) if g != d => Err(EmbedError::Graph {
            path: path.to_path_buf(),
            reason: format!("input {input:?} is fixed at batch {g} but model.json says {key} {d}: set {key} to {g}"),
        }),
        (Some(g), _) => Ok(Some(g)),
        (None, d) => Ok(d),
    }
}

/// The names of the text inputs a graph is fed (ids, and the mask when there is one).
fn text_inputs(io: &Io) -> Vec<&str> {
    std::iter::once(io.text_input.as_str())
        .chain(io.text_mask.as_deref())
        .collect()
}

/// Checks the image graph; returns its fixed batch size, if any.
fn check_visual(s: &Session, path: &Path, m: &Manifest) -> Result<Option<usize>, EmbedError> {
    let io = &m.io;
    let (ty, shape) = find_tensor(s.inputs(), &io.image_input, "input", path)?;
    let size = m.image.size as i64;
    let dims_ok = shape.len() == 4
        && (shape[1] == 3 || shape[1] < 0)
        && (shape[2] == size || shape[2] < 0)
        && (shape[3] == size || shape[3] < 0);
    if !dims_ok {
        return Err(EmbedError::Graph {
            path: path.to_path_buf(),
            reason: format!(
                "input {:?} has shape {shape:?} but model.json says image.size {size}: expected [batch, 3, {size}, {size}]",
                io.image_input
            ),
        });
    }
    if ty != TensorElementType::Float32 {
        return Err(EmbedError::Graph {
            path: path.to_path_buf(),
            reason: format!(
                "input {:?} is {ty:?}; vidseek feeds float32 (export half graphs with float32 inputs and outputs)",
                io.image_input
            ),
        });
    }
    let batch = fixed_batch(&shape, m.image.batch, path, &io.image_input, "image.batch")?;
    let (_, out) = find_tensor(s.outputs(), &io.image_output, "output", path)?;
    check_output_dim(&out, m, path, &io.image_output)?;
    let mut known = vec![io.image_input.as_str()];
    if io.combined {
        known.extend(text_inputs(io));
    }
    unexpected_inputs(s, &known, path)?;
    Ok(batch)
}

/// Checks the text graph and reads what it takes.
fn check_textual(s: &Session, path: &Path, m: &Manifest) -> Result<TextGraph, EmbedError> {
    let io = &m.io;
    let (ty, shape) = find_tensor(s.inputs(), &io.text_input, "input", path)?;
    let ids_i32 = match ty {
        TensorElementType::Int64 => false,
        TensorElementType::Int32 => true,
        other => {
            return Err(EmbedError::Graph {
                path: path.to_path_buf(),
                reason: format!(
                    "input {:?} is {other:?}; token ids must be int64 or int32",
                    io.text_input
                ),
            });
        }
    };
    if shape.len() != 2 {
        return Err(EmbedError::Graph {
            path: path.to_path_buf(),
            reason: format!(
                "input {:?} has shape {shape:?}; expected [batch, sequence]",
                io.text_input
            ),
        });
    }
    let fixed = (shape[1] >= 0).then_some(shape[1] as usize);
    match (fixed, m.text.dynamic_length) {
        (Some(n), true) => {
            return Err(EmbedError::Graph {
                path: path.to_path_buf(),
                reason: format!(
                    "the sequence length is fixed at {n} but model.json says text.dynamic_length true: set it to false"
                ),
            });
        }
        (Some(n), false) if n != m.text.context_length => {
            return Err(EmbedError::Graph {
                path: path.to_path_buf(),
                reason: format!(
                    "the sequence length is fixed at {n} but model.json says text.context_length {}",
                    m.text.context_length
                ),
            });
        }
        _ => {}
    }
    let batch = fixed_batch(&shape, m.text.batch, path, &io.text_input, "text.batch")?;
    let mut known = text_inputs(io);
    if let Some(mask) = &io.text_mask {
        let (mty, _) = find_tensor(s.inputs(), mask, "input", path)?;
        if mty != ty {
            return Err(EmbedError::Graph {
                path: path.to_path_buf(),
                reason: format!("the mask {mask:?} is {mty:?} but the ids are {ty:?}; vidseek feeds both alike"),
            });
        }
    }
    if io.combined {
        known.push(io.image_input.as_str());
    }
    let (_, out) = find_tensor(s.outputs(), &io.text_output, "output", path)?;
    check_output_dim(&out, m, path, &io.text_output)?;
    unexpected_inputs(s, &known, path)?;
    // A graph with a fixed length is always fed that length; so is a tower that must
    // see the padding (pad_to_context), and a graph that cannot take shorter input.
    let fixed_len = if !m.text.dynamic_length || m.text.pad_to_context {
        Some(fixed.unwrap_or(m.text.context_length))
    } else {
        None
    };
    Ok(TextGraph {
        ids_i32,
        fixed_len,
        batch,
    })
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

/// One input or output of a graph, as ONNX Runtime reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TensorInfo {
    pub name: String,
    /// "float32", "float16", "int64", "int32", ...
    pub dtype: String,
    /// -1 for a symbolic dimension.
    pub shape: Vec<i64>,
}

/// The inputs and outputs of an ONNX graph.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GraphIo {
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
}

/// Opens a graph on the CPU only to list what it takes and returns.
pub fn inspect(path: &Path, ort_lib: Option<&Path>) -> Result<GraphIo, EmbedError> {
    let rt = runtime::init(ort_lib)?;
    let opts = EmbedOptions {
        intra_threads: Some(1),
        ..EmbedOptions::default()
    };
    let s = open_session(path, rt, &opts, false, false)?;
    let info = |list: &[ort::value::Outlet]| {
        list.iter()
            .map(|o| {
                let (ty, shape) = tensor_shape(o.dtype()).unwrap_or((TensorElementType::Undefined, Vec::new()));
                TensorInfo {
                    name: o.name().to_string(),
                    dtype: dtype_name(ty).to_string(),
                    shape,
                }
            })
            .collect()
    };
    Ok(GraphIo {
        inputs: info(s.inputs()),
        outputs: info(s.outputs()),
    })
}

fn dtype_name(t: TensorElementType) -> &'static str {
    match t {
        TensorElementType::Float32 => "float32",
        TensorElementType::Float16 => "float16",
        TensorElementType::Float64 => "float64",
        TensorElementType::Int64 => "int64",
        TensorElementType::Int32 => "int32",
        TensorElementType::Uint8 => "uint8",
        TensorElementType::Bool => "bool",
        _ => "other",
    }
}
