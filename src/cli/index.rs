//! Indexing and the library's videos: `index`, `videos`, `remove`, `prune`, and the
//! progress bar and job drain `index`, `demo` and `model use` share.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::args::Global;
use super::runtime;
use crate::catalog::{Access, Catalog, JobKind, VideoStatus};
use crate::decode::SampleOptions;
use crate::embed::Embedder;
use crate::jobs::{self, IndexOptions, JobReport, Outcome, Progress};
use crate::search;

/// A progress bar over the seconds of video to index.
pub(super) fn progress_bar(json: bool) -> (jobs::ProgressSink, Option<indicatif::ProgressBar>) {
    if json {
        return (Arc::new(|_| {}), None);
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {percent:>3}% {msg} ETA {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let b = bar.clone();
    let state = std::sync::Mutex::new((0usize, 0usize, std::time::Instant::now()));
    let sink: jobs::ProgressSink = Arc::new(move |p: Progress| {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        match p {
            Progress::Planned {
                files,
                to_index,
                video_seconds,
                ..
            } => {
                b.set_length((video_seconds * 10.0).ceil().max(1.0) as u64);
                b.set_message(format!("{to_index} of {files} files to index"));
                st.0 = to_index;
                st.2 = std::time::Instant::now();
            }
            Progress::Frames {
                frames, video_seconds, ..
            } => {
                b.set_position((video_seconds * 10.0) as u64);
                let rate = frames as f64 / st.2.elapsed().as_secs_f64().max(1e-3);
                b.set_message(format!(
                    "files {}/{} | {frames} frames | {rate:.1} frames/s",
                    st.1, st.0
                ));
            }
            Progress::FileDone { report, .. } => {
                st.1 += 1;
                if let Outcome::Failed { error } = &report.outcome {
                    b.println(format!("failed: {}: {error}", report.path));
                }
            }
            Progress::Switch {
                model,
                frames_done,
                frames_total,
                ..
            } => {
                b.set_length(frames_total.max(1) as u64);
                b.set_position(frames_done as u64);
                b.set_message(format!(
                    "re-embedding with {model}: {frames_done}/{frames_total} frames"
                ));
            }
            Progress::FileStarted { .. } | Progress::Finished { .. } | Progress::Switched { .. } => {}
        }
    });
    (sink, Some(bar))
}

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
    json: bool,
) -> Result<Vec<JobReport>> {
    let queue = jobs::Queue::new(catalog);
    let resumed = queue.requeue_interrupted().await?;
    if resumed > 0 && !json {
        eprintln!("resuming {resumed} interrupted job(s)");
    }
    if !paths.is_empty() {
        let keys: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        queue.submit(JobKind::Index, &keys).await?;
    }
    let quiet: jobs::ProgressSink = Arc::new(|_| {});
    let outcomes = queue
        .drain(JobKind::Index, &quiet, |job| {
            let model = model.clone();
            async move {
                let (sink, bar) = progress_bar(json);
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
    Ok(outcomes.into_iter().collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn print_reports(reports: &[JobReport], json: bool) -> Result<()> {
    let failed: usize = reports.iter().map(|r| r.failed).sum();
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({ "jobs": reports }))?);
    } else {
        for r in reports {
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
    }
    if failed > 0 {
        bail!("{failed} file(s) could not be indexed (listed above); the others are indexed");
    }
    Ok(())
}

pub(super) fn index(
    g: &Global,
    paths: &[PathBuf],
    fps: f64,
    batch: usize,
    decoders: usize,
    exact_resize: bool,
    json: bool,
) -> Result<()> {
    let opts = IndexOptions {
        exact_resize,
        ..index_options(fps, batch, decoders)?
    };
    for p in paths {
        if !p.exists() {
            bail!("{}: no such file or folder", p.display());
        }
    }
    let model = Arc::new(g.load_model()?);
    let rt = runtime()?;
    let reports = rt.block_on(async {
        let catalog = Catalog::open(&g.data_dir(), model.model_name(), model.dim(), Access::Write).await?;
        catalog.remember_model_dir(model.dir()).await?;
        let mut opts = opts.clone();
        // A switch under way (interrupted): new footage gets the target's vectors too.
        if let Some(s) = catalog.pending_switch().await? {
            opts.also_embed = Some(Arc::new(Embedder::load(&s.dir, &g.embed_options()).with_context(
                || {
                    format!(
                        "loading {}, the model a switch is moving this library to",
                        s.dir.display()
                    )
                },
            )?));
        }
        let r = run_jobs(&catalog, model.clone(), paths, &opts, json).await;
        // The new footage's zero-shot tags, from its stored vectors.
        if let Err(e) = search::tags::ensure(&catalog, &model).await {
            tracing::warn!("the tags were not brought up to date: {e}");
        }
        catalog.close().await;
        r
    })?;
    print_reports(&reports, json)
}

pub(super) fn videos(g: &Global, json: bool) -> Result<()> {
    let rt = runtime()?;
    let list = rt.block_on(async { anyhow::Ok(crate::catalog::info(&g.data_dir()).await?.videos) })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({ "videos": list }))?);
        return Ok(());
    }
    if list.is_empty() {
        println!("the library is empty: add videos with `vidseek index PATH`");
    }
    for v in list {
        let dur = v.duration.map(search::clock).unwrap_or_else(|| "-".into());
        match v.error {
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
    Ok(())
}

/// Opens the folder for writing with the model it was indexed with (no model needed
/// for removals).
pub(super) async fn open_for_maintenance(g: &Global) -> Result<Catalog> {
    let data = g.data_dir();
    let (name, dim) = match crate::catalog::info(&data).await?.model {
        Some(m) => m,
        None => bail!("the library in {} is empty", data.display()),
    };
    Ok(Catalog::open(&data, &name, dim, Access::Write).await?)
}

pub(super) fn remove(g: &Global, target: &str) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let catalog = open_for_maintenance(g).await?;
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
        let Some(v) = video else {
            bail!("{target}: not in the library (see `vidseek videos`)");
        };
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
