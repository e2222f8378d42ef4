//! Indexing and the library's videos: `index`, `videos`, `remove`, `prune`, and the
//! job drain and report `index` and `demo` share.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::args::{Global, IndexArgs};
use super::output::Output;
use super::progress::progress_bar;
use super::{runtime, with_library};
use crate::catalog::{Access, Catalog, JobKind, Video, VideoStatus};
use crate::decode::SampleOptions;
use crate::embed::Embedder;
use crate::jobs::{self, IndexOptions, JobReport, Outcome};
use crate::search;

pub(super) fn index_options(fps: f64, batch: usize, decoders: usize) -> Result<IndexOptions> {
    if !(fps.is_finite() && fps > 0.0 && fps <= 60.0) {
        bail!("--fps must be between 0 and 60 (got {fps})");
    }
    Ok(IndexOptions {
        sample: SampleOptions {
            fps,
            ..SampleOptions::default()
        },
        batch,
        decoders,
        ..IndexOptions::default()
    })
}

/// Runs the interrupted jobs left by a killed run, then a new job for `paths`, through
/// the queue's one drain (the server's runner uses the same).
pub(super) async fn run_jobs(
    catalog: &Catalog,
    model: Arc<Embedder>,
    paths: &[PathBuf],
    opts: &IndexOptions,
    out: Output,
) -> Result<Vec<JobReport>> {
    let queue = jobs::Queue::new(catalog);
    if !paths.is_empty() {
        let keys: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        queue.submit(JobKind::Index, &keys).await?;
    }
    let outcomes = drain_jobs(catalog, model, opts, out).await?;
    Ok(outcomes.into_iter().collect::<Result<Vec<_>, _>>()?)
}

/// Runs every waiting indexing job (those a killed run left first): each job's outcome.
pub(super) async fn drain_jobs(
    catalog: &Catalog,
    model: Arc<Embedder>,
    opts: &IndexOptions,
    out: Output,
) -> Result<Vec<Result<JobReport, jobs::JobError>>> {
    let queue = jobs::Queue::new(catalog);
    let resumed = queue.requeue_interrupted().await?;
    if resumed > 0 && !out.is_json() {
        eprintln!("resuming {resumed} interrupted job(s)");
    }
    let quiet: jobs::ProgressSink = Arc::new(|_| {});
    let outcomes = queue
        .drain(JobKind::Index, &quiet, |job| {
            let model = model.clone();
            async move {
                let (sink, bar) = progress_bar(out);
                let job_paths: Vec<PathBuf> = job.paths.iter().map(PathBuf::from).collect();
                let r = jobs::run_job(
                    catalog,
                    model,
                    job.id,
                    &job_paths,
                    opts,
                    sink,
                    Arc::new(AtomicBool::new(false)),
                )
                .await;
                if let Some(b) = bar {
                    b.finish_and_clear();
                }
                r
            }
        })
        .await?;
    Ok(outcomes)
}

pub(super) fn print_reports(reports: &[JobReport], out: Output) -> Result<()> {
    out.print(&json!({ "jobs": reports }), || reports.iter().for_each(print_report))?;
    let failed: usize = reports.iter().map(|r| r.failed).sum();
    if failed > 0 {
        bail!("{failed} file(s) could not be indexed (listed above); the others are indexed");
    }
    Ok(())
}

pub(super) fn print_report(r: &JobReport) {
    let speed = if r.wall_seconds > 0.0 {
        r.video_seconds / r.wall_seconds
    } else {
        0.0
    };
    println!(
        "job {}: {} indexed ({} frames, {:.0} s of video in {:.1} s, {:.1}x realtime), {} unchanged, {} failed",
        r.job_id, r.indexed, r.frames, r.video_seconds, r.wall_seconds, speed, r.unchanged, r.failed
    );
    for f in &r.files {
        if let Outcome::Failed { error } = &f.outcome {
            eprintln!("  failed: {}: {error}", f.path);
        }
    }
}

