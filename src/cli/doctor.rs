//! `vidseek doctor`: whether ONNX Runtime, FFmpeg and the model package are usable.

use std::path::Path;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::args::Global;
use super::output::Output;
use crate::decode;
use crate::embed::{self, Embedder, Manifest};
use crate::modelhub;

/// What the checks found: lines for a person, the same as JSON, and whether vidseek
/// can run.
struct Findings {
    ok: bool,
    report: serde_json::Map<String, Value>,
    lines: Vec<String>,
}

impl Findings {
    fn line(&mut self, l: String) {
        self.lines.push(l);
    }
    fn field(&mut self, key: &str, v: Value) {
        self.report.insert(key.into(), v);
    }
}

pub(super) fn doctor(g: &Global, out: Output) -> Result<()> {
    let mut f = Findings {
        ok: true,
        report: serde_json::Map::new(),
        lines: Vec::new(),
    };
    onnx_runtime(g, &mut f);
    ffmpeg(&mut f);
    model(g, &mut f);
    f.line(format!("data           {}", g.data_dir().display()));
    f.field("data", json!(g.data_dir()));
    f.field("ok", json!(f.ok));
    let Findings { ok, report, lines } = f;
    out.print_line(&Value::Object(report), || lines.iter().for_each(|l| println!("{l}")))?;
    if !ok {
        bail!("vidseek is not ready: see the lines above");
    }
    Ok(())
}

fn onnx_runtime(g: &Global, f: &mut Findings) {
    match embed::runtime::init(g.ort_lib.as_deref()) {
        Ok(rt) => {
            let providers = embed::runtime::available_providers();
            f.field(
                "onnxruntime",
                json!({"library": rt.library, "version": rt.version, "providers": providers}),
            );
            f.line(format!(
                "ONNX Runtime   {} (version {})",
                rt.library.display(),
                rt.version
            ));
            f.line(format!("providers      {}", providers.join(", ")));
        }
        Err(e) => {
            f.ok = false;
            f.field("onnxruntime", json!({"error": e.to_string()}));
            f.line(format!("ONNX Runtime   MISSING: {e}"));
        }
    }
}

fn ffmpeg(f: &mut Findings) {
    let ff = decode::library_versions();
    f.line(format!(
        "FFmpeg         {}",
        ff.iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    f.field(
        "ffmpeg",
        Value::Object(ff.iter().map(|(n, v)| (n.to_string(), json!(v))).collect()),
    );
}

fn model(g: &Global, f: &mut Findings) {
    let dir = g.model_dir();
    let m = match Embedder::load(&dir, &g.embed_options()) {
        Ok(m) => m,
        Err(e) => {
            f.ok = false;
            f.line(format!("model          INVALID: {e}"));
            f.field("model", json!({"dir": dir, "valid": false, "error": e.to_string()}));
            return;
        }
    };
    let man = m.manifest();
    f.line(format!(
        "model          {} ({}, dim {}, image {}px, context {}): valid",
        dir.display(),
        man.name,
        man.embedding_dim,
        man.image.size,
        man.text.context_length
    ));
    f.line(format!("device         {:?} -> running on {}", g.device, m.provider()));
    layout(&m, f);
    if man.name.starts_with("tiny-clip") {
        f.line(
            "note           this is the bundled synthetic-domain model (coloured shapes only); \
             for real footage run `vidseek model pull clip-vit-b32` where there is internet"
                .into(),
        );
    }
    f.field("model", model_json(g, &dir, &m));
    // A GPU machine's check (`.ci/gpu-run`) accepts no fallback.
    if std::env::var("VIDSEEK_EXPECT_CUDA").is_ok_and(|v| v.trim() == "1") && m.provider() != "CUDA" {
        f.ok = false;
        f.line(format!(
            "expected       CUDA (VIDSEEK_EXPECT_CUDA=1), but the model runs on {}",
            m.provider()
        ));
    }
}

fn model_json(g: &Global, dir: &Path, m: &Embedder) -> Value {
    let man = m.manifest();
    json!({"dir": dir, "name": man.name, "dim": man.embedding_dim, "valid": true, "provider": m.provider(), "device": g.device,
           "threads": g.threads})
}

/// The package's layout, how it runs and scores, and the known model's limits.
fn layout(m: &Embedder, f: &mut Findings) {
    let man = m.manifest();
    let origin = man.origin.clone().unwrap_or_default();
    let known = modelhub::KNOWN
        .iter()
        .find(|k| Some(k.repo) == origin.repo.as_deref() || k.name == man.name);
    let sc = man.scoring();
    f.line(layout_line(m, man));
    if let Some(k) = known {
        f.line(format!("limits         {} ({}; {})", k.limits, k.languages, k.licence));
    }
    f.field(
        "layout",
        json!({"origin": origin, "image_batch": m.image_batch(), "text_batch": m.text_batch(),
               "scoring": sc, "limits": known.map(|k| k.limits), "languages": known.map(|k| k.languages)}),
    );
}

fn layout_line(m: &Embedder, man: &Manifest) -> String {
    let origin = man.origin.clone().unwrap_or_default();
    let sc = man.scoring();
    format!(
        "layout         {}{}{}; image {} px {} {}{}; text {} tokens{}{}, clean-up {:?}; scores {:?} (scale {}{})",
        if origin.layout.is_empty() {
            "vidseek"
        } else {
            origin.layout.as_str()
        },
        origin.variant.as_deref().map(|v| format!(", {v}")).unwrap_or_default(),
        match (&origin.repo, &origin.revision) {
            (Some(r), Some(c)) => format!(", {r}@{}", &c[..c.len().min(12)]),
            _ => String::new(),
        },
        man.image.size,
        man.image.resize,
        man.image.interpolation,
        m.image_batch()
            .map(|b| format!(", fixed batch {b}"))
            .unwrap_or_default(),
        man.text.context_length,
        if man.text.dynamic_length && !man.text.pad_to_context {
            " (run at true length)"
        } else {
            " (padded)"
        },
        m.text_batch().map(|b| format!(", fixed batch {b}")).unwrap_or_default(),
        man.text.clean,
        sc.link,
        sc.logit_scale,
        sc.logit_bias.map(|b| format!(", bias {b}")).unwrap_or_default()
    )
}
