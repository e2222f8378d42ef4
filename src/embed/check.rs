//! The checks of a graph's inputs and outputs against the manifest (names, element
//! types, shapes, fixed batch sizes and sequence lengths), and what the text graph
//! takes, read from the graph itself. Run once, at load; nothing here runs a graph.

use std::path::Path;

use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

use super::{EmbedError, Io, Manifest};

/// What the text graph takes, read from the graph itself.
#[derive(Clone, Copy, Debug)]
pub(super) struct TextGraph {
    /// Token ids (and mask) are int32 rather than int64.
    pub(super) ids_i32: bool,
    /// The sequence length every run uses (a fixed graph axis, or `pad_to_context`).
    pub(super) fixed_len: Option<usize>,
    /// The batch size the graph is fixed at.
    pub(super) batch: Option<usize>,
}

pub(super) fn tensor_shape(t: &ValueType) -> Option<(TensorElementType, Vec<i64>)> {
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
pub(super) fn text_inputs(io: &Io) -> Vec<&str> {
    std::iter::once(io.text_input.as_str())
        .chain(io.text_mask.as_deref())
        .collect()
}

/// Checks the image graph; returns its fixed batch size, if any.
pub(super) fn check_visual(s: &Session, path: &Path, m: &Manifest) -> Result<Option<usize>, EmbedError> {
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
pub(super) fn check_textual(s: &Session, path: &Path, m: &Manifest) -> Result<TextGraph, EmbedError> {
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
