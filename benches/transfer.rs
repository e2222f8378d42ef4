//! `cargo bench --bench transfer`: the cost of the CLIP paper's transfer machinery.
//!
//! - Few-shot probe training (`search::probe::train`) on 512-d vectors: 1, 5 and 20
//!   positives against 1,000 background frames (what `--like` trains on), median of 20.
//! - Zero-shot tagging (`search::tags::Tagger::tags_of`) of one frame against a
//!   vocabulary of 414 labels (the built-in list's size) at 512-d: frames per second on
//!   one core, and what that makes of retagging 1,000,000 frames.
//! - The prompt ensemble's one-time cost per short query with the tiny model: 80
//!   templates embedded (then cached) against one sentence.
//!
//! Writes benches/results/transfer.json.

#[path = "util.rs"]
mod util;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use vidseek::{Device, EmbedOptions, Embedder, Rng, Tagger, Vocabulary, train_probe};

const USAGE: &str = "cargo bench --bench transfer";

const DIM: usize = 512;

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn random_unit(rng: &mut Rng) -> Vec<f32> {
    unit((0..DIM).map(|_| rng.normal() as f32).collect())
}

/// A vector near `centre` (cosine about 0.9).
fn near(rng: &mut Rng, centre: &[f32]) -> Vec<f32> {
    let noise = random_unit(rng);
    unit(centre.iter().zip(&noise).map(|(c, n)| c + 0.45 * n).collect())
}

/// Few-shot probe training, 1, 5 and 20 positives near one direction against the
/// `background` frames: a report entry per size.
fn probe_training(rng: &mut Rng, centres: &[Vec<f32>], background: &[Vec<f32>]) -> Vec<serde_json::Value> {
    let target = random_unit(rng);
    let mut probes = Vec::new();
    for n in [1usize, 5, 20] {
        let pos: Vec<Vec<f32>> = (0..n).map(|_| near(rng, &target)).collect();
        let runs = util::time_runs(2, 20, || {
            std::hint::black_box(train_probe(&pos, &[], background, None, 100.0));
        });
        let p = train_probe(&pos, &[], background, None, 100.0);
        let held_out = near(rng, &target);
        let other = near(rng, &centres[0]);
        eprintln!(
            "probe, {n} positives vs 1000: median {:.1} ms (p(held-out like) {:.3}, p(other) {:.3})",
            util::ms(util::median(&runs)),
            p.prob(&held_out),
            p.prob(&other)
        );
        probes.push(json!({
            "positives": n, "background": 1000, "dim": DIM,
            "median_ms": util::ms(util::median(&runs)),
            "p_held_out_positive": p.prob(&held_out), "p_other_content": p.prob(&other),
        }));
    }

    probes
}

/// Zero-shot tagging of 2,000 frames against 414 labels: seconds per frame on one core.
fn tagging(rng: &mut Rng, centres: &[Vec<f32>]) -> f64 {
    let labels: Vec<String> = (0..414).map(|i| format!("label {i}")).collect();
    let rows: Vec<f32> = (0..414).flat_map(|_| random_unit(rng)).collect();
    let vocab = Arc::new(Vocabulary::new(labels, DIM, rows));
    let tagger = Tagger::new(vocab.clone(), vocab, 100.0, None);
    let frames: Vec<Vec<f32>> = (0..2000).map(|i| near(rng, &centres[i % 50])).collect();
    let runs = util::time_runs(1, 7, || {
        for f in &frames {
            std::hint::black_box(tagger.tags_of(f));
        }
    });
    let per_frame = util::median(&runs).as_secs_f64() / frames.len() as f64;
    eprintln!(
        "tagging: {:.0} frames/s against 414 labels at 512-d (1M frames: {:.0} s on one core)",
        1.0 / per_frame,
        per_frame * 1e6
    );

    per_frame
}

/// The prompt ensemble with the tiny model on one thread: (templates, one sentence's
/// runs, the ensemble's runs).
fn ensemble() -> (usize, Vec<Duration>, Vec<Duration>) {
    let model_dir = util::root().join("models/tiny-clip");
    let model = Embedder::load(
        &model_dir,
        &EmbedOptions {
            ort_lib: None,
            device: Device::Cpu,
            intra_threads: Some(1),
            ..EmbedOptions::default()
        },
    )
    .expect("the tiny model loads (ORT_DYLIB_PATH must name libonnxruntime)");
    let templates = vidseek::read_templates(&util::root().join("models/openai-templates.txt")).unwrap();
    let filled: Vec<String> = templates.iter().map(|t| t.replacen("{}", "red circle", 1)).collect();
    let refs: Vec<&str> = filled.iter().map(String::as_str).collect();
    let one = util::time_runs(3, 30, || {
        model.embed_texts(&["a red circle"]).unwrap();
    });
    let ensemble = util::time_runs(1, 10, || {
        model.embed_texts(&refs).unwrap();
    });
    eprintln!(
        "tiny model, one thread: one sentence {:.2} ms, the 80-template ensemble {:.1} ms (once per query, then cached)",
        util::ms(util::median(&one)),
        util::ms(util::median(&ensemble))
    );
    (templates.len(), one, ensemble)
}

fn main() {
    util::args(USAGE);
    let mut rng = Rng::new(7);
    // Background: frames around 50 "content" directions, as a library is.
    let centres: Vec<Vec<f32>> = (0..50).map(|_| random_unit(&mut rng)).collect();
    let background: Vec<Vec<f32>> = (0..1000).map(|i| near(&mut rng, &centres[i % 50])).collect();
    let probes = probe_training(&mut rng, &centres, &background);
    let per_frame = tagging(&mut rng, &centres);
    let (templates, one, ensemble) = ensemble();
    util::write_report(
        "transfer",
        &json!({
            "machine": util::machine(),
            "probe_training": probes,
            "tagging": {"labels": 414, "dim": DIM, "frames_per_second_one_core": 1.0 / per_frame,
                        "seconds_per_million_frames": per_frame * 1e6},
            "ensemble_tiny_model_one_thread": {"templates": templates,
                "one_sentence_ms": util::ms(util::median(&one)), "ensemble_ms": util::ms(util::median(&ensemble))},
        }),
    );
}
