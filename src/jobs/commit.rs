//! The writing end of the indexing pipeline, on the job's own thread: a finished video
//! written to the catalog in one transaction (its frames, vectors, thumbnails and texts),
//! a file that failed recorded as failed, and the job's progress counted and saved.
//! Does not decode or embed (`pipeline` does).

use std::collections::HashMap;

use super::pipeline::Pending;
use super::plan::{self, Work};
use super::{FileReport, JobError, JobReport, Outcome, Progress, ProgressSink};
use crate::catalog::{Catalog, NewFrame, NewText, NewVideo, TextKind};
use crate::decode::{self, VideoInfo};

/// How far the job has got, for its progress events and its row in the queue.
pub(super) struct Counters {
    frames: usize,
    /// Seconds of video of the files finished.
    seconds: f64,
    /// Files finished, those of the plan (unchanged, failed probes) included.
    files: usize,
    /// Whether each file's start has been announced.
    announced: Vec<bool>,
    /// How far each unfinished file has got (seconds of video).
    reached: HashMap<usize, f64>,
}

impl Counters {
    pub(super) fn new(files: usize, finished: usize) -> Self {
        Self {
            frames: 0,
            seconds: 0.0,
            files: finished,
            announced: vec![false; files],
            reached: HashMap::new(),
        }
    }

    /// A frame of file `i`, ending at `t`, has been embedded.
    pub(super) fn frame(&mut self, job_id: i64, i: usize, t: f64, work: &[Work], progress: &ProgressSink) {
        if !self.announced[i] {
            self.announced[i] = true;
            progress(Progress::FileStarted {
                job_id,
                path: work[i].path.display().to_string(),
            });
        }
        self.frames += 1;
        // Files decode side by side: count how far each unfinished one has got.
        self.reached.insert(i, t);
        progress(Progress::Frames {
            job_id,
            frames: self.frames,
            video_seconds: self.seconds + self.reached.values().sum::<f64>(),
        });
    }

    /// File `i` is finished, with `seconds` of video indexed.
    pub(super) fn file(&mut self, i: usize, seconds: f64) {
        self.reached.remove(&i);
        self.seconds += seconds;
        self.files += 1;
    }
}

/// A file is finished (indexed or failed): its outcome recorded on the job, the job's
/// counters saved, the event sent, the report extended.
pub(super) async fn file_done(
    catalog: &Catalog,
    job_id: i64,
    r: FileReport,
    done: &Counters,
    progress: &ProgressSink,
    report: &mut JobReport,
) -> Result<(), JobError> {
    plan::record(catalog, job_id, &r).await?;
    catalog
        .queue()
        .progress(job_id, done.files as i64, done.frames as i64)
        .await?;
    progress(Progress::FileDone {
        job_id,
        report: r.clone(),
    });
    report.files.push(r);
    Ok(())
}

/// A file that could not be indexed: recorded as failed in the store; returns its report.
pub(super) async fn write_failure(catalog: &Catalog, w: &Work, error: String) -> Result<FileReport, JobError> {
    let key = w.path.display().to_string();
    catalog
        .put_failed(
            &key,
            w.identity.size as i64,
            w.identity.mtime_ns,
            &w.identity.hash,
            &error,
        )
        .await?;
    Ok(FileReport {
        path: key,
        outcome: Outcome::Failed { error },
        duration: 0.0,
    })
}

pub(super) async fn write_video(
    catalog: &Catalog,
    w: &Work,
    info: &VideoInfo,
    frames: Vec<Pending>,
    mut texts: Vec<NewText>,
) -> Result<(i64, usize), JobError> {
    let name = w.path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let words: String = name
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    texts.push(NewText {
        kind: TextKind::Filename,
        start: None,
        end: None,
        text: words.split_whitespace().collect::<Vec<_>>().join(" "),
        quad: None,
        words: None,
    });
    if let Some(title) = &info.title {
        texts.push(NewText {
            kind: TextKind::Title,
            start: None,
            end: None,
            text: title.clone(),
            quad: None,
            words: None,
        });
    }
    let n = frames.len();
    let v = NewVideo {
        path: w.path.display().to_string(),
        size: w.identity.size as i64,
        mtime_ns: w.identity.mtime_ns,
        hash: w.identity.hash.clone(),
        duration: info.duration,
        fps: info.fps,
        width: info.width as i64,
        height: info.height as i64,
        codec: info.codec.clone(),
        rotation: info.rotation as i64,
        frames: frames
            .into_iter()
            .map(|p| NewFrame {
                start: p.frame.start,
                end: p.frame.end,
                peak: p.frame.peak,
                shot: p.frame.reason == decode::SampleReason::ShotChange,
                vector: p.vector,
                extra_vectors: p.extra.into_iter().collect(),
                thumbnail: p.frame.thumbnail,
            })
            .collect(),
        texts,
    };
    let t = std::time::Instant::now();
    let id = catalog.add_video(&v).await?;
    tracing::debug!(
        "{}: {n} frames written (store and indexes) in {:.1} ms",
        w.path.display(),
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok((id, n))
}
