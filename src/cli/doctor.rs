//! `vidseek doctor`: whether ONNX Runtime, FFmpeg and the model package are usable.

use anyhow::{Result, bail};
use serde_json::json;

use super::args::Global;
use crate::decode;
use crate::embed::{self, Embedder};
use crate::modelhub;

pub(super) fn doctor(g: &Global, json: bool) -> Result<()> {
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
            lines.push(format!("device         {:?} -> running on {}", g.device, m.provider()));
            let origin = man.origin.clone().unwrap_or_default();
            let known = modelhub::KNOWN
                .iter()
                .find(|k| Some(k.repo) == origin.repo.as_deref() || k.name == man.name);
            let sc = man.scoring();
            lines.push(format!(
                "layout         {}{}{}; image {} px {} {}{}; text {} tokens{}{}, clean-up {:?}; scores {:?} (scale {}{})",
                if origin.layout.is_empty() { "vidseek" } else { origin.layout.as_str() },
                origin.variant.as_deref().map(|v| format!(", {v}")).unwrap_or_default(),
                match (&origin.repo, &origin.revision) {
                    (Some(r), Some(c)) => format!(", {r}@{}", &c[..c.len().min(12)]),
                    _ => String::new(),
                },
                man.image.size,
                man.image.resize,
                man.image.interpolation,
                m.image_batch().map(|b| format!(", fixed batch {b}")).unwrap_or_default(),
                man.text.context_length,
                if man.text.dynamic_length && !man.text.pad_to_context { " (run at true length)" } else { " (padded)" },
                m.text_batch().map(|b| format!(", fixed batch {b}")).unwrap_or_default(),
                man.text.clean,
                sc.link,
                sc.logit_scale,
                sc.logit_bias.map(|b| format!(", bias {b}")).unwrap_or_default()
            ));
            if let Some(k) = known {
                lines.push(format!("limits         {} ({}; {})", k.limits, k.languages, k.licence));
            }
            report.insert(
                "layout".into(),
                json!({"origin": origin, "image_batch": m.image_batch(), "text_batch": m.text_batch(),
                       "scoring": sc, "limits": known.map(|k| k.limits), "languages": known.map(|k| k.languages)}),
            );
            if man.name.starts_with("tiny-clip") {
                lines.push(
                    "note           this is the bundled synthetic-domain model (coloured shapes only); \
                     for real footage run `vidseek model pull clip-vit-b32` where there is internet"
                        .into(),
                );
            }
            report.insert(
                "model".into(),
                json!({"dir": dir, "name": man.name, "dim": man.embedding_dim, "valid": true, "provider": m.provider(), "device": g.device,
                       "threads": g.threads}),
            );
            // A GPU machine's check (`.ci/gpu-run`) accepts no fallback.
            if std::env::var("VIDSEEK_EXPECT_CUDA").is_ok_and(|v| v.trim() == "1") && m.provider() != "CUDA" {
                ok = false;
                lines.push(format!(
                    "expected       CUDA (VIDSEEK_EXPECT_CUDA=1), but the model runs on {}",
                    m.provider()
                ));
            }
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
