//! `modelhub`: getting model packages from elsewhere.
//!
//! `vidseek model pull NAME` downloads an ONNX CLIP published on Hugging Face (through
//! the `curl` command, so the binary carries no HTTP client) and `vidseek model import
//! SRC DEST` turns a local folder in one of the common layouts into a vidseek package.
//! Both end in [`import`]: it reads the layout's own config files, asks `embed` what the
//! ONNX graphs take and return, and writes `model.json`. Nothing here runs at build time
//! or without being asked.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::embed::{self, EmbedError, Files, ImageSpec, Io, Manifest, TextSpec};

/// Errors of fetching or converting a package.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("unknown model {name:?}; known: {known}")]
    UnknownModel { name: String, known: String },
    #[error("downloading {url} failed: {reason} (this needs internet access and the curl command)")]
    Download { url: String, reason: String },
    #[error(
        "{}: not a model layout vidseek knows (expected model.json, an Immich folder with \
         visual/ and textual/, or a Hugging Face folder with onnx/vision_model.onnx)",
        dir.display()
    )]
    UnknownLayout { dir: PathBuf },
    #[error("{}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
}

/// Folder layouts of published ONNX CLIP models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Already a vidseek package (model.json).
    Vidseek,
    /// Immich's layout: `visual/model.onnx`, `visual/preprocess_cfg.json`,
    /// `textual/model.onnx`, `textual/tokenizer.json`, `config.json` (open_clip config).
    Immich,
    /// Hugging Face / transformers.js layout (Xenova): `onnx/vision_model.onnx`,
    /// `onnx/text_model.onnx`, `tokenizer.json`, `preprocessor_config.json`, `config.json`.
    HuggingFace,
}

/// A model `pull` knows how to fetch.
pub struct Known {
    pub name: &'static str,
    pub repo: &'static str,
    pub layout: Layout,
    pub files: &'static [&'static str],
    pub about: &'static str,
}

pub const KNOWN: &[Known] = &[
    Known {
        name: "clip-vit-b32",
        repo: "immich-app/ViT-B-32__openai",
        layout: Layout::Immich,
        files: &[
            "config.json",
            "visual/model.onnx",
            "visual/preprocess_cfg.json",
            "textual/model.onnx",
            "textual/tokenizer.json",
        ],
        about: "OpenAI CLIP ViT-B/32 as exported by Immich (fp32)",
    },
    Known {
        name: "clip-vit-b32-xenova",
        repo: "Xenova/clip-vit-base-patch32",
        layout: Layout::HuggingFace,
        files: &[
            "config.json",
            "preprocessor_config.json",
            "tokenizer.json",
            "onnx/vision_model.onnx",
            "onnx/text_model.onnx",
        ],
        about: "OpenAI CLIP ViT-B/32 from transformers.js (fp32)",
    },
];

