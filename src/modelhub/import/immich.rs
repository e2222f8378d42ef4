//! The Immich layout: `config.json` (open_clip's model config),
//! `visual/preprocess_cfg.json`, `visual/model.onnx`, `textual/model.onnx` and its
//! tokenizer (see the parent module for where these conventions come from).

use std::path::Path;

use serde_json::Value;

use super::common::{
    Graphs, clean_of, clip_scoring, context_of, external, f32x3, folder_name, inspect_graphs, int_of, package_files,
    read_json, specials,
};
use super::{ImportOptions, Variant};
use crate::embed::{self, ImageSpec, Io, Link, Manifest, Origin, Scoring, TextSpec};
use crate::modelhub::HubError;

/// The layout's graphs and tokenizer, package-relative.
const VISUAL: &str = "visual/model.onnx";
const TEXTUAL: &str = "textual/model.onnx";
const TOKENIZER: &str = "textual/tokenizer.json";

pub(super) fn from_immich(dir: &Path, opts: &ImportOptions) -> Result<Manifest, HubError> {
    let cfg_path = dir.join("config.json");
    let pre_path = dir.join("visual/preprocess_cfg.json");
    let cfg = read_json(&cfg_path)?;
    let pre = read_json(&pre_path)?;
    let g = inspect_graphs(&dir.join(VISUAL), &dir.join(TEXTUAL), opts.ort_lib.as_deref())?;
    let dim = cfg
        .get("embed_dim")
        .and_then(Value::as_u64)
        .map(|d| d as usize)
        .or(g.dim)
        .ok_or_else(|| HubError::Config {
            path: cfg_path.clone(),
            reason: "no \"embed_dim\"".into(),
        })?;
    let image = image_spec(&pre, &pre_path, g.image_batch)?;
    let text_cfg = cfg.get("text_cfg").cloned().unwrap_or(Value::Null);
    let tower = TextTower::of(&cfg, &text_cfg, &g.io);
    let text = text_spec(dir, &cfg_path, &text_cfg, tower, &g)?;
    let kind = tower.kind();
    Ok(Manifest {
        format: embed::FORMAT,
        name: folder_name(dir),
        description: format!("imported from an Immich-layout ONNX CLIP ({kind})"),
        embedding_dim: dim,
        logit_scale: None,
        scoring: Some(scoring(&cfg, tower)),
        image,
        text,
        files: package_files(VISUAL, TEXTUAL, TOKENIZER, external(dir, &[VISUAL, TEXTUAL])?),
        fp16: None,
        io: g.io,
        origin: Some(Origin {
            layout: kind.into(),
            variant: Some(Variant::Fp32.name().into()),
            ..Origin::default()
        }),
    })
}

/// The image settings of `visual/preprocess_cfg.json`.
fn image_spec(pre: &Value, pre_path: &Path, batch: Option<usize>) -> Result<ImageSpec, HubError> {
    let size = pre
        .get("size")
        .and_then(|s| int_of(s, &[]))
        .ok_or_else(|| HubError::Config {
            path: pre_path.to_path_buf(),
            reason: "no \"size\"".into(),
        })? as u32;
    // Immich's visual.py: "shortest" (the default for older configs) or "squash".
    let (resize, crop) = match pre.get("resize_mode").and_then(Value::as_str) {
        None | Some("shortest") => ("shortest_side", "center"),
        Some("squash") => ("squash", "none"),
        Some(other) => {
            return Err(HubError::Config {
                path: pre_path.to_path_buf(),
                reason: format!("resize_mode {other:?} is not supported (shortest, squash)"),
            });
        }
    };
    let interpolation = pre.get("interpolation").and_then(Value::as_str).unwrap_or("bicubic");
    if !matches!(interpolation, "bicubic" | "bilinear") {
        return Err(HubError::Config {
            path: pre_path.to_path_buf(),
            reason: format!("interpolation {interpolation:?} is not supported (bicubic, bilinear)"),
        });
    }
    Ok(ImageSpec {
        size,
        mean: f32x3(pre.get("mean"), pre_path, "mean")?,
        std: f32x3(pre.get("std"), pre_path, "std")?,
        resize: resize.into(),
        crop: crop.into(),
        interpolation: interpolation.into(),
        batch,
    })
}

/// What kind of text tower an Immich folder holds, read from open_clip's config and
/// the graph.
#[derive(Clone, Copy)]
struct TextTower {
    /// SigLIP: no causal mask, pooled at the last position, sigmoid scores.
    siglip: bool,
    /// M-CLIP: the graph takes an attention mask.
    mclip: bool,
    /// One of open_clip's Hugging Face text towers (XLM-R).
    hf_text: bool,
}

impl TextTower {
    fn of(cfg: &Value, text_cfg: &Value, io: &Io) -> Self {
        Self {
            // SigLIP: no causal mask, pooled at the last position (open_clip's `pool_type:
            // last`, `no_causal_mask`), sigmoid scores with a learned bias.
            siglip: text_cfg.get("pool_type").and_then(Value::as_str) == Some("last")
                || text_cfg.get("no_causal_mask").and_then(Value::as_bool) == Some(true)
                || cfg.get("init_logit_bias").is_some(),
            mclip: io.text_mask.is_some(),
            hf_text: text_cfg.get("hf_model_name").is_some() || text_cfg.get("hf_tokenizer_name").is_some(),
        }
    }

    /// Whether the tower's attention depends on the pad id: SigLIP's and M-CLIP's do,
    /// and open_clip's Hugging Face text towers (XLM-R) build their mask from it.
    fn pad_required(self) -> bool {
        self.siglip || self.mclip || self.hf_text
    }

    /// The name recorded as the package's origin.
    fn kind(self) -> &'static str {
        if self.siglip {
            "immich-siglip"
        } else if self.mclip {
            "immich-mclip"
        } else {
            "immich-openclip"
        }
    }
}

/// The text settings: open_clip's `text_cfg` (context length, clean-up) against the
/// graph, and the tokenizer's special ids.
fn text_spec(
    dir: &Path,
    cfg_path: &Path,
    text_cfg: &Value,
    tower: TextTower,
    g: &Graphs,
) -> Result<TextSpec, HubError> {
    let context = context_of(
        text_cfg
            .get("context_length")
            .and_then(Value::as_u64)
            .map(|c| c as usize),
        g.text_len,
        cfg_path,
    )?;
    let clean = clean_of(
        text_cfg.pointer("/tokenizer_kwargs/clean").and_then(Value::as_str),
        cfg_path,
    )?;
    let (facts, pad_id) = specials(
        &dir.join(TOKENIZER),
        &dir.join("textual/tokenizer_config.json"),
        tower.pad_required(),
    )?;
    Ok(TextSpec {
        context_length: context,
        dynamic_length: g.text_len.is_none(),
        start_id: facts.start_id,
        end_id: facts.end_id,
        pad_id,
        pad_to_context: tower.siglip,
        clean,
        batch: g.text_batch,
    })
}

fn scoring(cfg: &Value, tower: TextTower) -> Scoring {
    if !tower.siglip {
        return clip_scoring();
    }
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
}
