//! What both layouts' conversions read: JSON configs, the graphs' inputs and outputs
//! (through `embed::inspect`), their external-data files, the tokenizer's special ids,
//! and the settings whose spelling both layouts share.

use std::path::Path;

use serde_json::Value;

use super::HubError;
use crate::embed::{self, Files, Io, Link, Scoring, TextClean, TokenizerFacts};

pub(super) fn read_json(path: &Path) -> Result<Value, HubError> {
    let text = std::fs::read_to_string(path).map_err(|e| HubError::Config {
        path: path.to_path_buf(),
        reason: format!("cannot read it ({e})"),
    })?;
    serde_json::from_str(&text).map_err(|e| HubError::Config {
        path: path.to_path_buf(),
        reason: format!("not valid JSON ({e})"),
    })
}

pub(super) fn f32x3(v: Option<&Value>, path: &Path, key: &str) -> Result<[f32; 3], HubError> {
    let arr: Vec<f32> = v
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_f64().map(|f| f as f32)).collect())
        .unwrap_or_default();
    arr.try_into().map_err(|_| HubError::Config {
        path: path.to_path_buf(),
        reason: format!("{key:?} must be three numbers"),
    })
}

/// Integer from a number, the first element of an array, or a named field.
pub(super) fn int_of(v: &Value, keys: &[&str]) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_array().and_then(|a| a.first()).and_then(Value::as_u64))
        .or_else(|| keys.iter().find_map(|k| v.get(*k).and_then(Value::as_u64)))
}

/// What the two graphs take and return.
pub(super) struct Graphs {
    pub(super) io: Io,
    pub(super) dim: Option<usize>,
    /// Fixed sequence length of the text graph.
    pub(super) text_len: Option<usize>,
    pub(super) image_batch: Option<usize>,
    pub(super) text_batch: Option<usize>,
}

fn fixed(d: Option<&i64>) -> Option<usize> {
    d.copied().filter(|d| *d > 0).map(|d| d as usize)
}

