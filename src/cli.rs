//! `cli`: the command line (clap). Parses, calls the library, prints. Every command is
//! a thin shell over the same functions the HTTP API and the tests call.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config;
use crate::decode;
use crate::embed::{self, Device, EmbedOptions, Embedder};
use crate::modelhub;
use crate::synth;

#[derive(Parser, Debug)]
#[command(
    name = "vidseek",
    version,
    about = "Self-hosted text-to-video semantic search"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after the subcommand.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Data folder (database, indexes, thumbnails).
    #[arg(long, global = true, env = "VIDSEEK_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Model package folder (model.json + ONNX graphs + tokenizer.json).
    #[arg(long, global = true, env = "VIDSEEK_MODEL", value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// ONNX Runtime shared library (libonnxruntime.so) or its folder.
    #[arg(long, global = true, env = "ORT_DYLIB_PATH", value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Where inference runs: auto (CUDA if usable, else CPU), cpu, cuda.
    #[arg(long, global = true, env = "VIDSEEK_DEVICE", default_value = "auto")]
    pub device: Device,
    /// Threads per inference session (default: one per core).
    #[arg(long, global = true, env = "VIDSEEK_THREADS", value_name = "N")]
    pub threads: Option<usize>,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Global {
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(config::default_data_dir)
    }
    pub fn model_dir(&self) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(|| config::default_model_dir(&self.data_dir()))
    }
    pub fn embed_options(&self) -> EmbedOptions {
        EmbedOptions {
            ort_lib: self.ort_lib.clone(),
            device: self.device,
            intra_threads: self.threads,
        }
    }
    pub fn load_model(&self) -> Result<Embedder> {
        let dir = self.model_dir();
        Ok(Embedder::load(&dir, &self.embed_options())?)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Embed a sentence or an image and print the CLIP vector.
    #[command(subcommand)]
    Embed(EmbedCmd),
    /// Report ONNX Runtime, execution providers, FFmpeg and the model package.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Get, import and list model packages.
    #[command(subcommand)]
    Model(ModelCmd),
    /// Offline demo: render synthetic scenes and classify them zero-shot.
    Demo {
        /// Frames to render.
        #[arg(long, default_value_t = 64)]
        frames: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum EmbedCmd {
    /// Embed a sentence.
    Text {
        text: String,
        #[arg(long)]
        json: bool,
    },
    /// Embed an image file (PNG, JPEG, ...; decoded by FFmpeg).
    Image {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ModelCmd {
    /// Download a known ONNX CLIP from Hugging Face and make it a package (needs internet).
    Pull {
        name: String,
        /// Target folder (default: <data>/models/NAME).
        #[arg(long)]
        dest: Option<PathBuf>,
    },
    /// Convert a local model folder (Immich or Hugging Face layout) into a package.
    Import { src: PathBuf, dest: PathBuf },
    /// List the models `pull` knows.
    List,
    /// Validate a package (default: the configured model).
    Check { dir: Option<PathBuf> },
}

pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Embed(cmd) => embed_cmd(g, cmd),
        Command::Doctor { json } => doctor(g, *json),
        Command::Model(cmd) => model_cmd(g, cmd),
        Command::Demo { frames, json } => demo(g, *frames, *json),
    }
}

fn print_embedding(model: &Embedder, v: &[f32], json: bool) {
    if json {
        println!(
            "{}",
            json!({"model": model.model_name(), "dim": v.len(), "embedding": v})
        );
    } else {
        let head: Vec<String> = v.iter().take(8).map(|x| format!("{x:.4}")).collect();
        println!(
            "model {} ({}), dim {}: [{}, ...]",
            model.model_name(),
            model.provider(),
            v.len(),
            head.join(", ")
        );
    }
}

fn embed_cmd(g: &Global, cmd: &EmbedCmd) -> Result<()> {
    match cmd {
        EmbedCmd::Text { text, json } => {
            if text.trim().is_empty() {
                bail!(
                    "the text is empty: give a sentence, e.g. vidseek embed text \"a red circle\""
                );
            }
            let model = g.load_model()?;
            let e = model.embed_texts(&[text.as_str()])?;
            print_embedding(&model, e.row(0), *json);
        }
        EmbedCmd::Image { file, json } => {
            let img = decode::image(file)?;
            let model = g.load_model()?;
            let e = model.embed_images(&[img])?;
            print_embedding(&model, e.row(0), *json);
        }
    }
    Ok(())
}

fn doctor(g: &Global, json: bool) -> Result<()> {
    let mut ok = true;
    let mut report = serde_json::Map::new();
    let mut lines = Vec::new();

    match embed::runtime::init(g.ort_lib.as_deref()) {
        Ok(rt) => {
            let providers = embed::runtime::available_providers();
            report.insert(
                "onnxruntime".into(),
                json!({"library": rt.library, "version": rt.version, "providers": providers}),
            );
            lines.push(format!(
                "ONNX Runtime   {} (version {})",
                rt.library.display(),
                rt.version
            ));
            lines.push(format!("providers      {}", providers.join(", ")));
        }
        Err(e) => {
            ok = false;
            report.insert("onnxruntime".into(), json!({"error": e.to_string()}));
            lines.push(format!("ONNX Runtime   MISSING: {e}"));
        }
    }

    let ff = decode::library_versions();
    lines.push(format!(
        "FFmpeg         {}",
        ff.iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    report.insert(
        "ffmpeg".into(),
        serde_json::Value::Object(ff.iter().map(|(n, v)| (n.to_string(), json!(v))).collect()),
    );

    let dir = g.model_dir();
    match Embedder::load(&dir, &g.embed_options()) {
        Ok(m) => {
            let man = m.manifest();
            lines.push(format!(
                "model          {} ({}, dim {}, image {}px, context {}): valid",
                dir.display(),
                man.name,
                man.embedding_dim,
                man.image.size,
                man.text.context_length
            ));
            lines.push(format!(
                "device         {:?} -> running on {}",
                g.device,
                m.provider()
            ));
            if man.name.starts_with("tiny-clip") {
                lines.push(
                    "note           this is the bundled synthetic-domain model (coloured shapes only); \
                     for real footage run `vidseek model pull clip-vit-b32` where there is internet"
                        .into(),
                );
            }
            report.insert(
                "model".into(),
                json!({"dir": dir, "name": man.name, "dim": man.embedding_dim, "valid": true, "provider": m.provider(), "device": g.device}),
            );
        }
        Err(e) => {
            ok = false;
            lines.push(format!("model          INVALID: {e}"));
            report.insert(
                "model".into(),
                json!({"dir": dir, "valid": false, "error": e.to_string()}),
            );
        }
    }
    lines.push(format!("data           {}", g.data_dir().display()));
    report.insert("data".into(), json!(g.data_dir()));
    report.insert("ok".into(), json!(ok));

    if json {
        println!("{}", serde_json::Value::Object(report));
    } else {
        for l in lines {
            println!("{l}");
        }
    }
    if !ok {
        bail!("vidseek is not ready: see the lines above");
    }
    Ok(())
}

fn model_cmd(g: &Global, cmd: &ModelCmd) -> Result<()> {
    match cmd {
        ModelCmd::Pull { name, dest } => {
            let dest = dest
                .clone()
                .unwrap_or_else(|| g.data_dir().join("models").join(name));
            let m = modelhub::pull(name, &dest, g.ort_lib.as_deref())?;
            println!(
                "{} ready in {} (dim {}); use it with --model {} or VIDSEEK_MODEL",
                m.name,
                dest.display(),
                m.embedding_dim,
                dest.display()
            );
        }
        ModelCmd::Import { src, dest } => {
            let m = modelhub::import(src, dest, None, g.ort_lib.as_deref())
                .with_context(|| format!("importing {}", src.display()))?;
            println!(
                "{} imported into {} (dim {})",
                m.name,
                dest.display(),
                m.embedding_dim
            );
        }
        ModelCmd::List => {
            for k in modelhub::KNOWN {
                println!("{:<22} {} (huggingface.co/{})", k.name, k.about, k.repo);
            }
        }
        ModelCmd::Check { dir } => {
            let dir = dir.clone().unwrap_or_else(|| g.model_dir());
            let m = Embedder::load(&dir, &g.embed_options())?;
            println!(
                "{}: {} is valid (dim {}, {})",
                dir.display(),
                m.model_name(),
                m.dim(),
                m.provider()
            );
        }
    }
    Ok(())
}

/// Renders random scenes of the synthetic domain and classifies each against every
/// canonical caption: what the bundled model understands, with no files or network.
fn demo(g: &Global, frames: usize, json: bool) -> Result<()> {
    let model = g.load_model()?;
    let mut captions = Vec::new();
    let mut labels = Vec::new();
    for bg in synth::Colour::ALL {
        captions.push(synth::Scene::empty(bg).caption());
        labels.push((bg, None));
        for c in synth::Colour::ALL.into_iter().filter(|c| *c != bg) {
            for s in synth::Shape::ALL {
                captions.push(synth::Scene::new(c, s, bg).caption());
                labels.push((bg, Some((s, c))));
            }
        }
    }
    let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
    let text = model.embed_texts(&refs)?;
    let mut rng = synth::Rng::new(2024);
    let sizes = [(640, 360), (480, 480), (360, 640), (640, 480)];
    let mut correct = 0;
    let mut rows = Vec::new();
    for i in 0..frames {
        let scene = synth::Scene::random(&mut rng, 0.1);
        let (w, h) = sizes[i % sizes.len()];
        let img = synth::render(&scene, w, h, &mut rng);
        let e = model.embed_images(&[img])?;
        let (best, score) = text
            .rows()
            .map(|t| dot(t, e.row(0)))
            .enumerate()
            .fold((0, f32::MIN), |a, (j, s)| if s > a.1 { (j, s) } else { a });
        let hit = labels[best] == (scene.bg, scene.shape);
        correct += hit as usize;
        rows.push(json!({"truth": scene.caption(), "predicted": captions[best], "score": score, "correct": hit}));
        if !json {
            println!(
                "{} {:<44} -> {:<44} {:.3}",
                if hit { "ok  " } else { "MISS" },
                scene.caption(),
                captions[best],
                score
            );
        }
    }
    let acc = correct as f64 / frames.max(1) as f64;
    if json {
        println!(
            "{}",
            json!({"model": model.model_name(), "provider": model.provider(), "accuracy": acc, "frames": rows})
        );
    } else {
        println!(
            "\n{correct}/{frames} frames classified exactly (accuracy {acc:.3}) by {} on {}",
            model.model_name(),
            model.provider()
        );
    }
    Ok(())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
