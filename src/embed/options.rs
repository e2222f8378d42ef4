//! How to start the runtime: where inference runs and how the sessions' threads behave.

use std::path::PathBuf;

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
