//! The transformers.js / optimum layout: `onnx/` with split towers or one combined
//! graph (and their `_fp16` / `_quantized` variants), `preprocessor_config.json`,
//! `config.json`, `tokenizer.json`.

use std::path::Path;

use serde_json::Value;

use super::common::{
    Graphs, clip_scoring, context_of, external, f32x3, folder_name, inspect_graphs, int_of, package_files, read_json,
    specials,
};
use super::{ImportOptions, Variant};
use crate::embed::{self, ImageSpec, Link, Manifest, Origin, Scoring, TextClean, TextSpec};
use crate::modelhub::HubError;

/// The graphs of a transformers.js folder for `variant`: split towers when both are
/// there, else the combined graph.
fn transformers_js_graphs(dir: &Path, variant: Variant) -> Result<(String, String), HubError> {
    let sfx = variant.suffix();
    let (v, t, c) = (
        format!("onnx/vision_model{sfx}.onnx"),
        format!("onnx/text_model{sfx}.onnx"),
        format!("onnx/model{sfx}.onnx"),
    );
    if dir.join(&v).is_file() && dir.join(&t).is_file() {
        return Ok((v, t));
    }
    if dir.join(&c).is_file() {
        return Ok((c.clone(), c));
    }
    let mut have: Vec<String> = std::fs::read_dir(dir.join("onnx"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    have.sort();
    Err(HubError::Config {
        path: dir.join("onnx"),
        reason: format!(
            "has no {} graphs ({v} + {t}, or {c}); it has {}: pick another --variant",
            variant.name(),
            have.join(", ")
        ),
    })
}

pub(super) fn from_transformers_js(dir: &Path, opts: &ImportOptions) -> Result<Manifest, HubError> {
    let cfg_path = dir.join("config.json");
    let pre_path = dir.join("preprocessor_config.json");
    let cfg = read_json(&cfg_path)?;
    let pre = read_json(&pre_path)?;
    let (visual, textual) = transformers_js_graphs(dir, opts.variant)?;
    let g = inspect_graphs(&dir.join(&visual), &dir.join(&textual), opts.ort_lib.as_deref())?;
    let model_type = cfg.get("model_type").and_then(Value::as_str).unwrap_or("clip");
    let siglip = model_type.contains("siglip");
    let dim = cfg
        .get("projection_dim")
        .and_then(Value::as_u64)
        .map(|d| d as usize)
        .or(g.dim)
        .ok_or_else(|| HubError::Config {
            path: cfg_path.clone(),
            reason: "no \"projection_dim\" and the graphs do not say".into(),
        })?;
    let image = image_spec(&pre, &pre_path, g.image_batch)?;
    let text = text_spec(dir, &cfg, &cfg_path, siglip, &g)?;
    let graphs: Vec<&str> = if visual == textual {
        vec![&visual]
    } else {
        vec![&visual, &textual]
    };
    Ok(Manifest {
        format: embed::FORMAT,
        name: folder_name(dir),
        description: format!("imported from a transformers.js-layout ONNX {model_type}"),
        embedding_dim: dim,
        logit_scale: None,
        scoring: Some(scoring(siglip)),
        image,
        text,
        files: package_files(&visual, &textual, "tokenizer.json", external(dir, &graphs)?),
        fp16: None,
        io: g.io,
        origin: Some(Origin {
            layout: if visual == textual {
                "transformers.js (combined)"
            } else {
                "transformers.js"
            }
            .into(),
            variant: Some(opts.variant.name().into()),
            ..Origin::default()
        }),
    })
}

/// The image settings of `preprocessor_config.json`.
fn image_spec(pre: &Value, pre_path: &Path, batch: Option<usize>) -> Result<ImageSpec, HubError> {
    // CLIP: shortest edge + centre crop; SigLIP: resize to height x width, no crop.
    let crop = pre.get("do_center_crop").and_then(Value::as_bool).unwrap_or(false);
    let size = if crop {
        pre.get("crop_size")
            .and_then(|s| int_of(s, &["height", "shortest_edge"]))
    } else {
        pre.get("size").and_then(|s| int_of(s, &["height", "shortest_edge"]))
    }
    .ok_or_else(|| HubError::Config {
        path: pre_path.to_path_buf(),
        reason: "no \"crop_size\" or \"size\"".into(),
    })? as u32;
    let squash = !crop && pre.get("size").is_some_and(|s| s.get("height").is_some());
    let interpolation = match pre.get("resample").and_then(Value::as_u64) {
        Some(2) => "bilinear",
        None | Some(3) => "bicubic",
        Some(other) => {
            return Err(HubError::Config {
                path: pre_path.to_path_buf(),
                reason: format!("resample {other} is not supported (2 bilinear, 3 bicubic)"),
            });
        }
    };
    Ok(ImageSpec {
        size,
        mean: f32x3(pre.get("image_mean"), pre_path, "image_mean")?,
        std: f32x3(pre.get("image_std"), pre_path, "image_std")?,
        resize: if squash { "squash" } else { "shortest_side" }.into(),
        crop: if squash { "none" } else { "center" }.into(),
        interpolation: interpolation.into(),
        batch,
    })
}

/// The text settings: the context length of `config.json` against the graph, the
/// tokenizer's special ids, and SigLIP's padding and clean-up.
fn text_spec(dir: &Path, cfg: &Value, cfg_path: &Path, siglip: bool, g: &Graphs) -> Result<TextSpec, HubError> {
    let context = context_of(
        cfg.pointer("/text_config/max_position_embeddings")
            .and_then(Value::as_u64)
            .map(|c| c as usize),
        g.text_len,
        cfg_path,
    )?;
    let (facts, pad_id) = specials(&dir.join("tokenizer.json"), &dir.join("tokenizer_config.json"), siglip)?;
    Ok(TextSpec {
        context_length: context,
        dynamic_length: g.text_len.is_none(),
        start_id: facts.start_id,
        end_id: facts.end_id,
        pad_id,
        pad_to_context: siglip,
        clean: if siglip {
            TextClean::Canonicalize
        } else {
            TextClean::Whitespace
        },
        batch: g.text_batch,
    })
}

fn scoring(siglip: bool) -> Scoring {
    if siglip {
        Scoring {
            link: Link::Sigmoid,
            logit_scale: 10.0,
            logit_bias: Some(-10.0),
        }
    } else {
        clip_scoring()
    }
}