/// Downloads a known model into `dest` and makes it a package.
pub fn pull(name: &str, dest: &Path, ort_lib: Option<&Path>) -> Result<Manifest, HubError> {
    let known = KNOWN
        .iter()
        .find(|k| k.name == name || k.repo == name)
        .ok_or_else(|| HubError::UnknownModel {
            name: name.to_string(),
            known: KNOWN
                .iter()
                .map(|k| format!("{} ({})", k.name, k.about))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    for file in known.files {
        let url = format!("https://huggingface.co/{}/resolve/main/{file}", known.repo);
        let target = dest.join(file);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| HubError::Io {
                path: parent.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
        let out = Command::new("curl")
            .args(["-fL", "--retry", "3", "--progress-bar", "-o"])
            .arg(&target)
            .arg(&url)
            .status()
            .map_err(|e| HubError::Download {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if !out.success() {
            return Err(HubError::Download {
                url,
                reason: format!("curl exited with {out}"),
            });
        }
    }
    import(dest, dest, Some(known.name), ort_lib)
}

/// Which layout `dir` is in.
pub fn detect_layout(dir: &Path) -> Option<Layout> {
    if dir.join(embed::MANIFEST_FILE).is_file() {
        Some(Layout::Vidseek)
    } else if dir.join("visual/model.onnx").is_file() && dir.join("textual/model.onnx").is_file() {
        Some(Layout::Immich)
    } else if dir.join("onnx/vision_model.onnx").is_file() && dir.join("onnx/text_model.onnx").is_file() {
        Some(Layout::HuggingFace)
    } else {
        None
    }
}

/// Converts the model folder `src` into a package in `dest` (files copied when the two
/// differ) and returns the manifest written. The package is then loaded once to prove it.
pub fn import(src: &Path, dest: &Path, name: Option<&str>, ort_lib: Option<&Path>) -> Result<Manifest, HubError> {
    let layout = detect_layout(src).ok_or_else(|| HubError::UnknownLayout { dir: src.to_path_buf() })?;
    let manifest = match layout {
        Layout::Vidseek => Manifest::load(src)?,
        Layout::Immich => from_immich(src, name, ort_lib)?,
        Layout::HuggingFace => from_huggingface(src, name, ort_lib)?,
    };
    if src != dest {
        for (_, file) in manifest.files_in_use(false) {
            copy_into(&src.join(file), &dest.join(file))?;
        }
        if let Some(h) = &manifest.fp16 {
            for f in [&h.visual, &h.textual] {
                copy_into(&src.join(f), &dest.join(f))?;
            }
        }
    }
    let path = dest.join(embed::MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    std::fs::write(&path, text + "\n").map_err(|e| HubError::Io {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    // Prove it: every check the engine makes at start-up, now.
    embed::Embedder::load(
        dest,
        &embed::EmbedOptions {
            ort_lib: ort_lib.map(Path::to_path_buf),
            device: embed::Device::Cpu,
            intra_threads: Some(1),
        },
    )?;
    Ok(manifest)
}

fn copy_into(from: &Path, to: &Path) -> Result<(), HubError> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| HubError::Io {
            path: parent.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    std::fs::copy(from, to).map(|_| ()).map_err(|e| HubError::Io {
        path: from.to_path_buf(),
        reason: e.to_string(),
    })
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

fn f32x3(v: &Value, path: &Path, key: &str) -> Result<[f32; 3], HubError> {
    let arr: Vec<f32> = v
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64().map(|f| f as f32)).collect())
        .unwrap_or_default();
    arr.try_into().map_err(|_| HubError::Config {
        path: path.to_path_buf(),
        reason: format!("{key:?} must be three numbers"),
    })
}

/// Integer from a number or from the first element of an array / a named field.
fn int_of(v: &Value, keys: &[&str]) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_array().and_then(|a| a.first()).and_then(Value::as_u64))
        .or_else(|| keys.iter().find_map(|k| v.get(*k).and_then(Value::as_u64)))
}

/// The start/end token ids, read from tokenizer.json's added tokens (CLIP's by default).
fn special_ids(tokenizer: &Path) -> Result<(u32, u32), HubError> {
    let v = read_json(tokenizer)?;
    let find = |content: &str| {
        v.get("added_tokens")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|t| t.get("content").and_then(Value::as_str) == Some(content))
            })
            .and_then(|t| t.get("id"))
            .and_then(Value::as_u64)
            .map(|i| i as u32)
    };
    Ok((
        find("<|startoftext|>").unwrap_or(49406),
        find("<|endoftext|>").unwrap_or(49407),
    ))
}

/// Input/output names and the text sequence axis, read from the graphs themselves.
struct GraphNames {
    io: Io,
    dim: Option<usize>,
    dynamic_length: bool,
    fixed_length: Option<usize>,
}

fn graph_names(visual: &Path, textual: &Path, ort_lib: Option<&Path>) -> Result<GraphNames, HubError> {
    let v = embed::inspect(visual, ort_lib)?;
    let t = embed::inspect(textual, ort_lib)?;
    let bad = |path: &Path, reason: &str| HubError::Config {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let image_input = v
        .inputs
        .iter()
        .find(|i| i.dtype == "float32" && i.shape.len() == 4)
        .ok_or_else(|| bad(visual, "no float image input of rank 4"))?;
    let pick_output = |g: &embed::GraphIo| {
        let rank2: Vec<_> = g.outputs.iter().filter(|o| o.shape.len() == 2).collect();
        rank2
            .iter()
            .find(|o| o.name.contains("embed"))
            .or_else(|| rank2.first())
            .map(|o| (*o).clone())
    };
    let image_output = pick_output(&v).ok_or_else(|| bad(visual, "no output of shape [batch, dim]"))?;
    let text_output = pick_output(&t).ok_or_else(|| bad(textual, "no output of shape [batch, dim]"))?;
    let text_input = t
        .inputs
        .iter()
        .find(|i| (i.dtype == "int64" || i.dtype == "int32") && !i.name.contains("mask"))
        .ok_or_else(|| bad(textual, "no integer token-id input"))?;
    let text_mask = t
        .inputs
        .iter()
        .find(|i| i.name.contains("mask"))
        .map(|i| i.name.clone());
    let seq = text_input.shape.get(1).copied().unwrap_or(-1);
    let dim = [image_output.shape[1], text_output.shape[1]]
        .into_iter()
        .find(|d| *d > 0)
        .map(|d| d as usize);
    Ok(GraphNames {
        io: Io {
            image_input: image_input.name.clone(),
            image_output: image_output.name,
            text_input: text_input.name.clone(),
            text_output: text_output.name,
            text_mask,
        },
        dim,
        dynamic_length: seq < 0,
        fixed_length: (seq > 0).then_some(seq as usize),
    })
}

fn from_immich(dir: &Path, name: Option<&str>, ort_lib: Option<&Path>) -> Result<Manifest, HubError> {
    let cfg_path = dir.join("config.json");
    let pre_path = dir.join("visual/preprocess_cfg.json");
    let cfg = read_json(&cfg_path)?;
    let pre = read_json(&pre_path)?;
    let tok = "textual/tokenizer.json";
    let g = graph_names(&dir.join("visual/model.onnx"), &dir.join("textual/model.onnx"), ort_lib)?;
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
    let context = cfg
        .pointer("/text_cfg/context_length")
        .and_then(Value::as_u64)
        .map(|c| c as usize)
        .or(g.fixed_length)
        .unwrap_or(77);
    let (start_id, end_id) = special_ids(&dir.join(tok))?;
    Ok(Manifest {
        format: embed::FORMAT,
        name: name.map(str::to_string).unwrap_or_else(|| folder_name(dir)),
        description: "imported from an Immich-layout ONNX CLIP".into(),
        embedding_dim: dim,
        logit_scale: None,
        image: ImageSpec {
            size,
            mean: f32x3(pre.get("mean").unwrap_or(&Value::Null), &pre_path, "mean")?,
            std: f32x3(pre.get("std").unwrap_or(&Value::Null), &pre_path, "std")?,
            resize: "shortest_side".into(),
            crop: "center".into(),
            interpolation: pre
                .get("interpolation")
                .and_then(Value::as_str)
                .unwrap_or("bicubic")
                .to_string(),
        },
        text: TextSpec {
            context_length: context,
            dynamic_length: g.dynamic_length,
            start_id,
            end_id,
            pad_id: 0,
        },
        files: Files {
            visual: "visual/model.onnx".into(),
            textual: "textual/model.onnx".into(),
            tokenizer: tok.into(),
        },
        fp16: None,
        io: g.io,
    })
}

fn from_huggingface(dir: &Path, name: Option<&str>, ort_lib: Option<&Path>) -> Result<Manifest, HubError> {
    let cfg_path = dir.join("config.json");
    let pre_path = dir.join("preprocessor_config.json");
    let cfg = read_json(&cfg_path)?;
    let pre = read_json(&pre_path)?;
    let g = graph_names(
        &dir.join("onnx/vision_model.onnx"),
        &dir.join("onnx/text_model.onnx"),
        ort_lib,
    )?;
    let dim = cfg
        .get("projection_dim")
        .and_then(Value::as_u64)
        .map(|d| d as usize)
        .or(g.dim)
        .ok_or_else(|| HubError::Config {
            path: cfg_path.clone(),
            reason: "no \"projection_dim\"".into(),
        })?;
    let size = pre
        .get("crop_size")
        .and_then(|s| int_of(s, &["height", "shortest_edge"]))
        .or_else(|| pre.get("size").and_then(|s| int_of(s, &["shortest_edge", "height"])))
        .ok_or_else(|| HubError::Config {
            path: pre_path.clone(),
            reason: "no \"crop_size\" or \"size\"".into(),
        })? as u32;
    let interpolation = match pre.get("resample").and_then(Value::as_u64) {
        Some(2) => "bilinear",
        _ => "bicubic",
    };
    let context = cfg
        .pointer("/text_config/max_position_embeddings")
        .and_then(Value::as_u64)
        .map(|c| c as usize)
        .or(g.fixed_length)
        .unwrap_or(77);
    let (start_id, end_id) = special_ids(&dir.join("tokenizer.json"))?;
    Ok(Manifest {
        format: embed::FORMAT,
        name: name.map(str::to_string).unwrap_or_else(|| folder_name(dir)),
        description: "imported from a Hugging Face-layout ONNX CLIP".into(),
        embedding_dim: dim,
        logit_scale: None,
        image: ImageSpec {
            size,
            mean: f32x3(pre.get("image_mean").unwrap_or(&Value::Null), &pre_path, "image_mean")?,
            std: f32x3(pre.get("image_std").unwrap_or(&Value::Null), &pre_path, "image_std")?,
            resize: "shortest_side".into(),
            crop: "center".into(),
            interpolation: interpolation.into(),
        },
        text: TextSpec {
            context_length: context,
            dynamic_length: g.dynamic_length,
            start_id,
            end_id,
            // Hugging Face CLIP tokenizers pad with the end token.
            pad_id: end_id,
        },
        files: Files {
            visual: "onnx/vision_model.onnx".into(),
            textual: "onnx/text_model.onnx".into(),
            tokenizer: "tokenizer.json".into(),
        },
        fp16: None,
        io: g.io,
    })
}

fn folder_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "imported-clip".into())
}
