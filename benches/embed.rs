//! `cargo bench --bench embed`: throughput of the embedding runtime on this machine.
//!
//! For the bundled tiny model and (when present) the random-init ViT-B/32 package:
//! images/s at batch 1, 8 and 32 (preprocessed input), the cost of CLIP preprocessing of
//! a 1280x720 frame, text queries/s, and short-query latency at the true token length
//! against padding to the context length. Medians of repeated runs; results also in
//! benches/results/embed.json.

#[path = "util.rs"]
mod util;

use serde_json::json;
use vidseek::{Device, EmbedOptions, Embedder};

const USAGE: &str = "cargo bench --bench embed (BENCH_REPS=N: repetitions, default 15)";

fn bench_model(dir: &std::path::Path, reps: usize) -> serde_json::Value {
    let opts = EmbedOptions {
        device: Device::Cpu,
        ..EmbedOptions::default()
    };
    let model = Embedder::load(dir, &opts).expect("model loads");
    let per = model.pixels_per_image();
    let mut rng = vidseek::Rng::new(1);
    let frame = vidseek::render(&vidseek::Scene::random(&mut rng, 0.0), 1280, 720, &mut rng);
    let mut one = vec![0f32; per];
    let pre = util::time_runs(3, reps * 3, || model.preprocess(&frame, &mut one).unwrap());

    let mut images = Vec::new();
    for batch in [1usize, 8, 32] {
        let pixels: Vec<f32> = one.iter().copied().cycle().take(per * batch).collect();
        let runs = util::time_runs(2, reps, || {
            model.embed_pixels(&pixels).unwrap();
        });
        let med = util::median(&runs);
        images.push(
            json!({"batch": batch, "median_ms": util::ms(med), "images_per_s": batch as f64 / med.as_secs_f64()}),
        );
    }

    let query = "a red circle";
    let ids = model.tokenize(query).unwrap();
    let ctx = model.manifest().text.context_length;
    let true_len = util::time_runs(3, reps * 4, || {
        model.embed_token_ids(std::slice::from_ref(&ids), None).unwrap();
    });
    let padded = util::time_runs(3, reps * 4, || {
        model.embed_token_ids(std::slice::from_ref(&ids), Some(ctx)).unwrap();
    });
    let full = util::time_runs(3, reps * 4, || {
        model.embed_texts(&[query]).unwrap();
    });
    json!({
        "model": model.model_name(),
        "provider": model.provider(),
        "preprocess_1280x720_ms": util::ms(util::median(&pre)),
        "images": images,
        "text": {
            "query": query,
            "tokens": ids.len(),
            "true_length_ms": util::ms(util::median(&true_len)),
            "padded_to_context_ms": util::ms(util::median(&padded)),
            "padded_over_true_length": util::median(&padded).as_secs_f64() / util::median(&true_len).as_secs_f64(),
            "queries_per_s": 1.0 / util::median(&full).as_secs_f64(),
        }
    })
}

fn main() {
    util::args(USAGE);
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let mut models = vec![bench_model(&util::root().join("models/tiny-clip"), reps)];
    if let Some(dir) = util::vit_b32_dir() {
        models.push(bench_model(&dir, reps.div_ceil(2)));
    }
    println!("machine: {}\n", util::machine());
    println!(
        "| model | img/s b1 | img/s b8 | img/s b32 | preprocess 720p (ms) | text q/s | query true length (ms) | padded to 77 (ms) | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for m in &models {
        let img = |i: usize| m["images"][i]["images_per_s"].as_f64().unwrap();
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {:.2} | {:.1}x |",
            m["model"].as_str().unwrap(),
            img(0),
            img(1),
            img(2),
            m["preprocess_1280x720_ms"].as_f64().unwrap(),
            m["text"]["queries_per_s"].as_f64().unwrap(),
            m["text"]["true_length_ms"].as_f64().unwrap(),
            m["text"]["padded_to_context_ms"].as_f64().unwrap(),
            m["text"]["padded_over_true_length"].as_f64().unwrap(),
        );
    }
    util::write_report("embed", &json!({"machine": util::machine(), "models": models}));
}