pub(super) fn index(g: &Global, args: &IndexArgs) -> Result<()> {
    let out = Output::new(args.json);
    if args.enqueue_only {
        return super::worker::enqueue(g, &args.paths, args.wait, out);
    }
    let opts = IndexOptions {
        exact_resize: args.exact_resize,
        ..index_options(args.work.fps, args.work.batch, args.work.decoders)?
    };
    for p in &args.paths {
        if !p.exists() {
            bail!("{}: no such file or folder", p.display());
        }
    }
    let reports = with_library(g, Access::Write, async |catalog, model| {
        catalog.remember_model_dir(model.dir()).await?;
        let opts = IndexOptions {
            also_embed: switch_target(g, catalog).await?,
            ocr: super::ocr::ocr_for(g, catalog).await?,
            speech: super::speech::speech_for(g, catalog).await?,
            ..opts
        };
        let r = run_jobs(catalog, model.clone(), &args.paths, &opts, out).await;
        // The new footage's zero-shot tags, from its stored vectors.
        let t = std::time::Instant::now();
        match search::tags::ensure(catalog, model).await {
            Ok(_) => tracing::debug!("tags brought up to date in {:.1} ms", t.elapsed().as_secs_f64() * 1e3),
            Err(e) => tracing::warn!("the tags were not brought up to date: {e}"),
        }
        r
    })?;
    print_reports(&reports, out)
}

/// The model a switch under way (interrupted) is moving the library to: new footage
/// gets its vectors too.
pub(super) async fn switch_target(g: &Global, catalog: &Catalog) -> Result<Option<Arc<Embedder>>> {
    let Some(s) = catalog.pending_switch().await? else {
        return Ok(None);
    };
    let target = Embedder::load(&s.dir, &g.embed_options()).with_context(|| {
        format!(
            "loading {}, the model a switch is moving this library to",
            s.dir.display()
        )
    })?;
    Ok(Some(Arc::new(target)))
}

pub(super) fn videos(g: &Global, out: Output) -> Result<()> {
    let rt = runtime()?;
    let list = rt.block_on(async { anyhow::Ok(crate::catalog::info_in(&g.data_dir(), g.database()).await?.videos) })?;
    out.print(&json!({ "videos": list }), || {
        if list.is_empty() {
            println!("the library is empty: add videos with `vidseek index PATH`");
        }
        list.iter().for_each(print_video);
    })
}

fn print_video(v: &Video) {
    let dur = v.duration.map(search::clock).unwrap_or_else(|| "-".into());
    match &v.error {
        Some(e) if v.status == VideoStatus::Failed => {
            println!("{:>5}  failed    {}  error: {e}", v.id, v.path)
        }
        Some(e) => println!(
            "{:>5}  indexed   {}  {dur}  {} frames  (last re-index failed: {e})",
            v.id, v.path, v.frame_count
        ),
        None => println!(
            "{:>5}  {:<8}  {}  {dur}  {} frames",
            v.id, v.status, v.path, v.frame_count
        ),
    }
}

/// Opens the folder for writing with the model it was indexed with (no model needed
/// for removals).
pub(super) async fn open_for_maintenance(g: &Global) -> Result<Catalog> {
    let data = g.data_dir();
    let (name, dim) = match crate::catalog::info_in(&data, g.database()).await?.model {
        Some(m) => m,
        None => bail!("the library in {} is empty", data.display()),
    };
    Ok(Catalog::open_with(&data, g.database(), g.vectors, &name, dim, Access::Write).await?)
}

/// The video `target` names: an id, or a path (made absolute as the library stores it).
pub(super) async fn find_video(catalog: &Catalog, target: &str) -> Result<Video> {
    let video = match target.parse::<i64>() {
        Ok(id) => catalog.video(id).await?,
        Err(_) => {
            let p = std::path::Path::new(target);
            let key = p
                .canonicalize()
                .unwrap_or_else(|_| std::path::absolute(p).unwrap_or(p.to_path_buf()));
            catalog.video_by_path(&key.display().to_string()).await?
        }
    };
    video.ok_or_else(|| anyhow::anyhow!("{target}: not in the library (see `vidseek videos`)"))
}

pub(super) fn remove(g: &Global, target: &str) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let catalog = open_for_maintenance(g).await?;
        let v = find_video(&catalog, target).await?;
        catalog.remove_video(v.id).await?;
        catalog.save_vectors().await?;
        println!("removed {} ({} frames)", v.path, v.frame_count);
        Ok(())
    })
}

pub(super) fn prune(g: &Global) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let catalog = open_for_maintenance(g).await?;
        let removed = catalog.prune().await?;
        for v in &removed {
            println!("removed {} (file is gone)", v.path);
        }
        catalog.save_vectors().await?;
        println!("{} video(s) pruned", removed.len());
        Ok(())
    })
}
