//! The model package manifest (`model.json`); the format is documented in
//! models/README.md. Everything model-specific the engine needs comes from here:
//! nothing elsewhere knows ViT-B/32's numbers.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::EmbedError;

/// The manifest format this build reads.
pub const FORMAT: u32 = 1;
pub const MANIFEST_FILE: &str = "model.json";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version of this file (1).
    pub format: u32,
    /// Model identity; recorded in every index built with it.
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Length of the (unnormalised) output vectors of both towers.
    pub embedding_dim: usize,
    /// exp(learned temperature) of the model, when known (for calibrated scores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_scale: Option<f32>,
    pub image: ImageSpec,
    pub text: TextSpec,
    pub files: Files,
    /// Optional half-precision graphs, used with `--device cuda`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp16: Option<Fp16Files>,
    #[serde(default)]
    pub io: Io,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Side of the square model input.
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// "shortest_side": resize so the shorter side equals `size`, keeping aspect.
    #[serde(default = "default_resize")]
    pub resize: String,
    /// "center": crop the central `size` x `size` square.
    #[serde(default = "default_crop")]
    pub crop: String,
    /// "bicubic" (CLIP) or "bilinear".
    #[serde(default = "default_interpolation")]
    pub interpolation: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextSpec {
    /// Maximum tokens including start and end (77 for CLIP).
    pub context_length: usize,
    /// Whether textual.onnx accepts any sequence length up to `context_length`.
    /// When false, every query is padded to `context_length` with `pad_id`.
    #[serde(default)]
    pub dynamic_length: bool,
    pub start_id: u32,
    pub end_id: u32,
    #[serde(default)]
    pub pad_id: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Files {
    pub visual: String,
    pub textual: String,
    pub tokenizer: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fp16Files {
    pub visual: String,
    pub textual: String,
}

/// Names of the graph inputs and outputs, and the integer type of token ids.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Io {
    #[serde(default = "d_image_input")]
    pub image_input: String,
    #[serde(default = "d_image_output")]
    pub image_output: String,
    #[serde(default = "d_text_input")]
    pub text_input: String,
    #[serde(default = "d_text_output")]
    pub text_output: String,
    /// An attention-mask input of the text graph (Hugging Face exports), fed with ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_mask: Option<String>,
}

impl Default for Io {
    fn default() -> Self {
        Self {
            image_input: d_image_input(),
            image_output: d_image_output(),
            text_input: d_text_input(),
            text_output: d_text_output(),
            text_mask: None,
        }
    }
}

fn default_resize() -> String {
    "shortest_side".into()
}
fn default_crop() -> String {
    "center".into()
}
fn default_interpolation() -> String {
    "bicubic".into()
}
fn d_image_input() -> String {
    "pixel_values".into()
}
fn d_image_output() -> String {
    "image_embeds".into()
}
fn d_text_input() -> String {
    "input_ids".into()
}
fn d_text_output() -> String {
    "text_embeds".into()
}

impl Manifest {
    /// Reads and checks `dir/model.json`, and that every file it names exists.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let path = dir.join(MANIFEST_FILE);
        if !dir.is_dir() {
            return Err(EmbedError::PackageMissing { dir: dir.to_path_buf() });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| EmbedError::Manifest {
            path: path.clone(),
            reason: format!("cannot read it ({e})"),
        })?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| EmbedError::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        m.check(&path)?;
        for (role, file) in m.files_in_use(false) {
            let p = dir.join(file);
            if !p.is_file() {
                return Err(EmbedError::FileMissing {
                    path: p,
                    role,
                    manifest: path.clone(),
                });
            }
        }
        Ok(m)
    }

    fn check(&self, path: &Path) -> Result<(), EmbedError> {
        let bad = |reason: String| EmbedError::Manifest {
            path: path.to_path_buf(),
            reason,
        };
        if self.format != FORMAT {
            return Err(bad(format!(
                "format {} is not supported by this vidseek (it reads format {FORMAT})",
                self.format
            )));
        }
        if self.name.trim().is_empty() {
            return Err(bad("\"name\" is empty".into()));
        }
        if self.embedding_dim == 0 {
            return Err(bad("\"embedding_dim\" must be > 0".into()));
        }
        if self.image.size == 0 {
            return Err(bad("\"image.size\" must be > 0".into()));
        }
        if self.image.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) || self.image.mean.iter().any(|m| !m.is_finite())
        {
            return Err(bad("\"image.mean\"/\"image.std\" must be finite, std > 0".into()));
        }
        if self.image.resize != "shortest_side" {
            return Err(bad(format!(
                "\"image.resize\" is {:?}; this vidseek supports \"shortest_side\"",
                self.image.resize
            )));
        }
        if self.image.crop != "center" {
            return Err(bad(format!(
                "\"image.crop\" is {:?}; this vidseek supports \"center\"",
                self.image.crop
            )));
        }
        if !matches!(self.image.interpolation.as_str(), "bicubic" | "bilinear") {
            return Err(bad(format!(
                "\"image.interpolation\" is {:?}; use \"bicubic\" or \"bilinear\"",
                self.image.interpolation
            )));
        }
        if self.text.context_length < 2 {
            return Err(bad("\"text.context_length\" must be >= 2".into()));
        }
        Ok(())
    }

    /// (role, file name) of each file the engine opens; `fp16` picks the half graphs.
    pub fn files_in_use(&self, fp16: bool) -> Vec<(&'static str, &str)> {
        let (v, t) = match (&self.fp16, fp16) {
            (Some(h), true) => (h.visual.as_str(), h.textual.as_str()),
            _ => (self.files.visual.as_str(), self.files.textual.as_str()),
        };
        vec![
            ("image tower", v),
            ("text tower", t),
            ("tokenizer", self.files.tokenizer.as_str()),
        ]
    }

    pub fn path_of(dir: &Path, file: &str) -> PathBuf {
        dir.join(file)
    }
}
