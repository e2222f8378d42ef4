//! `jobs`: the write path. Turns "index these paths" into stored, searchable videos:
//! `plan` (library scan, unchanged files skipped, each file probed once) then
//! `pipeline` (decode -> embed -> store -> index; `texts`: subtitles and on-screen
//! text read on the way; `speech`: the audio recognised on a thread beside; `commit`:
//! each finished video written, progress counted). Also moves a library to another
//! model (`switch`). `Queue` owns the job queue: the one drain the CLI and the server
//! both run jobs through; `JobRunner` is the server's (threads beside the executor).
//!
//! Decoding and inference run on dedicated threads joined by bounded channels, so the
//! decoders work on the next files while the model embeds earlier frames, and neither
//! ever runs on an async executor; several files decode side by side when asked (on a
//! GPU, to keep several NVDEC engines busy); the calling thread writes each finished
//! video in one transaction (a video is either fully indexed or not at all). A file
//! that cannot be indexed fails alone with its reason; the rest continue. Jobs are rows
//! in the store: a run killed half-way leaves its job `processing`, and the next run
//! finishes it.

mod commit;
mod pipeline;
mod plan;
mod queue;
mod runner;
mod speech;
mod switch;
mod texts;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;

pub use queue::Queue;
pub use runner::JobRunner;
pub use speech::SpeechStage;
pub use switch::run_switch;

use self::pipeline::ModelOutcome;
use crate::catalog::{Catalog, CatalogError, Claim, JobState, StoreError};
use crate::decode::SampleOptions;
use crate::embed::{EmbedError, Embedder};
use crate::error::{Classified, Fault};
use crate::library;
use crate::ocr::Ocr;

/// Errors that stop a whole job (a single bad file never does).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Library(#[from] library::LibraryError),
    #[error("the model failed: {0}")]
    Model(#[from] EmbedError),
    #[error("job {0} does not exist")]
    NoSuchJob(i64),
    #[error("{0} is already the library's model")]
    AlreadyActive(String),
    #[error(
        "a switch to {0} is under way: wait for it or cancel it (DELETE /api/jobs/ID, or `vidseek model use --cancel`)"
    )]
    SwitchUnderWay(String),
    /// A worker thread panicked: a bug, logged with the file being worked on.
    #[error("internal error: {0}")]
    Panicked(String),
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        JobError::Catalog(e.into())
    }
}

impl Classified for JobError {
    fn fault(&self) -> Fault {
        match self {
            JobError::Catalog(e) => e.fault(),
            JobError::Library(e) => e.fault(),
            JobError::Model(e) => e.fault(),
            JobError::NoSuchJob(_) => Fault::NotFound,
            JobError::AlreadyActive(_) | JobError::SwitchUnderWay(_) => Fault::Conflict,
            JobError::Panicked(_) => Fault::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            JobError::Catalog(e) => e.code(),
            JobError::Library(e) => e.code(),
            JobError::Model(e) => e.code(),
            JobError::AlreadyActive(_) => "already_active",
            JobError::SwitchUnderWay(_) => "switch_under_way",
            JobError::NoSuchJob(_) | JobError::Panicked(_) => self.fault().code(),
        }
    }
}

/// How to index.
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// How frames are sampled (the geometry always comes from the model).
    pub sample: SampleOptions,
    /// Frames per model call (0: 16 on the CPU, 256 on CUDA).
    pub batch: usize,
    /// Frames in flight between decoders and model.
    pub queue: usize,
    /// Decode through FFmpeg's CUDA hwaccel: None = when the model runs on CUDA.
    pub hwaccel: Option<bool>,
    /// Files decoded at once (0: four with hwaccel, so several NVDEC engines work;
    /// else one per four cores, at least one). Each file is still one decoder.
    pub decoders: usize,
    /// A second model every frame is also embedded with: the one a switch is moving
    /// to, so footage indexed during the switch is ready for it.
    pub also_embed: Option<Arc<Embedder>>,
    /// Decode at full resolution and let the model's preprocessing resize (bit-exact
    /// with PIL, the reference) instead of one swscale pass to the model's size.
    pub exact_resize: bool,
    /// Read on-screen text with this OCR model (the sampled frames, decoded at full
    /// resolution): stored as timed text of kind `ocr` with its box.
    pub ocr: Option<Arc<Ocr>>,
    /// Readings below this confidence (0..1) are dropped.
    pub ocr_min_confidence: f32,
    /// Recognise speech with this engine (the file's audio, on a thread beside its
    /// frames): stored as timed text of kind `speech` with its words.
    pub speech: Option<Arc<SpeechStage>>,
}

impl IndexOptions {
    /// The batch size for a model on `provider`.
    pub fn batch_for(&self, provider: &str) -> usize {
        match self.batch {
            0 if provider == "CUDA" => 256,
            0 => 16,
            b => b,
        }
    }

    /// The number of decoder threads, given whether they decode on the GPU and the
    /// machine's cores.
    pub fn decoders_for(&self, hwaccel: bool, cores: usize) -> usize {
        match self.decoders {
            0 if hwaccel => 4,
            0 => (cores / 4).max(1),
            d => d,
        }
    }
}

