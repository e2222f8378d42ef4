//! Loading a package: the graph files chosen for the provider (half, fused, int8 or
//! plain), their ONNX Runtime sessions (CUDA, else the CPU; thread spinning and
//! priority), the checks of both graphs against the manifest, and a test run of each
//! tower before anything is embedded. What a graph must look like is `check`'s.

use std::path::Path;
use std::sync::Mutex;

use ort::ep::ExecutionProvider;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use super::check::{check_textual, check_visual};
use super::labels::{read_labels, read_templates};
use super::{
    Device, EmbedError, EmbedOptions, Embedder, Filter, MANIFEST_FILE, Manifest, Runtime, combine, runtime, text,
};

impl Embedder {
    /// Loads and validates the package in `dir`; every failure names the file and the fix.
    pub fn load(dir: &Path, opts: &EmbedOptions) -> Result<Self, EmbedError> {
        let manifest = Manifest::load(dir)?;
        let tok_path = dir.join(&manifest.files.tokenizer);
        // The tokenizer (a large JSON file: ~55 ms for CLIP's) is read on a thread of
        // its own while ONNX Runtime starts and the sessions open: a process that loads
        // a model (`vidseek index`) starts work that much sooner on two cores.
        let (tokenizer, sessions) = std::thread::scope(|s| {
            let tokenizer = std::thread::Builder::new()
                .name("vidseek-tokenizer".into())
                .spawn_scoped(s, || text::TextTokenizer::load(&tok_path, &manifest.text))
                .expect("spawn tokenizer thread");
            let sessions =
                runtime::init(opts.ort_lib.as_deref()).and_then(|rt| open_on_device(dir, &manifest, rt, opts));
            (tokenizer.join().expect("the tokenizer thread panicked"), sessions)
        });
        let tokenizer = tokenizer?;
        let Sessions {
            visual,
            textual,
            fp16,
            provider,
        } = sessions?;
        let (v_path, t_path) = {
            let (v, t) = graph_files(&manifest, fp16, provider == "CPU", opts.text_int8);
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

/// Both towers' sessions on one execution provider.
struct Sessions {
    visual: Session,
    textual: Session,
    /// The half-precision graphs are the ones open (CUDA with an fp16 package).
    fp16: bool,
    /// The execution provider: "CUDA" or "CPU".
    provider: &'static str,
}

/// The sessions on the device `opts` asks for: the CPU; CUDA or an error; or CUDA when
/// the library and the machine support it, else the CPU (logged).
fn open_on_device(dir: &Path, m: &Manifest, rt: &Runtime, opts: &EmbedOptions) -> Result<Sessions, EmbedError> {
    match opts.device {
        Device::Cpu => open_sessions(dir, m, rt, opts, false),
        Device::Cuda => {
            if !ort::ep::CUDA::is_available().unwrap_or(false) {
                return Err(EmbedError::Cuda {
                    reason: format!(
                        "the ONNX Runtime library {} was built without CUDA; install the \
                         onnxruntime-gpu 1.31 wheel's libraries (docs/benchmarks.md, GPU)",
                        rt.library.display()
                    ),
                });
            }
            open_sessions(dir, m, rt, opts, true)
        }
        Device::Auto => {
            let cuda = if ort::ep::CUDA::is_available().unwrap_or(false) {
                match open_sessions(dir, m, rt, opts, true) {
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
                Some(s) => Ok(s),
                None => open_sessions(dir, m, rt, opts, false),
            }
        }
    }
}

/// Both towers' sessions on CUDA (`cuda`) or the CPU.
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
    Ok(Sessions {
        visual,
        textual,
        fp16,
        provider: if cuda { "CUDA" } else { "CPU" },
    })
}

pub(super) fn open_session(
    path: &Path,
    rt: &Runtime,
    opts: &EmbedOptions,
    cuda: bool,
    spin: bool,
) -> Result<Session, EmbedError> {
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