pub(super) fn inspect_graphs(visual: &Path, textual: &Path, ort_lib: Option<&Path>) -> Result<Graphs, HubError> {
    let v = embed::inspect(visual, ort_lib)?;
    let t = if textual == visual {
        v.clone()
    } else {
        embed::inspect(textual, ort_lib)?
    };
    let bad = |path: &Path, reason: String| HubError::Config {
        path: path.to_path_buf(),
        reason,
    };
    let names = |g: &embed::GraphIo| {
        g.inputs
            .iter()
            .map(|i| format!("{} {} {:?}", i.name, i.dtype, i.shape))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let image_input = v
        .inputs
        .iter()
        .find(|i| i.dtype == "float32" && i.shape.len() == 4)
        .ok_or_else(|| {
            bad(
                visual,
                format!("no float32 image input of rank 4 (inputs: {})", names(&v)),
            )
        })?;
    // The embedding is the rank-2 output: `image_embeds` / `embedding` / `pooler_output`,
    // never `last_hidden_state` or the logits of a combined graph.
    let pick = |g: &embed::GraphIo, prefer: &[&str]| {
        let rank2: Vec<_> = g
            .outputs
            .iter()
            .filter(|o| o.shape.len() == 2 && !o.name.starts_with("logits"))
            .collect();
        prefer
            .iter()
            .find_map(|p| rank2.iter().find(|o| o.name == *p))
            .or_else(|| rank2.iter().find(|o| o.name.contains("embed")))
            .or_else(|| rank2.first())
            .map(|o| (*o).clone())
    };
    let image_output = pick(&v, &["image_embeds", "embedding", "image_embedding", "pooler_output"])
        .ok_or_else(|| bad(visual, "no output of shape [batch, dim]".into()))?;
    let text_output = pick(&t, &["text_embeds", "embedding", "text_embedding", "pooler_output"])
        .ok_or_else(|| bad(textual, "no output of shape [batch, dim]".into()))?;
    let text_input = t
        .inputs
        .iter()
        .find(|i| (i.dtype == "int64" || i.dtype == "int32") && !i.name.contains("mask") && i.shape.len() == 2)
        .ok_or_else(|| bad(textual, format!("no integer token-id input (inputs: {})", names(&t))))?;
    let text_mask = t
        .inputs
        .iter()
        .find(|i| i.name.contains("mask"))
        .map(|i| i.name.clone());
    let dim = [image_output.shape[1], text_output.shape[1]]
        .into_iter()
        .find(|d| *d > 0)
        .map(|d| d as usize);
    Ok(Graphs {
        io: Io {
            image_input: image_input.name.clone(),
            image_output: image_output.name,
            text_input: text_input.name.clone(),
            text_output: text_output.name,
            text_mask,
            combined: textual == visual,
        },
        dim,
        text_len: fixed(text_input.shape.get(1)),
        image_batch: fixed(image_input.shape.first()),
        text_batch: fixed(text_input.shape.first()),
    })
}

/// The external-data files of each graph, as package-relative paths.
pub(super) fn external(dir: &Path, graphs: &[&str]) -> Result<Vec<String>, HubError> {
    let mut out = Vec::new();
    for g in graphs {
        let folder = Path::new(g)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        for f in embed::external_data_files(&dir.join(g))? {
            let rel = if folder.is_empty() { f } else { format!("{folder}/{f}") };
            if !out.contains(&rel) {
                out.push(rel);
            }
        }
    }
    Ok(out)
}

/// Start, end and pad ids from the tokenizer and its config; a pad id is required when
/// the graph's attention depends on it.
pub(super) fn specials(tokenizer: &Path, config: &Path, pad_required: bool) -> Result<(TokenizerFacts, u32), HubError> {
    let facts = embed::tokenizer_facts(tokenizer, Some(config))?;
    let pad = match facts.pad_id {
        Some(p) => p,
        None if pad_required => {
            return Err(HubError::Config {
                path: config.to_path_buf(),
                reason: "names no pad token (pad_token), and this text tower's attention depends on it".into(),
            });
        }
        // A causal tower pooled at its end token ignores whatever follows it.
        None => facts.end_id,
    };
    Ok((facts, pad))
}

pub(super) fn clean_of(v: Option<&str>, path: &Path) -> Result<TextClean, HubError> {
    match v {
        None | Some("whitespace") => Ok(TextClean::Whitespace),
        Some("canonicalize") => Ok(TextClean::Canonicalize),
        Some("lower") => Ok(TextClean::Lower),
        Some(other) => Err(HubError::Config {
            path: path.to_path_buf(),
            reason: format!("text clean-up {other:?} is not supported (whitespace, lower, canonicalize)"),
        }),
    }
}

/// A graph fixed at a sequence length must match the context length the config says.
pub(super) fn context_of(configured: Option<usize>, graph: Option<usize>, path: &Path) -> Result<usize, HubError> {
    match (configured, graph) {
        (Some(c), Some(g)) if c != g => Err(HubError::Config {
            path: path.to_path_buf(),
            reason: format!("says a context length of {c} but the text graph is fixed at {g} tokens"),
        }),
        (c, g) => Ok(c.or(g).unwrap_or(77)),
    }
}

pub(super) fn folder_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "imported-clip".into())
}

/// OpenAI CLIP's learned temperature (exp of 4.6052, clamped at 100 in training); the
/// open_clip and M-CLIP models in these layouts use the same bound.
const CLIP_LOGIT_SCALE: f32 = 100.0;

/// CLIP's scoring: a softmax over the labels at CLIP's temperature.
pub(super) fn clip_scoring() -> Scoring {
    Scoring {
        link: Link::Softmax,
        logit_scale: CLIP_LOGIT_SCALE,
        logit_bias: None,
    }
}

/// The files of an imported package: the two graphs (the same file for a combined
/// graph), the tokenizer and the graphs' external data; nothing optional.
pub(super) fn package_files(visual: &str, textual: &str, tokenizer: &str, external_data: Vec<String>) -> Files {
    Files {
        visual: visual.into(),
        textual: textual.into(),
        tokenizer: tokenizer.into(),
        external_data,
        labels: None,
        templates: None,
        textual_int8: None,
        textual_fused: None,
    }
}
