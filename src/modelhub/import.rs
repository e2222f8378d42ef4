//! Layout conversion: a folder laid out as one of the published ONNX CLIP layouts
//! becomes a vidseek package (a `model.json` naming the files it uses). Everything
//! model-specific is read from the layout's own files (configs, tokenizer, the graphs'
//! inputs and outputs); nothing falls back to CLIP's numbers.
//!
//! The layouts and where their conventions come from:
//! - Immich (`immich-app/*` on Hugging Face, made by Immich's exporter,
//!   `machine-learning/export/immich_model_exporter/exporters/onnx/models/openclip.py`
//!   and `mclip.py`; read by `immich_ml/models/clip/textual.py` and `visual.py`):
//!   `config.json` (the open_clip model config), `visual/model.onnx` +
//!   `visual/preprocess_cfg.json`, `textual/model.onnx` + `textual/tokenizer.json` +
//!   `textual/tokenizer_config.json`. OpenCLIP text graphs take `text` (int32), M-CLIP
//!   ones `input_ids` + `attention_mask`; current exports are fixed at batch 1 and
//!   output L2-normalised `embedding`; SigLIP configs squash the image, canonicalize the
//!   text and pool at the last position (padded to the context length).
//! - transformers.js / optimum (`Xenova/*`; `scripts/convert.py`, optimum's
//!   `model_configs.py`): `onnx/vision_model.onnx` + `onnx/text_model.onnx`, or one
//!   combined `onnx/model.onnx`, each with `_fp16` / `_quantized` variants;
//!   `preprocessor_config.json`, `config.json`, `tokenizer.json`.
//! - vidseek packages (`model.json`, e.g. from `models/export_clip.py`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::HubError;
use crate::embed::{self, Files, ImageSpec, Io, Link, Manifest, Origin, Scoring, TextClean, TextSpec, TokenizerFacts};

/// Folder layouts of published ONNX CLIP models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Already a vidseek package (model.json).
    Vidseek,
    /// Immich's layout (OpenCLIP, M-CLIP, XLM-R and SigLIP exports).
    Immich,
    /// transformers.js / optimum: `onnx/` with split or combined graphs.
    TransformersJs,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Vidseek => "vidseek",
            Layout::Immich => "immich",
            Layout::TransformersJs => "transformers.js",
        }
    }
}

/// Which weights of a layout that ships several.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    #[default]
    /// Full precision (the default).
    Fp32,
    /// Half precision (float32 inputs and outputs kept).
    Fp16,
    /// Dynamically int8-quantized (transformers.js `_quantized`).
    Quantized,
}

impl Variant {
    /// Its name on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Fp32 => "fp32",
            Variant::Fp16 => "fp16",
            Variant::Quantized => "quantized",
        }
    }

    /// transformers.js' file-name suffix (`src/utils/dtypes.js`).
    fn suffix(self) -> &'static str {
        match self {
            Variant::Fp32 => "",
            Variant::Fp16 => "_fp16",
            Variant::Quantized => "_quantized",
        }
    }
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" => Ok(Variant::Fp32),
            "fp16" => Ok(Variant::Fp16),
            "quantized" | "q8" | "int8" => Ok(Variant::Quantized),
            other => Err(format!("unknown variant {other:?}: use fp32, fp16 or quantized")),
        }
    }
}

/// What the caller knows beyond the folder.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Package name (default: the folder's).
    pub name: Option<String>,
    /// Which weights of a layout that ships several.
    pub variant: Variant,
    /// Hub repository and commit, recorded in the manifest.
    pub repo: Option<String>,
    /// The commit the files came from.
    pub revision: Option<String>,
    /// The trained temperature (and bias) when known: configs only carry initial values.
    pub scoring: Option<Scoring>,
    /// The ONNX Runtime library to load the package with.
    pub ort_lib: Option<PathBuf>,
}

/// Which layout `dir` is in.
pub fn detect_layout(dir: &Path) -> Option<Layout> {
    if dir.join(embed::MANIFEST_FILE).is_file() {
        Some(Layout::Vidseek)
    } else if dir.join("visual/model.onnx").is_file() && dir.join("textual/model.onnx").is_file() {
        Some(Layout::Immich)
    } else if std::fs::read_dir(dir.join("onnx")).is_ok_and(|mut d| {
        d.any(|e| {
            e.is_ok_and(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.ends_with(".onnx") && (n.starts_with("vision_model") || n.starts_with("model"))
            })
        })
    }) {
        Some(Layout::TransformersJs)
    } else {
        None
    }
}

