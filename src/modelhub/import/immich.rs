//! The Immich layout: `config.json` (open_clip's model config),
//! `visual/preprocess_cfg.json`, `visual/model.onnx`, `textual/model.onnx` and its
//! tokenizer (see the parent module for where these conventions come from).

use std::path::Path;

use serde_json::Value;

use super::common::{
    CLIP_LOGIT_SCALE, clean_of, context_of, external, f32x3, folder_name, inspect_graphs, int_of, read_json, specials,
};
use super::{ImportOptions, Variant};
use crate::embed::{self, Files, ImageSpec, Link, Manifest, Origin, Scoring, TextSpec};
use crate::modelhub::HubError;

pub(super) fn from_immich(dir: &Path, opts: &ImportOptions) -> Result<Manifest, HubError> {
    let cfg_path = dir.join("config.json");
    let pre_path = dir.join("visual/preprocess_cfg.json");
    let tok_cfg = dir.join("textual/tokenizer_config.json");
    let cfg = read_json(&cfg_path)?;
    let pre = read_json(&pre_path)?;
    let (visual, textual, tok) = ("visual/model.onnx", "textual/model.onnx", "textual/tokenizer.json");
    let g = inspect_graphs(&dir.join(visual), &dir.join(textual), opts.ort_lib.as_deref())?;
    let dim = cfg
        .get("embed_dim")
        .and_then(Value::as_u64)
        .map(|d| d as usize)
        .or(g.dim)
        .ok_or_else(|| HubError::Config {
            path: cfg_path.clone(),
            reason: "no \"embed_dim\"".into(),
        })?;
    let size = pre
        .get("size")
        .and_then(|s| int_of(s, &[]))
        .ok_or_else(|| HubError::Config {
            path: pre_path.clone(),
            reason: "no \"size\"".into(),
        })? as u32;
    // Immich's visual.py: "shortest" (the default for older configs) or "squash".
    let (resize, crop) = match pre.get("resize_mode").and_then(Value::as_str) {
        None | Some("shortest") => ("shortest_side", "center"),
        Some("squash") => ("squash", "none"),
        Some(other) => {
            return Err(HubError::Config {
                path: pre_path.clone(),
                reason: format!("resize_mode {other:?} is not supported (shortest, squash)"),
            });
        }
    };
    let interpolation = pre.get("interpolation").and_then(Value::as_str).unwrap_or("bicubic");
    if !matches!(interpolation, "bicubic" | "bilinear") {
        return Err(HubError::Config {
            path: pre_path.clone(),
            reason: format!("interpolation {interpolation:?} is not supported (bicubic, bilinear)"),
        });
    }
    let text_cfg = cfg.get("text_cfg").cloned().unwrap_or(Value::Null);
    let context = context_of(
        text_cfg
            .get("context_length")
            .and_then(Value::as_u64)
            .map(|c| c as usize),
        g.text_len,
        &cfg_path,
    )?;
    let clean = clean_of(
        text_cfg.pointer("/tokenizer_kwargs/clean").and_then(Value::as_str),
        &cfg_path,
    )?;
    // SigLIP: no causal mask, pooled at the last position (open_clip's `pool_type:
    // last`, `no_causal_mask`), sigmoid scores with a learned bias.
    let siglip = text_cfg.get("pool_type").and_then(Value::as_str) == Some("last")
        || text_cfg.get("no_causal_mask").and_then(Value::as_bool) == Some(true)
        || cfg.get("init_logit_bias").is_some();
    let mclip = g.io.text_mask.is_some();
    // open_clip's Hugging Face text towers (XLM-R) build their mask from the pad id.
    let hf_text = text_cfg.get("hf_model_name").is_some() || text_cfg.get("hf_tokenizer_name").is_some();
    let (facts, pad_id) = specials(&dir.join(tok), &tok_cfg, siglip || mclip || hf_text)?;
    let scoring = if siglip {
        Scoring {
            link: Link::Sigmoid,
            // Only the initial values are in the config (the trained ones are in the
            // checkpoint); `pull` passes the trained ones where they are known.
            logit_scale: cfg
                .get("init_logit_scale")
                .and_then(Value::as_f64)
                .map_or(10.0, |s| s.exp() as f32),
            logit_bias: Some(cfg.get("init_logit_bias").and_then(Value::as_f64).unwrap_or(-10.0) as f32),
        }
    } else {
        Scoring {
            link: Link::Softmax,
            logit_scale: CLIP_LOGIT_SCALE,
            logit_bias: None,
        }
    };
    let kind = if siglip {
        "immich-siglip"
    } else if mclip {
        "immich-mclip"
    } else {
        "immich-openclip"
    };
    Ok(Manifest {
        format: embed::FORMAT,
        name: folder_name(dir),
        description: format!("imported from an Immich-layout ONNX CLIP ({kind})"),
        embedding_dim: dim,
        logit_scale: None,
        scoring: Some(scoring),
        image: ImageSpec {
            size,
            mean: f32x3(pre.get("mean"), &pre_path, "mean")?,
            std: f32x3(pre.get("std"), &pre_path, "std")?,
            resize: resize.into(),
            crop: crop.into(),
            interpolation: interpolation.into(),
            batch: g.image_batch,
        },
        text: TextSpec {
            context_length: context,
            dynamic_length: g.text_len.is_none(),
            start_id: facts.start_id,
            end_id: facts.end_id,
            pad_id,
            pad_to_context: siglip,
            clean,
            batch: g.text_batch,
        },
        files: Files {
            visual: visual.into(),
            textual: textual.into(),
            tokenizer: tok.into(),
            external_data: external(dir, &[visual, textual])?,
            labels: None,
            templates: None,
            textual_int8: None,
            textual_fused: None,
        },
        fp16: None,
        io: g.io,
        origin: Some(Origin {
            layout: kind.into(),
            variant: Some(Variant::Fp32.name().into()),
            ..Origin::default()
        }),
    })
}
