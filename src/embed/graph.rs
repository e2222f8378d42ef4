//! A plain ONNX graph for the other leaves that run models (`ocr`): opened through the
//! process's one ONNX Runtime (`runtime`), on the provider asked for, fed one float32
//! tensor and read back as one float32 tensor. Knows nothing of what the graph computes;
//! the caller owns pre- and post-processing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::ep::ExecutionProvider;
use ort::session::Session;
use ort::value::TensorRef;

use super::check::tensor_shape;
use super::load::open_session;
use super::{Device, EmbedError, EmbedOptions, runtime};

/// One loaded graph with a single float32 input and a first float32 output.
pub struct Graph {
    path: PathBuf,
    session: Mutex<Session>,
    input: String,
    output: String,
    /// The input's shape as the graph declares it (-1: symbolic).
    input_shape: Vec<i64>,
    provider: &'static str,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("path", &self.path)
            .field("provider", &self.provider)
            .finish()
    }
}

/// A float32 tensor read back from a run: its shape and values.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Graph {
    /// Opens `path` on the device `opts` asks for (CUDA falls back to the CPU under
    /// `auto`, as the CLIP towers do); its intra-op threads sleep when idle.
    pub fn open(path: &Path, opts: &EmbedOptions) -> Result<Self, EmbedError> {
        let rt = runtime::init(opts.ort_lib.as_deref())?;
        let cuda_ok = || ort::ep::CUDA::is_available().unwrap_or(false);
        let (session, provider) = match opts.device {
            Device::Cpu => (open_session(path, rt, opts, false, false)?, "CPU"),
            Device::Cuda => (open_session(path, rt, opts, true, false)?, "CUDA"),
            Device::Auto if cuda_ok() => match open_session(path, rt, opts, true, false) {
                Ok(s) => (s, "CUDA"),
                Err(e) => {
                    tracing::warn!("CUDA is not usable for {}, running it on the CPU: {e}", path.display());
                    (open_session(path, rt, opts, false, false)?, "CPU")
                }
            },
            Device::Auto => (open_session(path, rt, opts, false, false)?, "CPU"),
        };
        let bad = |reason: String| EmbedError::Graph {
            path: path.to_path_buf(),
            reason,
        };
        let (input, input_shape) = match session.inputs() {
            [one] => {
                let shape = tensor_shape(one.dtype()).map(|(_, s)| s).unwrap_or_default();
                (one.name().to_string(), shape)
            }
            other => return Err(bad(format!("expected one input, the graph has {}", other.len()))),
        };
        let output = session
            .outputs()
            .first()
            .map(|o| o.name().to_string())
            .ok_or_else(|| bad("the graph has no output".into()))?;
        Ok(Self {
            path: path.to_path_buf(),
            session: Mutex::new(session),
            input,
            output,
            input_shape,
            provider,
        })
    }

    /// The graph file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// "CUDA" or "CPU".
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// The input's declared shape (-1 for a symbolic dimension).
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// A string the graph carries in its metadata (`key`), when it has one.
    pub fn metadata(&self, key: &str) -> Option<String> {
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        session.metadata().ok().and_then(|m| m.custom(key))
    }

    /// One run on `data` shaped `shape`; the first output.
    pub fn run(&self, data: &[f32], shape: &[usize]) -> Result<Tensor, EmbedError> {
        let fail = |e: ort::Error| EmbedError::Inference {
            what: "running an ONNX graph",
            reason: format!("{}: {e}", self.path.display()),
        };
        let tensor = TensorRef::from_array_view((shape.to_vec(), data)).map_err(fail)?;
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session.run(vec![(self.input.as_str(), tensor)]).map_err(fail)?;
        let value = outputs.get(&self.output).ok_or_else(|| EmbedError::Inference {
            what: "running an ONNX graph",
            reason: format!("{}: no output named {:?}", self.path.display(), self.output),
        })?;
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(fail)?;
        Ok(Tensor {
            shape: shape.iter().map(|&d| d.max(0) as usize).collect(),
            data: data.to_vec(),
        })
    }
}
