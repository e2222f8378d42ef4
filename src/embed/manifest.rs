//! The model package manifest (`model.json`); the format is documented in
//! models/README.md. Everything model-specific the engine needs comes from here:
//! nothing elsewhere knows ViT-B/32's numbers.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::EmbedError;

/// The manifest format this build writes. It reads format 1 too (tiny-clip and older
/// packages): every field added in format 2 has a default that means what format 1 did.
pub const FORMAT: u32 = 2;
pub const MANIFEST_FILE: &str = "model.json";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
/// A model package's manifest (`model.json`; models/README.md documents every field).
pub struct Manifest {
    /// Format version of this file (1).
    pub format: u32,
    /// Model identity; recorded in every index built with it.
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    /// What the model is, for people.
    pub description: String,
    /// Length of the (unnormalised) output vectors of both towers.
    pub embedding_dim: usize,
    /// exp(learned temperature) of the model, when known (for calibrated scores).
    /// Format 1's way to say it; format 2 writes `scoring`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_scale: Option<f32>,
    /// How a cosine similarity becomes a probability (see [`Scoring`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<Scoring>,
    /// How images are preprocessed.
    pub image: ImageSpec,
    /// How text is tokenized.
    pub text: TextSpec,
    /// The files of the package.
    pub files: Files,
    /// Optional half-precision graphs, used with `--device cuda`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp16: Option<Fp16Files>,
    #[serde(default)]
    /// Graph input and output names.
    pub io: Io,
    /// Where the package came from: the layout it was imported from, the variant
    /// chosen, the hub repository and the commit (shown by `doctor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// How scores are turned into probabilities: CLIP's softmax over candidates scaled by
/// `logit_scale`, or SigLIP's independent sigmoid of `logit_scale * cos + logit_bias`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    pub link: Link,
    /// exp(learned temperature).
    pub logit_scale: f32,
    /// The learned bias of sigmoid-scored models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<f32>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    Softmax,
    Sigmoid,
}

/// Provenance of an imported or pulled package.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// The layout it was converted from ("immich-openclip", "transformers.js", ...).
    pub layout: String,
    /// "fp32", "fp16" or "quantized".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Hugging Face repository and the commit it was downloaded at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// How text is cleaned before tokenizing, as the model was trained.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TextClean {
    /// OpenAI CLIP's `basic_clean` (ftfy's fixes, HTML unescaping) and whitespace
    /// collapsing (open_clip's "whitespace"; format 1's only behaviour).
    #[default]
    #[serde(alias = "clip")]
    Whitespace,
    /// open_clip's `canonicalize_text(basic_clean(x))`: `_` to space, ASCII punctuation
    /// removed, lower-cased, whitespace collapsed (SigLIP).
    Canonicalize,
    /// Whitespace, then lower-cased.
    Lower,
    /// The text as given (only trimmed).
    None,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Side of the square model input.
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// "shortest_side": resize so the shorter side equals `size`, keeping aspect, then
    /// crop; "squash": resize both sides to `size`, whatever the aspect ratio.
    #[serde(default = "default_resize")]
    pub resize: String,
    /// "center": crop the central `size` x `size` square ("none" with "squash").
    #[serde(default = "default_crop")]
    pub crop: String,
    /// "bicubic" (CLIP) or "bilinear".
    #[serde(default = "default_interpolation")]
    pub interpolation: String,
    /// The batch size the image graph is fixed at (None: any batch size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
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
    /// Token put before the text (None: the tokenizer has none, as SigLIP's).
    pub start_id: Option<u32>,
    /// Token put after the text (kept when the text is truncated).
    pub end_id: u32,
    #[serde(default)]
    pub pad_id: u32,
    /// Always pad to `context_length`: a tower without a causal mask that pools at the
    /// last position (SigLIP) gives another vector for a shorter input.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pad_to_context: bool,
    #[serde(default)]
    pub clean: TextClean,
    /// The batch size the text graph is fixed at (None: any batch size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Files {
    pub visual: String,
    pub textual: String,
    pub tokenizer: String,
    /// Files holding weights outside the graphs (ONNX external data), relative to the
    /// package folder; each must sit where its graph names it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_data: Vec<String>,
    /// The model's label vocabulary (one label a line, `#` comments): what the search
    /// cut-off competes a query against. Without it, the built-in everyday list is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// The model's prompt templates (one a line, each with `{}` where the label or the
    /// short query goes, `#` comments): the ensemble short queries and labels are
    /// embedded through. Without it, text is embedded as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<String>,
    /// The text tower with dynamically quantised int8 weights (`models/quantize_text.py`),
    /// used on the CPU when asked for (`--text-int8`): same inputs and outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub textual_int8: Option<String>,
    /// The text tower with ONNX Runtime's fused CPU kernels (attention, LayerNorm with
    /// the residual, GELU; `models/fuse_text.py`): same inputs, outputs and numbers
    /// (checked there), run on the CPU in place of `textual` when listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub textual_fused: Option<String>,
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
    /// An attention-mask input of the text graph (Hugging Face exports, M-CLIP), fed 1
    /// for real tokens and 0 for padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_mask: Option<String>,
    /// Both towers are one graph (`files.visual` = `files.textual`, as a combined
    /// transformers.js `model.onnx`): each run feeds the other tower's inputs a dummy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub combined: bool,
}

