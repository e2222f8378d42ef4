//! Moving a library to another model without taking search down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;

use super::{JobError, Progress, ProgressSink};
use crate::catalog::{Catalog, Claim, FileState, JobState, Switch, Video};
use crate::decode;
use crate::embed::Embedder;
use crate::library;

/// What a switch did.
#[derive(Clone, Debug, Serialize)]
pub struct SwitchReport {
    pub job_id: i64,
    pub state: JobState,
    pub from: String,
    pub to: String,
    /// Videos and frames re-embedded by this run (a resumed switch counts only its own).
    pub videos: usize,
    pub frames: usize,
    /// Videos that could not be re-embedded (file missing or changed), kept as failed.
    pub not_reembedded: Vec<String>,
    pub wall_seconds: f64,
}

/// Moves the library to `target` (a package in `dir`) without taking search down:
/// every stored frame is re-embedded into a second vector set (decoding the pictures at
/// the frames' own times, at the new model's geometry; one transaction per video) while
/// the old set keeps serving, then the switch completes atomically
/// ([`Catalog::finish_switch`]). The switch is recorded in the store first, so a run
/// killed at any moment resumes where it stopped (videos already done are skipped).
/// `cancel` abandons it: the new vectors go, the old model stays.
pub async fn run_switch(
    catalog: &Catalog,
    target: Arc<Embedder>,
    dir: &Path,
    job_id: i64,
    progress: ProgressSink,
    cancel: Arc<AtomicBool>,
) -> Result<SwitchReport, JobError> {
    let t0 = Instant::now();
    let queue = catalog.queue();
    let from = catalog.model();
    let to = target.model_name().to_string();
    let mut report = SwitchReport {
        job_id,
        state: JobState::Processing,
        from: from.clone(),
        to: to.clone(),
        videos: 0,
        frames: 0,
        not_reembedded: Vec::new(),
        wall_seconds: 0.0,
    };
    if to == from {
        queue.finish(job_id, JobState::Succeeded, None).await?;
        report.state = JobState::Succeeded;
        return Ok(report);
    }
    let switch = Switch {
        model: to.clone(),
        dim: target.dim(),
        dir: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
        job_id,
    };
    match catalog.pending_switch().await? {
        Some(p) if p.model == switch.model => {}
        Some(_) => catalog.cancel_switch().await?,
        None => {}
    }
    catalog.begin_switch(&switch).await?;
    let todo = catalog.videos_missing(&to).await?;
    if queue.start(job_id, todo.len() as i64).await? != Claim::Mine {
        catalog.cancel_switch().await?;
        report.state = JobState::Canceled;
        return Ok(report);
    }
    let videos_done = reembed_library(catalog, &target, job_id, &progress, &cancel, t0, &mut report).await?;
    report.videos = videos_done - report.not_reembedded.len();
    report.wall_seconds = t0.elapsed().as_secs_f64();
    if cancel.load(Ordering::Relaxed) {
        catalog.cancel_switch().await?;
        queue.cancel(job_id).await?;
        report.state = JobState::Canceled;
        return Ok(report);
    }
    catalog.finish_switch(&switch).await?;
    queue.finish(job_id, JobState::Succeeded, None).await?;
    report.state = JobState::Succeeded;
    progress(Progress::Switched { job_id, model: to });
    Ok(report)
}

/// Re-embeds the videos that have no vectors of `target` yet until none is left (one
/// that fails is skipped, and counted in the report) or `cancel`; each video's outcome
/// is recorded on the job. Returns how many videos it went through.
async fn reembed_library(
    catalog: &Catalog,
    target: &Embedder,
    job_id: i64,
    progress: &ProgressSink,
    cancel: &AtomicBool,
    t0: Instant,
    report: &mut SwitchReport,
) -> Result<usize, JobError> {
    let queue = catalog.queue();
    let to = target.model_name();
    let mut skipped: std::collections::HashSet<i64> = Default::default();
    let mut videos_done = 0usize;
    loop {
        let todo: Vec<_> = catalog
            .videos_missing(to)
            .await?
            .into_iter()
            .filter(|v| !skipped.contains(&v.id))
            .collect();
        if todo.is_empty() || cancel.load(Ordering::Relaxed) {
            break;
        }
        for v in todo {
            if cancel.load(Ordering::Relaxed) {
                break;
            }
            let (state, error, frames) = match reembed_if_unchanged(catalog, target, &v).await {
                Ok(n) => (FileState::Indexed, None, n),
                Err(e) => {
                    skipped.insert(v.id);
                    report.not_reembedded.push(v.path.clone());
                    (FileState::Failed, Some(e), 0)
                }
            };
            report.frames += frames;
            videos_done += 1;
            queue.file(job_id, &v.path, state, error, frames as i64).await?;
            queue.progress(job_id, videos_done as i64, report.frames as i64).await?;
            let (missing, total) = catalog.vectors_missing(to).await?;
            let rate = report.frames as f64 / t0.elapsed().as_secs_f64().max(1e-3);
            progress(Progress::Switch {
                job_id,
                model: to.to_string(),
                frames_done: (total - missing) as usize,
                frames_total: total as usize,
                eta_seconds: (rate > 0.0).then(|| missing as f64 / rate),
            });
        }
    }
    Ok(videos_done)
}

/// Re-embeds video `v` when its file is still the one indexed; returns how many frames.
async fn reembed_if_unchanged(catalog: &Catalog, target: &Embedder, v: &Video) -> Result<usize, String> {
    let path = PathBuf::from(&v.path);
    // The stored frames stand for this file's content: a file that is gone or
    // changed cannot give the same pictures.
    let same = library::identity(&path)
        .is_ok_and(|id| id.size as i64 == v.size && id.mtime_ns == v.mtime_ns && id.hash == v.hash);
    if same {
        reembed_video(catalog, target, &path, v.id).await
    } else {
        Err(format!("{}: missing or changed since it was indexed", v.path))
    }
}

/// Embeds one video's stored frames with `model` and stores the vectors; returns how
/// many. Decoding and inference run on this (dedicated) thread.
async fn reembed_video(catalog: &Catalog, model: &Embedder, path: &Path, video: i64) -> Result<usize, String> {
    let frames = catalog.frames_of(video).await.map_err(|e| e.to_string())?;
    let times: Vec<f64> = frames.iter().map(|f| f.peak).collect();
    let mut vectors = Vec::with_capacity(frames.len());
    // A few hundred pictures at a time, so a long video never sits in memory whole.
    for (chunk_frames, chunk_times) in frames.chunks(256).zip(times.chunks(256)) {
        let images = decode::frames_at(path, chunk_times, model.image_size(), 0).map_err(|e| e.to_string())?;
        let e = model.embed_images(&images).map_err(|e| e.to_string())?;
        vectors.extend(chunk_frames.iter().zip(e.rows()).map(|(f, v)| (f.id, v.to_vec())));
    }
    catalog
        .put_vectors(model.model_name(), &vectors)
        .await
        .map_err(|e| e.to_string())?;
    Ok(vectors.len())
}