/// What is in `dir`, for the error of an unknown layout.
fn listing(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if e.path().is_dir() { format!("{n}/") } else { n }
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// The manifest for the model folder `src` (files stay where they are; the caller
/// copies what `Manifest::files_in_use` names).
pub fn manifest_for(src: &Path, opts: &ImportOptions) -> Result<(Layout, Manifest), HubError> {
    let layout = detect_layout(src).ok_or_else(|| HubError::UnknownLayout {
        dir: src.to_path_buf(),
        found: listing(src),
    })?;
    let mut m = match layout {
        Layout::Vidseek => Manifest::load(src)?,
        Layout::Immich => from_immich(src, opts)?,
        Layout::TransformersJs => from_transformers_js(src, opts)?,
    };
    if let Some(n) = &opts.name {
        m.name = n.clone();
    }
    if let Some(sc) = &opts.scoring {
        m.scoring = Some(sc.clone());
    }
    if opts.repo.is_some() {
        let o = m.origin.get_or_insert_with(Origin::default);
        if o.layout.is_empty() {
            o.layout = layout.name().into();
        }
        o.repo = opts.repo.clone();
        o.revision = opts.revision.clone();
    }
    Ok((layout, m))
}

fn read_json(path: &Path) -> Result<Value, HubError> {
    let text = std::fs::read_to_string(path).map_err(|e| HubError::Config {
        path: path.to_path_buf(),
        reason: format!("cannot read it ({e})"),
    })?;
    serde_json::from_str(&text).map_err(|e| HubError::Config {
        path: path.to_path_buf(),
        reason: format!("not valid JSON ({e})"),
    })
}

fn f32x3(v: Option<&Value>, path: &Path, key: &str) -> Result<[f32; 3], HubError> {
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
fn int_of(v: &Value, keys: &[&str]) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_array().and_then(|a| a.first()).and_then(Value::as_u64))
        .or_else(|| keys.iter().find_map(|k| v.get(*k).and_then(Value::as_u64)))
}

/// What the two graphs take and return.
struct Graphs {
    io: Io,
    dim: Option<usize>,
    /// Fixed sequence length of the text graph.
    text_len: Option<usize>,
    image_batch: Option<usize>,
    text_batch: Option<usize>,
}

fn fixed(d: Option<&i64>) -> Option<usize> {
    d.copied().filter(|d| *d > 0).map(|d| d as usize)
}

fn inspect_graphs(visual: &Path, textual: &Path, ort_lib: Option<&Path>) -> Result<Graphs, HubError> {
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
fn external(dir: &Path, graphs: &[&str]) -> Result<Vec<String>, HubError> {
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
fn specials(tokenizer: &Path, config: &Path, pad_required: bool) -> Result<(TokenizerFacts, u32), HubError> {
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

fn clean_of(v: Option<&str>, path: &Path) -> Result<TextClean, HubError> {
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
fn context_of(configured: Option<usize>, graph: Option<usize>, path: &Path) -> Result<usize, HubError> {
    match (configured, graph) {
        (Some(c), Some(g)) if c != g => Err(HubError::Config {
            path: path.to_path_buf(),
            reason: format!("says a context length of {c} but the text graph is fixed at {g} tokens"),
        }),
        (c, g) => Ok(c.or(g).unwrap_or(77)),
    }
}

fn folder_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "imported-clip".into())
}

/// OpenAI CLIP's learned temperature (exp of 4.6052, clamped at 100 in training); the
/// open_clip and M-CLIP models in these layouts use the same bound.
const CLIP_LOGIT_SCALE: f32 = 100.0;

fn from_immich(dir: &Path, opts: &ImportOptions) -> Result<Manifest, HubError> {
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

fn from_transformers_js(dir: &Path, opts: &ImportOptions) -> Result<Manifest, HubError> {
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
    // CLIP: shortest edge + centre crop; SigLIP: resize to height x width, no crop.
    let crop = pre.get("do_center_crop").and_then(Value::as_bool).unwrap_or(false);
    let size = if crop {
        pre.get("crop_size")
            .and_then(|s| int_of(s, &["height", "shortest_edge"]))
    } else {
        pre.get("size").and_then(|s| int_of(s, &["height", "shortest_edge"]))
    }
    .ok_or_else(|| HubError::Config {
        path: pre_path.clone(),
        reason: "no \"crop_size\" or \"size\"".into(),
    })? as u32;
    let squash = !crop && pre.get("size").is_some_and(|s| s.get("height").is_some());
    let interpolation = match pre.get("resample").and_then(Value::as_u64) {
        Some(2) => "bilinear",
        None | Some(3) => "bicubic",
        Some(other) => {
            return Err(HubError::Config {
                path: pre_path.clone(),
                reason: format!("resample {other} is not supported (2 bilinear, 3 bicubic)"),
            });
        }
    };
    let context = context_of(
        cfg.pointer("/text_config/max_position_embeddings")
            .and_then(Value::as_u64)
            .map(|c| c as usize),
        g.text_len,
        &cfg_path,
    )?;
    let (facts, pad_id) = specials(&dir.join("tokenizer.json"), &dir.join("tokenizer_config.json"), siglip)?;
    let scoring = if siglip {
        Scoring {
            link: Link::Sigmoid,
            logit_scale: 10.0,
            logit_bias: Some(-10.0),
        }
    } else {
        Scoring {
            link: Link::Softmax,
            logit_scale: CLIP_LOGIT_SCALE,
            logit_bias: None,
        }
    };
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
        scoring: Some(scoring),
        image: ImageSpec {
            size,
            mean: f32x3(pre.get("image_mean"), &pre_path, "image_mean")?,
            std: f32x3(pre.get("image_std"), &pre_path, "image_std")?,
            resize: if squash { "squash" } else { "shortest_side" }.into(),
            crop: if squash { "none" } else { "center" }.into(),
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
            clean: if siglip {
                TextClean::Canonicalize
            } else {
                TextClean::Whitespace
            },
            batch: g.text_batch,
        },
        files: Files {
            visual: visual.clone(),
            textual: textual.clone(),
            tokenizer: "tokenizer.json".into(),
            external_data: external(dir, &graphs)?,
            labels: None,
            templates: None,
            textual_int8: None,
            textual_fused: None,
        },
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