impl Default for IndexOptions {
    fn default() -> Self {
        Self {
            sample: SampleOptions::default(),
            batch: 0,
            queue: 64,
            hwaccel: None,
            decoders: 0,
            also_embed: None,
            exact_resize: false,
            ocr: None,
            ocr_min_confidence: crate::ocr::MIN_CONFIDENCE,
            speech: None,
        }
    }
}

/// What happened to one file.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "lowercase", tag = "state")]
pub enum Outcome {
    /// `decoder`: how its pictures were decoded ("software", "cuda", or "software
    /// (REASON)" where the CUDA hwaccel was asked for and fell back).
    Indexed {
        video_id: i64,
        frames: usize,
        decoder: String,
    },
    Unchanged,
    Failed {
        error: String,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    pub path: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Seconds of video (0 when unknown).
    pub duration: f64,
}

/// The result of a job.
#[derive(Clone, Debug, Serialize)]
pub struct JobReport {
    pub job_id: i64,
    pub state: JobState,
    pub files: Vec<FileReport>,
    pub indexed: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub frames: usize,
    pub video_seconds: f64,
    pub wall_seconds: f64,
}

impl JobReport {
    /// Adds the files' outcomes to the totals.
    fn count_files(&mut self) {
        for f in &self.files {
            match &f.outcome {
                Outcome::Indexed { frames, .. } => {
                    self.indexed += 1;
                    self.frames += frames;
                    self.video_seconds += f.duration;
                }
                Outcome::Unchanged => self.unchanged += 1,
                Outcome::Failed { .. } => self.failed += 1,
            }
        }
    }
}

/// Progress as it happens (the CLI draws a bar, the server sends events).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    Planned {
        job_id: i64,
        files: usize,
        to_index: usize,
        video_seconds: f64,
    },
    FileStarted {
        job_id: i64,
        path: String,
    },
    Frames {
        job_id: i64,
        frames: usize,
        video_seconds: f64,
    },
    FileDone {
        job_id: i64,
        report: FileReport,
    },
    Finished {
        job_id: i64,
        state: JobState,
        indexed: usize,
        unchanged: usize,
        failed: usize,
    },
    /// A switch to another model re-embedding the library.
    Switch {
        job_id: i64,
        model: String,
        frames_done: usize,
        frames_total: usize,
        eta_seconds: Option<f64>,
    },
    /// The switch completed: searches now use `model`.
    Switched {
        job_id: i64,
        model: String,
    },
}

pub type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;

/// The vector index saved after a job's files are written (its time in the debug log).
async fn save_vectors(catalog: &Catalog, job_id: i64) -> Result<(), JobError> {
    let t = Instant::now();
    catalog.save_vectors().await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    tracing::debug!("job {job_id}: vector index saved in {ms:.1} ms");
    Ok(())
}

/// Runs an indexing job: every video under `paths`. Progress goes to `progress`;
/// `cancel` stops it between frames (what was committed stays).
pub async fn run_job(
    catalog: &Catalog,
    embedder: Arc<Embedder>,
    job_id: i64,
    paths: &[PathBuf],
    opts: &IndexOptions,
    progress: ProgressSink,
    cancel: Arc<AtomicBool>,
) -> Result<JobReport, JobError> {
    let t0 = Instant::now();
    let queue = catalog.queue();
    let mut report = JobReport {
        job_id,
        state: JobState::Processing,
        files: Vec::new(),
        indexed: 0,
        unchanged: 0,
        failed: 0,
        frames: 0,
        video_seconds: 0.0,
        wall_seconds: 0.0,
    };
    let work = match plan::plan(catalog, job_id, paths, &mut report, &progress).await {
        Ok(Ok(work)) => work,
        Ok(Err(Claim::Elsewhere)) => {
            // Another node of a shared library runs it.
            return Ok(report);
        }
        Ok(Err(_)) => {
            // Canceled while it waited in the queue.
            report.state = JobState::Canceled;
            return Ok(report);
        }
        Err(e) => {
            queue.finish(job_id, JobState::Failed, Some(&e.to_string())).await?;
            return Err(e);
        }
    };
    let lease = queue.heartbeat(job_id, cancel.clone());
    let model = pipeline::run(catalog, embedder, job_id, &work, opts, &progress, &cancel, &mut report).await?;
    save_vectors(catalog, job_id).await?;
    if lease.lost() {
        // Another node took the job over (this one was cut off past its lease): the
        // job's outcome is that node's to record.
        report.state = JobState::Processing;
        return Ok(report);
    }

    report.count_files();
    report.wall_seconds = t0.elapsed().as_secs_f64();
    let (state, error) = if let ModelOutcome::Failed(e) = &model {
        (JobState::Failed, Some(e.to_string()))
    } else if cancel.load(Ordering::Relaxed) {
        (JobState::Canceled, None)
    } else if report.failed > 0 {
        (
            JobState::Failed,
            Some(format!("{} of {} files failed", report.failed, report.files.len())),
        )
    } else {
        (JobState::Succeeded, None)
    };
    report.state = state;
    if state == JobState::Canceled {
        queue.cancel(job_id).await?;
    } else {
        queue.finish(job_id, state, error.as_deref()).await?;
    }
    progress(Progress::Finished {
        job_id,
        state,
        indexed: report.indexed,
        unchanged: report.unchanged,
        failed: report.failed,
    });
    if let ModelOutcome::Failed(e) = model {
        return Err(e);
    }
    Ok(report)
}
