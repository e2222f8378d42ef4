//! Quick model checks: `embed text|image` (print a vector) and `zero-shot`.

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::json;

use super::args::{EmbedCmd, Global};
use super::output::Output;
use crate::decode;
use crate::embed::Embedder;
use crate::synth;

/// A vector: in full as JSON, its first values as text.
fn print_embedding(model: &Embedder, v: &[f32], out: Output) -> Result<()> {
    out.print_line(
        &json!({"model": model.model_name(), "dim": v.len(), "embedding": v}),
        || {
            let head: Vec<String> = v.iter().take(8).map(|x| format!("{x:.4}")).collect();
            println!(
                "model {} ({}), dim {}: [{}, ...]",
                model.model_name(),
                model.provider(),
                v.len(),
                head.join(", ")
            );
        },
    )
}

pub(super) fn embed_cmd(g: &Global, cmd: &EmbedCmd) -> Result<()> {
    match cmd {
        EmbedCmd::Text { text, json } => {
            if text.trim().is_empty() {
                bail!("the text is empty: give a sentence, e.g. vidseek embed text \"a red circle\"");
            }
            let model = g.load_model()?;
            let e = model.embed_texts(&[text.as_str()])?;
            print_embedding(&model, e.row(0), Output::new(*json))
        }
        EmbedCmd::Image { file, json } => {
            let img = decode::image(file)?;
            let model = g.load_model()?;
            let e = model.embed_images(&[img])?;
            print_embedding(&model, e.row(0), Output::new(*json))
        }
    }
}

/// One rendered frame classified.
#[derive(Serialize)]
struct Guess {
    truth: String,
    predicted: String,
    score: f32,
    correct: bool,
}

/// Renders random scenes of the synthetic domain and classifies each against every
/// canonical caption: what the bundled model understands, with no files or network.
pub(super) fn zero_shot(g: &Global, frames: usize, out: Output) -> Result<()> {
    let model = g.load_model()?;
    let labels = synth::Scene::canonical();
    let captions: Vec<String> = labels.iter().map(synth::Scene::caption).collect();
    let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
    let text = model.embed_texts(&refs)?;
    let mut rng = synth::Rng::new(2024);
    let sizes = [(640, 360), (480, 480), (360, 640), (640, 480)];
    let mut guesses = Vec::new();
    for i in 0..frames {
        let scene = synth::Scene::random(&mut rng, 0.1);
        let (w, h) = sizes[i % sizes.len()];
        let img = synth::render(&scene, w, h, &mut rng);
        let e = model.embed_images(&[img])?;
        let (best, score) = text
            .rows()
            .map(|t| crate::simd::dot(t, e.row(0)))
            .enumerate()
            .fold((0, f32::MIN), |a, (j, s)| if s > a.1 { (j, s) } else { a });
        guesses.push(Guess {
            truth: scene.caption(),
            predicted: captions[best].clone(),
            score,
            correct: labels[best].same_content(&scene),
        });
    }
    let correct = guesses.iter().filter(|r| r.correct).count();
    let acc = correct as f64 / frames.max(1) as f64;
    let report = json!({"model": model.model_name(), "provider": model.provider(), "accuracy": acc, "frames": guesses});
    out.print_line(&report, || {
        for r in &guesses {
            let mark = if r.correct { "ok  " } else { "MISS" };
            println!("{mark} {:<44} -> {:<44} {:.3}", r.truth, r.predicted, r.score);
        }
        println!(
            "\n{correct}/{frames} frames classified exactly (accuracy {acc:.3}) by {} on {}",
            model.model_name(),
            model.provider()
        );
    })
}
