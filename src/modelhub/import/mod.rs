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
//!
//! Here: the layouts and variants, detecting a folder's layout and the manifest's
//! common finishing (name, scoring, origin). `immich` and `transformers_js` convert one
//! layout each; `common` is what both read (configs, graphs, tokenizer ids).

mod common;
mod immich;
mod transformers_js;

use std::path::{Path, PathBuf};

use super::HubError;
use crate::embed::{self, Manifest, Origin, Scoring};
use immich::from_immich;
use transformers_js::from_transformers_js;

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
