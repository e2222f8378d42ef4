//! Model packages: `model pull|import|list|check|status|use` and `reembed`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::args::{Global, ModelCmd};
use super::index::{open_for_maintenance, progress_bar};
use super::runtime;
use crate::catalog::JobKind;
use crate::embed::Embedder;
use crate::jobs;
use crate::modelhub;

pub(super) fn reembed(g: &Global, json: bool) -> Result<()> {
    let Some(dir) = g.model.clone() else {
        bail!("give the model to re-embed with: vidseek --model DIR reembed (or `vidseek model use DIR`)");
    };
    model_use(g, Some(&dir), false, json)
}

/// `vidseek model use DIR`: the switch in the foreground (the server does the same in
/// the background through POST /api/model).
pub(super) fn model_use(g: &Global, dir: Option<&std::path::Path>, cancel: bool, json: bool) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let catalog = open_for_maintenance(g).await?;
        if cancel {
            let had = catalog.pending_switch().await?;
            catalog.cancel_switch().await?;
            if let Some(s) = had {
                catalog.queue().cancel(s.job_id).await?;
                println!("switch to {} abandoned; the library stays with {}", s.model, catalog.model());
            } else {
                println!("no switch is under way");
            }
            return Ok(());
        }
        let dir = dir.expect("clap requires DIR without --cancel");
        let target = Arc::new(Embedder::load(dir, &g.embed_options())?);
        if target.model_name() == catalog.model() {
            println!("the library already uses {}", target.model_name());
            catalog.remember_model_dir(dir).await?;
            return Ok(());
        }
        // Resume the switch to this model when one is under way, else start one.
        let job = match catalog.pending_switch().await? {
            Some(s) if s.model == target.model_name() => s.job_id,
            Some(s) => bail!(
                "a switch to {} is under way: finish it (vidseek model use {}) or abandon it (vidseek model use --cancel)",
                s.model,
                s.dir.display()
            ),
            None => {
                let d = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
                jobs::Queue::new(&catalog).submit(JobKind::Switch, &[d.display().to_string()]).await?
            }
        };
        jobs::Queue::new(&catalog).requeue_interrupted().await?;
        let (sink, bar) = progress_bar(json);
        let report = jobs::run_switch(&catalog, target.clone(), dir, job, sink, Arc::new(AtomicBool::new(false))).await;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let report = report?;
        catalog.close().await;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "switched from {} to {}: {} videos, {} frames re-embedded in {:.1} s",
                report.from, report.to, report.videos, report.frames, report.wall_seconds
            );
            for p in &report.not_reembedded {
                eprintln!("  not re-embedded (missing or changed; index it again): {p}");
            }
        }
        anyhow::Ok(())
    })
}

pub(super) fn model_cmd(g: &Global, cmd: &ModelCmd) -> Result<()> {
    match cmd {
        ModelCmd::Pull {
            name,
            dest,
            revision,
            variant,
            json,
        } => {
            let k = modelhub::known(name)?;
            let dest = dest.clone().unwrap_or_else(|| g.data_dir().join("models").join(k.name));
            let opts = modelhub::PullOptions {
                revision: revision.clone(),
                variant: *variant,
                ort_lib: g.ort_lib.clone(),
                progress: !json,
            };
            let (m, report) = modelhub::pull(name, &dest, &opts)?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"model": m, "dir": dest, "pull": report}))?
                );
            } else {
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
            }
        }
        ModelCmd::Import {
            src,
            dest,
            name,
            variant,
        } => {
            let opts = modelhub::ImportOptions {
                name: name.clone(),
                variant: *variant,
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
        }
        ModelCmd::List { json } => {
            if *json {
                let list: Vec<_> = modelhub::KNOWN
                    .iter()
                    .map(|k| {
                        json!({"name": k.name, "repo": k.repo, "revision": k.revision, "layout": k.layout,
                               "dim": k.dim, "image_size": k.image_size, "languages": k.languages,
                               "licence": k.licence, "download_mb": k.download_mb,
                               "relative_speed": k.relative_speed(), "about": k.about, "limits": k.limits})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&json!({ "models": list }))?);
            } else {
                println!(
                    "{:<26} {:>4} {:>5}  {:<30} {:<22} {:>7} {:>6}  pinned",
                    "name", "dim", "image", "languages", "licence", "MB", "speed"
                );
                for k in modelhub::KNOWN {
                    println!(
                        "{:<26} {:>4} {:>5}  {:<30} {:<22} {:>7} {:>5.2}x  {}",
                        k.name,
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
            }
        }
        ModelCmd::Status { json } => {
            let rt = runtime()?;
            let (model, dir, switch) = rt.block_on(async {
                let i = crate::catalog::info(&g.data_dir()).await?;
                anyhow::Ok((i.model, i.model_dir, i.switch))
            })?;
            if *json {
                println!(
                    "{}",
                    json!({"active": {"name": model.as_ref().map(|m| &m.0), "dim": model.as_ref().map(|m| m.1), "dir": dir}, "switch": switch})
                );
            } else {
                match &model {
                    Some((name, dim)) => println!(
                        "model   {name} (dim {dim}){}",
                        dir.map(|d| format!(", {}", d.display())).unwrap_or_default()
                    ),
                    None => println!("model   none yet (the library is empty)"),
                }
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
        }
        ModelCmd::Use { dir, cancel, json } => {
            model_use(g, dir.as_deref(), *cancel, *json)?;
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
