//! Listing what an ONNX graph takes and returns (for `vidseek model import` and
//! `model inspect`), without a manifest to check it against.

use std::path::Path;

use ort::value::TensorElementType;

use super::check::tensor_shape;
use super::load::open_session;
use super::{EmbedError, EmbedOptions, runtime};

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