impl Default for Io {
    fn default() -> Self {
        Self {
            image_input: d_image_input(),
            image_output: d_image_output(),
            text_input: d_text_input(),
            text_output: d_text_output(),
            text_mask: None,
            combined: false,
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
        if !(1..=FORMAT).contains(&self.format) {
            return Err(bad(format!(
                "format {} is not supported by this vidseek (it reads formats 1 to {FORMAT}): update vidseek",
                self.format
            )));
        }
        if self.format == 1 && self.text.start_id.is_none() {
            return Err(bad("\"text.start_id\" is required in format 1".into()));
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
        match (self.image.resize.as_str(), self.image.crop.as_str()) {
            ("shortest_side", "center") | ("squash", "none" | "center") => {}
            ("shortest_side" | "squash", crop) => {
                return Err(bad(format!(
                    "\"image.crop\" is {crop:?}; use \"center\" with \"shortest_side\", \"none\" with \"squash\""
                )));
            }
            (other, _) => {
                return Err(bad(format!(
                    "\"image.resize\" is {other:?}; this vidseek supports \"shortest_side\" and \"squash\""
                )));
            }
        }
        if self.image.batch == Some(0) || self.text.batch == Some(0) {
            return Err(bad("a fixed \"batch\" must be at least 1".into()));
        }
        if let Some(sc) = &self.scoring {
            if !(sc.logit_scale.is_finite() && sc.logit_scale > 0.0) || sc.logit_bias.is_some_and(|b| !b.is_finite()) {
                return Err(bad(
                    "\"scoring.logit_scale\" must be > 0 and \"logit_bias\" finite".into()
                ));
            }
            if sc.link == Link::Sigmoid && sc.logit_bias.is_none() {
                return Err(bad("\"scoring.link\" sigmoid needs \"logit_bias\"".into()));
            }
        }
        if self.io.combined && self.files.visual != self.files.textual {
            return Err(bad(
                "\"io.combined\" needs files.visual and files.textual to name the same graph".into(),
            ));
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
        let mut files = vec![
            ("image tower", v),
            ("text tower", t),
            ("tokenizer", self.files.tokenizer.as_str()),
        ];
        files.extend(
            self.files
                .external_data
                .iter()
                .map(|f| ("external weights", f.as_str())),
        );
        files.extend(
            self.files
                .textual_fused
                .iter()
                .map(|f| ("fused text tower", f.as_str())),
        );
        files.extend(self.files.labels.iter().map(|f| ("label vocabulary", f.as_str())));
        files.extend(self.files.templates.iter().map(|f| ("prompt templates", f.as_str())));
        files
    }

    /// How scores become probabilities: `scoring` when given, else CLIP's softmax with
    /// format 1's `logit_scale` (100, OpenAI CLIP's, when unknown).
    pub fn scoring(&self) -> Scoring {
        self.scoring.clone().unwrap_or(Scoring {
            link: Link::Softmax,
            logit_scale: self.logit_scale.unwrap_or(100.0),
            logit_bias: None,
        })
    }
}
