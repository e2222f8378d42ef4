//! `jobs`: the write path. Turns "index these paths" into stored, searchable videos:
//! library scan -> unchanged files skipped -> decode -> embed -> store -> index.
//!
//! Decoding and inference run on dedicated threads joined by bounded channels, so the
//! decoders work on the next files while the model embeds earlier frames, and neither
//! ever runs on an async executor; several files decode side by side when asked (on a
//! GPU, to keep several NVDEC engines busy); the calling thread writes each finished
//! video in one transaction (a video is either fully indexed or not at all). A file
//! that cannot be indexed fails alone with its reason; the rest continue. Jobs are rows
//! in the store: a run killed half-way leaves its job `processing`, and the next run
//! finishes it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use serde::Serialize;

use crate::catalog::{Catalog, CatalogError};
use crate::decode::{self, SampleOptions, SampledFrame, VideoInfo};
use crate::embed::{EmbedError, EmbedOptions, Embedder, Embeddings, ImageStream, StreamOptions};
use crate::image::RgbImage;
use crate::library::{self, FileIdentity};
use crate::store::{JobFile, NewFrame, NewText, NewVideo, Switch};

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
    #[error("a switch to {0} is under way: wait for it or cancel it (DELETE /api/jobs/ID, or `vidseek model use --cancel`)")]
    SwitchUnderWay(String),
}

impl JobError {
    pub fn is_user_error(&self) -> bool {
        match self {
            JobError::Catalog(e) => e.is_user_error(),
            JobError::Library(_) | JobError::NoSuchJob(_) | JobError::AlreadyActive(_) | JobError::SwitchUnderWay(_) => true,
            JobError::Model(e) => e.is_user_error(),
        }
    }
}

/// How to index.
#[derive(Clone, Debug)]
pub struct IndexOptions {
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
        }
    }
}

/// What happened to one file.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "lowercase", tag = "state")]
pub enum Outcome {
    Indexed { video_id: i64, frames: usize },
    Unchanged,
    Failed { error: String },
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
#[derive(Clone, Debug, Serialize, Default)]
pub struct JobReport {
    pub job_id: i64,
    pub state: String,
    pub files: Vec<FileReport>,
    pub indexed: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub frames: usize,
    pub video_seconds: f64,
    pub wall_seconds: f64,
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
        state: String,
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
    Switched { job_id: i64, model: String },
}

pub type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;

/// Decoded material for one file, in order: `Start`, frames, then `End`.
enum Decoded {
    Start(usize, VideoInfo),
    Frame(usize, SampledFrame),
    End(usize, Result<Vec<NewText>, String>),
}

/// A frame on its way to the store.
struct Pending {
    frame: SampledFrame,
    vector: Vec<f32>,
    /// Its vector of the model a switch is moving to, when one is under way.
    extra: Option<(String, Vec<f32>)>,
}

enum Embedded {
    Video(usize, VideoInfo, Vec<Pending>, Vec<NewText>),
    Failed(usize, String),
    Frames(usize, f64),
}

struct Work {
    path: PathBuf,
    identity: FileIdentity,
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
    let store = &catalog.store;
    let mut report = JobReport {
        job_id,
        ..Default::default()
    };
    let scan = match library::scan(paths) {
        Ok(s) => s,
        Err(e) => {
            store
                .finish_job(job_id, "failed", Some(&e.to_string()))
                .await
                .map_err(CatalogError::from)?;
            return Err(e.into());
        }
    };
    if !store
        .start_job(job_id, scan.files.len() as i64)
        .await
        .map_err(CatalogError::from)?
    {
        // Canceled while it waited in the queue.
        report.state = "canceled".into();
        return Ok(report);
    }
    for (path, reason) in &scan.errors {
        let r = FileReport {
            path: path.display().to_string(),
            outcome: Outcome::Failed {
                error: format!("{}: cannot read: {reason}", path.display()),
            },
            duration: 0.0,
        };
        record_unreadable(catalog, job_id, &r).await?;
        report.files.push(r);
    }

    // Plan: skip files whose size, mtime and content hash match what is indexed.
    let mut work = Vec::new();
    for path in &scan.files {
        let key = path.display().to_string();
        let identity = match library::identity(path) {
            Ok(i) => i,
            Err(e) => {
                let r = FileReport {
                    path: key.clone(),
                    outcome: Outcome::Failed {
                        error: format!("{key}: cannot read: {e}"),
                    },
                    duration: 0.0,
                };
                record_unreadable(catalog, job_id, &r).await?;
                report.files.push(r);
                continue;
            }
        };
        let existing = store.video_by_path(&key).await.map_err(CatalogError::from)?;
        if let Some(v) = existing
            && v.status == "indexed"
            && v.size == identity.size as i64
            && v.mtime_ns == identity.mtime_ns
            && v.hash == identity.hash
        {
            let r = FileReport {
                path: key,
                outcome: Outcome::Unchanged,
                duration: v.duration.unwrap_or(0.0),
            };
            record(catalog, job_id, &r).await?;
            report.files.push(r);
            continue;
        }
        work.push(Work {
            path: path.clone(),
            identity,
        });
    }
    let planned_seconds: f64 = work
        .iter()
        .filter_map(|w| decode::probe(&w.path).ok())
        .map(|i| i.duration)
        .sum();
    progress(Progress::Planned {
        job_id,
        files: scan.files.len() + scan.errors.len(),
        to_index: work.len(),
        video_seconds: planned_seconds,
    });

    // Decode threads -> embed thread -> this thread (store + indexes).
    let (dtx, drx) = sync_channel::<Decoded>(opts.queue.max(1));
    let (etx, erx) = sync_channel::<Embedded>(4);
    let paths_for_decoder: Arc<Vec<PathBuf>> = Arc::new(work.iter().map(|w| w.path.clone()).collect());
    let mut sample_opts = opts.sample.clone();
    // Frames are always scaled to the model's own input size (224, 240, 336, 384 px
    // models exist): whatever the options say, another geometry would only be rescaled.
    sample_opts.short_side = embedder.image_size().max(opts.also_embed.as_ref().map_or(0, |m| m.image_size()));
    // The model on the GPU: decode there too (NVDEC), in software where that fails.
    sample_opts.hwaccel = opts.hwaccel.unwrap_or(embedder.provider() == "CUDA");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let decoders = opts.decoders_for(sample_opts.hwaccel, cores).min(work.len()).max(1);
    if decoders > 1 && sample_opts.threads == 0 && !sample_opts.hwaccel {
        // Share the cores between the software decoders rather than each taking all.
        sample_opts.threads = (cores / decoders).max(1);
    }
    let next_file = Arc::new(AtomicUsize::new(0));
    let decoder_threads: Vec<_> = (0..decoders)
        .map(|d| {
            let (paths, opts, tx) = (paths_for_decoder.clone(), sample_opts.clone(), dtx.clone());
            let (cancel, next) = (cancel.clone(), next_file.clone());
            std::thread::Builder::new()
                .name(format!("vidseek-decode-{d}"))
                .spawn(move || decode_files(&paths, &next, &opts, &tx, &cancel))
                .expect("spawn decode thread")
        })
        .collect();
    drop(dtx);
    // A graph fixed at a batch size (Immich's: 1) gets batches of exactly that size.
    let batch = embedder.image_batch().unwrap_or_else(|| opts.batch_for(embedder.provider()));
    let emb = embedder.clone();
    let also = opts.also_embed.clone();
    let inference = std::thread::Builder::new()
        .name("vidseek-embed".into())
        .spawn(move || embed_frames(emb, also, batch, drx, &etx))
        .expect("spawn embed thread");

    let mut frames_done = 0usize;
    let mut seconds_done = 0f64;
    let mut files_done = report.files.len();
    let mut announced = vec![false; work.len()];
    let mut reached: HashMap<usize, f64> = HashMap::new();
    // The channel is drained on this async task; each receive blocks briefly, which is
    // why jobs run on their own runtime thread (CLI) or a blocking task (server).
    while let Ok(msg) = erx.recv() {
        match msg {
            Embedded::Frames(i, t) => {
                if !announced[i] {
                    announced[i] = true;
                    progress(Progress::FileStarted {
                        job_id,
                        path: work[i].path.display().to_string(),
                    });
                }
                frames_done += 1;
                // Files decode side by side: count how far each unfinished one has got.
                reached.insert(i, t);
                progress(Progress::Frames {
                    job_id,
                    frames: frames_done,
                    video_seconds: seconds_done + reached.values().sum::<f64>(),
                });
            }
            Embedded::Video(i, info, frames, texts) => {
                let w = &work[i];
                let r = match write_video(catalog, w, &info, frames, texts).await {
                    Ok((video_id, n)) => FileReport {
                        path: w.path.display().to_string(),
                        outcome: Outcome::Indexed { video_id, frames: n },
                        duration: info.duration,
                    },
                    Err(e) => return Err(e),
                };
                reached.remove(&i);
                seconds_done += info.duration;
                files_done += 1;
                file_done(catalog, job_id, r, files_done, frames_done, &progress, &mut report).await?;
            }
            Embedded::Failed(i, error) => {
                let w = &work[i];
                let key = w.path.display().to_string();
                store
                    .put_failed(
                        &key,
                        w.identity.size as i64,
                        w.identity.mtime_ns,
                        &w.identity.hash,
                        &error,
                    )
                    .await
                    .map_err(CatalogError::from)?;
                let r = FileReport {
                    path: key,
                    outcome: Outcome::Failed { error },
                    duration: 0.0,
                };
                reached.remove(&i);
                files_done += 1;
                file_done(catalog, job_id, r, files_done, frames_done, &progress, &mut report).await?;
            }
        }
    }
    for d in decoder_threads {
        let _ = d.join();
    }
    let model_result = inference
        .join()
        .unwrap_or_else(|_| Err(EmbedError::BadInput("the inference thread panicked".into())));
    catalog.save_vectors().await?;

    for f in &report.files {
        match &f.outcome {
            Outcome::Indexed { frames, .. } => {
                report.indexed += 1;
                report.frames += frames;
                report.video_seconds += f.duration;
            }
            Outcome::Unchanged => report.unchanged += 1,
            Outcome::Failed { .. } => report.failed += 1,
        }
    }
    report.wall_seconds = t0.elapsed().as_secs_f64();
    let (state, error) = if let Err(e) = &model_result {
        ("failed", Some(e.to_string()))
    } else if cancel.load(Ordering::Relaxed) {
        ("canceled", None)
    } else if report.failed > 0 {
        (
            "failed",
            Some(format!("{} of {} files failed", report.failed, report.files.len())),
        )
    } else {
        ("succeeded", None)
    };
    report.state = state.to_string();
    if state == "canceled" {
        store.cancel_job(job_id).await.map_err(CatalogError::from)?;
    } else {
        store
            .finish_job(job_id, state, error.as_deref())
            .await
            .map_err(CatalogError::from)?;
    }
    progress(Progress::Finished {
        job_id,
        state: report.state.clone(),
        indexed: report.indexed,
        unchanged: report.unchanged,
        failed: report.failed,
    });
    model_result?;
    Ok(report)
}

/// A file is finished (indexed or failed): its outcome recorded on the job, the job's
/// counters saved, the event sent, the report extended.
async fn file_done(
    catalog: &Catalog,
    job_id: i64,
    r: FileReport,
    files_done: usize,
    frames_done: usize,
    progress: &ProgressSink,
    report: &mut JobReport,
) -> Result<(), JobError> {
    record(catalog, job_id, &r).await?;
    catalog
        .store
        .job_progress(job_id, files_done as i64, frames_done as i64)
        .await
        .map_err(CatalogError::from)?;
    progress(Progress::FileDone {
        job_id,
        report: r.clone(),
    });
    report.files.push(r);
    Ok(())
}

async fn record(catalog: &Catalog, job_id: i64, r: &FileReport) -> Result<(), JobError> {
    let (state, error, frames) = match &r.outcome {
        Outcome::Indexed { frames, .. } => ("indexed", None, *frames as i64),
        Outcome::Unchanged => ("unchanged", None, 0),
        Outcome::Failed { error } => ("failed", Some(error.clone()), 0),
    };
    catalog
        .store
        .put_job_file(
            job_id,
            &JobFile {
                path: r.path.clone(),
                state: state.into(),
                error,
                frames,
            },
        )
        .await
        .map_err(CatalogError::from)?;
    Ok(())
}

/// A file that could not even be read: recorded as a failed video (so `videos` and the
/// library view show it with its reason) and in the job.
async fn record_unreadable(catalog: &Catalog, job_id: i64, r: &FileReport) -> Result<(), JobError> {
    if let Outcome::Failed { error } = &r.outcome {
        catalog
            .store
            .put_failed(&r.path, 0, 0, "", error)
            .await
            .map_err(CatalogError::from)?;
    }
    record(catalog, job_id, r).await
}

async fn write_video(
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
        kind: "filename",
        start: None,
        end: None,
        text: words.split_whitespace().collect::<Vec<_>>().join(" "),
    });
    if let Some(title) = &info.title {
        texts.push(NewText {
            kind: "title",
            start: None,
            end: None,
            text: title.clone(),
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
    let id = catalog.add_video(&v).await?;
    Ok((id, n))
}

/// A decode thread: takes the next file not yet taken, samples it, reads its subtitles,
/// and goes on until none is left (several such threads share `next`).
fn decode_files(
    paths: &[PathBuf],
    next: &AtomicUsize,
    opts: &SampleOptions,
    tx: &SyncSender<Decoded>,
    cancel: &AtomicBool,
) {
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(path) = paths.get(i) else {
            break;
        };
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let mut sink = |f: SampledFrame| !cancel.load(Ordering::Relaxed) && tx.send(Decoded::Frame(i, f)).is_ok();
        // Facts first, so the embed thread knows the file before its frames.
        let info = match decode::probe(path) {
            Ok(info) => info,
            Err(e) => {
                if tx.send(Decoded::End(i, Err(e.to_string()))).is_err() {
                    return;
                }
                continue;
            }
        };
        if tx.send(Decoded::Start(i, info)).is_err() {
            return;
        }
        let result = decode::sample(path, opts, &mut sink);
        let end = match result {
            Ok((info, _stats)) => Ok(subtitles(path, &info)),
            Err(e) => Err(e.to_string()),
        };
        if cancel.load(Ordering::Relaxed) {
            let _ = tx.send(Decoded::End(i, Err("canceled".into())));
            break;
        }
        if tx.send(Decoded::End(i, end)).is_err() {
            return;
        }
    }
}

/// Subtitle cues from the file's own streams and from sidecar files.
fn subtitles(path: &Path, info: &VideoInfo) -> Vec<NewText> {
    let mut cues = Vec::new();
    if info.subtitle_streams > 0 {
        match decode::embedded_subtitles(path) {
            Ok(c) => cues.extend(c),
            Err(e) => tracing::warn!("{e}"),
        }
    }
    for side in decode::sidecar_files(path) {
        match decode::subtitle_file(&side) {
            Ok(c) => cues.extend(c),
            Err(e) => tracing::warn!("{e}"),
        }
    }
    cues.into_iter()
        .map(|c| NewText {
            kind: "subtitle",
            start: Some(c.start),
            end: Some(c.end),
            text: c.text,
        })
        .collect()
}

/// The inference thread: batches frames (across files) into the model's batch stream.
/// A file is finished once its last frame's batch has come back, without waiting for
/// the batches of other files still in flight.
fn embed_frames(
    model: Arc<Embedder>,
    also: Option<Arc<Embedder>>,
    batch: usize,
    rx: Receiver<Decoded>,
    tx: &SyncSender<Embedded>,
) -> Result<(), EmbedError> {
    struct Open {
        info: VideoInfo,
        frames: Vec<Pending>,
        /// Frames queued or in flight.
        waiting: usize,
        /// The decoder's verdict, once it has sent the last frame.
        end: Option<Result<Vec<NewText>, String>>,
    }
    /// Frames of one model call: (file, frame, its vector of the second model).
    type Batch = Vec<(usize, SampledFrame, Option<Vec<f32>>)>;
    let mut stream = ImageStream::<Batch>::new(
        model.clone(),
        StreamOptions {
            max_batch: batch,
            ..StreamOptions::default()
        },
    )?;
    let mut open: HashMap<usize, Open> = HashMap::new();
    let mut queue: Batch = Vec::new();

    // Puts each finished batch's vectors with their files, then sends on every file whose
    // frames have all come back and whose decoder is done; false when the receiver has gone.
    let settle = |open: &mut HashMap<usize, Open>, done: Vec<(Batch, Embeddings)>| -> bool {
        for (frames, e) in done {
            for (k, (i, f, extra)) in frames.into_iter().enumerate() {
                let t = f.end;
                if let Some(o) = open.get_mut(&i) {
                    o.waiting -= 1;
                    o.frames.push(Pending {
                        frame: f,
                        vector: e.row(k).to_vec(),
                        extra: extra.zip(also.as_ref()).map(|(v, m)| (m.model_name().to_string(), v)),
                    });
                }
                let _ = tx.send(Embedded::Frames(i, t));
            }
        }
        let finished: Vec<usize> = open
            .iter()
            .filter(|(_, o)| o.waiting == 0 && o.end.is_some())
            .map(|(i, _)| *i)
            .collect();
        for i in finished {
            let o = open.remove(&i).expect("listed above");
            let msg = match o.end.expect("listed above") {
                Ok(texts) if !o.frames.is_empty() => Embedded::Video(i, o.info, o.frames, texts),
                Ok(_) => Embedded::Failed(i, "no picture could be decoded".into()),
                Err(e) => Embedded::Failed(i, e),
            };
            if tx.send(msg).is_err() {
                return false;
            }
        }
        true
    };
    // Sends the queued frames as one batch (their pixels go into the stream's buffer;
    // the rest of each frame travels with the batch) and returns what finished.
    let submit = |stream: &mut ImageStream<Batch>, queue: &mut Batch| -> Result<Vec<(Batch, Embeddings)>, EmbedError> {
        let mut frames = std::mem::take(queue);
        let images: Vec<RgbImage> = frames
            .iter_mut()
            .map(|(_, f, _)| std::mem::replace(&mut f.image, RgbImage::filled(0, 0, [0; 3])))
            .collect();
        if let Some(second) = &also {
            // The switch's model sees the same pictures (decoded at the larger of the
            // two geometries); its vectors travel with the batch.
            let e = second.embed_images(&images)?;
            for (k, f) in frames.iter_mut().enumerate() {
                f.2 = Some(e.row(k).to_vec());
            }
        }
        stream.submit(frames.len(), frames, |k, out| model.preprocess(&images[k], out))
    };

    while let Ok(msg) = rx.recv() {
        let done = match msg {
            Decoded::Start(i, info) => {
                open.insert(
                    i,
                    Open {
                        info,
                        frames: Vec::new(),
                        waiting: 0,
                        end: None,
                    },
                );
                continue;
            }
            Decoded::Frame(i, f) => {
                if let Some(o) = open.get_mut(&i) {
                    o.waiting += 1;
                }
                queue.push((i, f, None));
                if queue.len() < batch {
                    continue;
                }
                submit(&mut stream, &mut queue)?
            }
            Decoded::End(i, result) => {
                match open.get_mut(&i) {
                    Some(o) => o.end = Some(result),
                    None => {
                        let error = result.err().unwrap_or_else(|| "no picture could be decoded".into());
                        if tx.send(Embedded::Failed(i, error)).is_err() {
                            break;
                        }
                        continue;
                    }
                }
                // The file's last frames go now, in a short batch if need be.
                if queue.iter().any(|(q, _, _)| *q == i) {
                    submit(&mut stream, &mut queue)?
                } else {
                    Vec::new()
                }
            }
        };
        if !settle(&mut open, done) {
            return Ok(());
        }
    }
    let mut done = if queue.is_empty() {
        Vec::new()
    } else {
        submit(&mut stream, &mut queue)?
    };
    done.extend(stream.flush()?);
    settle(&mut open, done);
    Ok(())
}

/// What a switch did.
#[derive(Clone, Debug, Serialize, Default)]
pub struct SwitchReport {
    pub job_id: i64,
    pub state: String,
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
    let store = &catalog.store;
    let from = catalog.model();
    let to = target.model_name().to_string();
    let mut report = SwitchReport {
        job_id,
        from: from.clone(),
        to: to.clone(),
        ..Default::default()
    };
    if to == from {
        store.finish_job(job_id, "succeeded", None).await.map_err(CatalogError::from)?;
        report.state = "succeeded".into();
        return Ok(report);
    }
    let switch = Switch {
        model: to.clone(),
        dim: target.dim(),
        dir: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
        job_id,
    };
    match store.pending_switch().await.map_err(CatalogError::from)? {
        Some(p) if p.model == switch.model => {}
        Some(_) => store.cancel_switch().await.map_err(CatalogError::from)?,
        None => {}
    }
    store.begin_switch(&switch).await.map_err(CatalogError::from)?;
    let todo = store.videos_missing(&to).await.map_err(CatalogError::from)?;
    if !store
        .start_job(job_id, todo.len() as i64)
        .await
        .map_err(CatalogError::from)?
    {
        store.cancel_switch().await.map_err(CatalogError::from)?;
        report.state = "canceled".into();
        return Ok(report);
    }
    let mut skipped: std::collections::HashSet<i64> = Default::default();
    let mut videos_done = 0usize;
    loop {
        let todo: Vec<_> = store
            .videos_missing(&to)
            .await
            .map_err(CatalogError::from)?
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
            let path = PathBuf::from(&v.path);
            // The stored frames stand for this file's content: a file that is gone or
            // changed cannot give the same pictures.
            let same = library::identity(&path).is_ok_and(|id| {
                id.size as i64 == v.size && id.mtime_ns == v.mtime_ns && id.hash == v.hash
            });
            let result = if same {
                reembed_video(catalog, &target, &path, v.id).await
            } else {
                Err(format!("{}: missing or changed since it was indexed", v.path))
            };
            let (state, error, frames) = match result {
                Ok(n) => ("indexed", None, n),
                Err(e) => {
                    skipped.insert(v.id);
                    report.not_reembedded.push(v.path.clone());
                    ("failed", Some(e), 0)
                }
            };
            report.frames += frames;
            videos_done += 1;
            store
                .put_job_file(
                    job_id,
                    &JobFile {
                        path: v.path.clone(),
                        state: state.into(),
                        error,
                        frames: frames as i64,
                    },
                )
                .await
                .map_err(CatalogError::from)?;
            store
                .job_progress(job_id, videos_done as i64, report.frames as i64)
                .await
                .map_err(CatalogError::from)?;
            let (missing, total) = store.vectors_missing(&to).await.map_err(CatalogError::from)?;
            let rate = report.frames as f64 / t0.elapsed().as_secs_f64().max(1e-3);
            progress(Progress::Switch {
                job_id,
                model: to.clone(),
                frames_done: (total - missing) as usize,
                frames_total: total as usize,
                eta_seconds: (rate > 0.0).then(|| missing as f64 / rate),
            });
        }
    }
    report.videos = videos_done - report.not_reembedded.len();
    report.wall_seconds = t0.elapsed().as_secs_f64();
    if cancel.load(Ordering::Relaxed) {
        store.cancel_switch().await.map_err(CatalogError::from)?;
        store.cancel_job(job_id).await.map_err(CatalogError::from)?;
        report.state = "canceled".into();
        return Ok(report);
    }
    catalog.finish_switch(&switch).await?;
    store.finish_job(job_id, "succeeded", None).await.map_err(CatalogError::from)?;
    report.state = "succeeded".into();
    progress(Progress::Switched { job_id, model: to });
    Ok(report)
}

/// Embeds one video's stored frames with `model` and stores the vectors; returns how
/// many. Decoding and inference run on this (dedicated) thread.
async fn reembed_video(catalog: &Catalog, model: &Embedder, path: &Path, video: i64) -> Result<usize, String> {
    let frames = catalog.store.frames_of(video).await.map_err(|e| e.to_string())?;
    let times: Vec<f64> = frames.iter().map(|f| f.peak).collect();
    let mut vectors = Vec::with_capacity(frames.len());
    // A few hundred pictures at a time, so a long video never sits in memory whole.
    for (chunk_frames, chunk_times) in frames.chunks(256).zip(times.chunks(256)) {
        let images = decode::frames_at(path, chunk_times, model.image_size(), 0).map_err(|e| e.to_string())?;
        let e = model.embed_images(&images).map_err(|e| e.to_string())?;
        vectors.extend(chunk_frames.iter().zip(e.rows()).map(|(f, v)| (f.id, v.to_vec())));
    }
    catalog
        .store
        .put_vectors(model.model_name(), &vectors)
        .await
        .map_err(|e| e.to_string())?;
    Ok(vectors.len())
}

/// The server's write path: queued index jobs run one at a time on a dedicated thread,
/// so searches on the async executor never wait for decoding or inference; a switch to
/// another model runs on a second thread beside them (while it is under way, index jobs
/// embed new footage with both models). The active model lives here: the API asks for
/// it per request, and a completed switch replaces it.
pub struct JobRunner {
    catalog: Arc<Catalog>,
    model: std::sync::RwLock<Arc<Embedder>>,
    /// The model a switch under way is moving to.
    target: std::sync::RwLock<Option<Arc<Embedder>>>,
    embed: EmbedOptions,
    wake: std::sync::Mutex<std::sync::mpsc::Sender<()>>,
    wake_switch: std::sync::Mutex<std::sync::mpsc::Sender<()>>,
    running: std::sync::Mutex<Option<(i64, Arc<AtomicBool>)>>,
    switching: std::sync::Mutex<Option<(i64, Arc<AtomicBool>)>>,
}

/// A job kind the runner knows.
pub const INDEX: &str = "index";
pub const SWITCH: &str = "switch";

impl JobRunner {
    /// Starts the worker threads; `handle` is the runtime the store's futures run on.
    pub fn start(
        catalog: Arc<Catalog>,
        model: Arc<Embedder>,
        embed: EmbedOptions,
        opts: IndexOptions,
        progress: ProgressSink,
        handle: tokio::runtime::Handle,
    ) -> Arc<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (stx, srx) = std::sync::mpsc::channel::<()>();
        let runner = Arc::new(Self {
            catalog: catalog.clone(),
            model: std::sync::RwLock::new(model),
            target: std::sync::RwLock::new(None),
            embed,
            wake: std::sync::Mutex::new(tx),
            wake_switch: std::sync::Mutex::new(stx),
            running: std::sync::Mutex::new(None),
            switching: std::sync::Mutex::new(None),
        });
        let (me, h, p) = (runner.clone(), handle.clone(), progress.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("vidseek-jobs".into())
            .spawn(move || {
                // Jobs a previous process left half-done come first.
                if let Err(e) = h.block_on(me.catalog.store.requeue_interrupted()) {
                    tracing::error!("re-queueing interrupted jobs: {e}");
                }
                let _ = ready_tx.send(());
                me.index_loop(&h, &opts, &p, &rx)
            })
            .expect("spawn job thread");
        let (me, h) = (runner.clone(), handle);
        std::thread::Builder::new()
            .name("vidseek-switch".into())
            .spawn(move || {
                let _ = ready_rx.recv(); // after the re-queueing
                me.switch_loop(&h, &progress, &srx)
            })
            .expect("spawn switch thread");
        runner
    }

    /// The model searches use now: the one whose vectors the catalog's index holds
    /// (during the instant a completing switch swaps the index, its target).
    pub fn model(&self) -> Arc<Embedder> {
        let active = self.catalog.model();
        if let Some(t) = self.target.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && t.model_name() == active
        {
            return t.clone();
        }
        self.model.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn queued(&self, handle: &tokio::runtime::Handle, kind: &str) -> Vec<crate::store::Job> {
        handle
            .block_on(self.catalog.store.enqueued_jobs())
            .unwrap_or_default()
            .into_iter()
            .filter(|j| j.kind == kind)
            .collect()
    }

    fn wait(rx: &std::sync::mpsc::Receiver<()>) -> bool {
        !matches!(
            rx.recv_timeout(std::time::Duration::from_secs(5)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        )
    }

    fn index_loop(&self, handle: &tokio::runtime::Handle, opts: &IndexOptions, progress: &ProgressSink, rx: &std::sync::mpsc::Receiver<()>) {
        loop {
            for job in self.queued(handle, INDEX) {
                let cancel = Arc::new(AtomicBool::new(false));
                *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some((job.id, cancel.clone()));
                let paths: Vec<PathBuf> = job.paths.iter().map(PathBuf::from).collect();
                let mut opts = opts.clone();
                opts.also_embed = self.target.read().unwrap_or_else(|e| e.into_inner()).clone();
                let r = handle.block_on(run_job(&self.catalog, self.model(), job.id, &paths, &opts, progress.clone(), cancel));
                if let Err(e) = r {
                    tracing::warn!("job {} failed: {e}", job.id);
                    let _ = handle.block_on(self.catalog.store.finish_job(job.id, "failed", Some(&e.to_string())));
                    progress(Progress::Finished {
                        job_id: job.id,
                        state: "failed".into(),
                        indexed: 0,
                        unchanged: 0,
                        failed: 0,
                    });
                }
                *self.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            if !Self::wait(rx) {
                break;
            }
        }
    }

    fn switch_loop(&self, handle: &tokio::runtime::Handle, progress: &ProgressSink, rx: &std::sync::mpsc::Receiver<()>) {
        loop {
            for job in self.queued(handle, SWITCH) {
                let Some(dir) = job.paths.first().map(PathBuf::from) else {
                    continue;
                };
                let fail = |e: String| {
                    tracing::warn!("switch job {} failed: {e}", job.id);
                    let _ = handle.block_on(self.catalog.store.cancel_switch());
                    let _ = handle.block_on(self.catalog.store.finish_job(job.id, "failed", Some(&e)));
                };
                let target = match Embedder::load(&dir, &self.embed) {
                    Ok(m) => Arc::new(m),
                    Err(e) => {
                        fail(e.to_string());
                        continue;
                    }
                };
                let cancel = Arc::new(AtomicBool::new(false));
                *self.switching.lock().unwrap_or_else(|e| e.into_inner()) = Some((job.id, cancel.clone()));
                *self.target.write().unwrap_or_else(|e| e.into_inner()) = Some(target.clone());
                let r = handle.block_on(run_switch(&self.catalog, target.clone(), &dir, job.id, progress.clone(), cancel));
                // The active model first, then the target goes: `model()` never hands out
                // one that does not match the index.
                if self.catalog.model() == target.model_name() {
                    *self.model.write().unwrap_or_else(|e| e.into_inner()) = target;
                }
                *self.target.write().unwrap_or_else(|e| e.into_inner()) = None;
                *self.switching.lock().unwrap_or_else(|e| e.into_inner()) = None;
                match r {
                    Ok(report) if report.state == "succeeded" => {
                        tracing::info!("switched to {} in {:.0} s", report.to, report.wall_seconds);
                    }
                    Ok(_) => {}
                    Err(e) => fail(e.to_string()),
                }
            }
            if !Self::wait(rx) {
                break;
            }
        }
    }

    /// Queues a job for `paths` and returns its id.
    pub async fn submit(&self, paths: &[PathBuf]) -> Result<i64, JobError> {
        let keys: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let id = self
            .catalog
            .store
            .create_job(INDEX, &keys)
            .await
            .map_err(CatalogError::from)?;
        let _ = self.wake.lock().unwrap_or_else(|e| e.into_inner()).send(());
        Ok(id)
    }

    /// Starts moving the library to the package in `dir` (checked by loading it now):
    /// returns the switch job's id. Refused while a switch to another model is under way.
    pub async fn switch_to(&self, dir: &Path) -> Result<i64, JobError> {
        let dir = dir.canonicalize().map_err(|e| {
            JobError::Model(EmbedError::PackageMissing {
                dir: PathBuf::from(format!("{} ({e})", dir.display())),
            })
        })?;
        let probe = Embedder::load(&dir, &self.embed)?;
        if probe.model_name() == self.catalog.model() {
            return Err(JobError::AlreadyActive(probe.model_name().to_string()));
        }
        if let Some(p) = self.catalog.store.pending_switch().await.map_err(CatalogError::from)?
            && p.model != probe.model_name()
        {
            return Err(JobError::SwitchUnderWay(p.model));
        }
        let id = self
            .catalog
            .store
            .create_job(SWITCH, &[dir.display().to_string()])
            .await
            .map_err(CatalogError::from)?;
        let _ = self.wake_switch.lock().unwrap_or_else(|e| e.into_inner()).send(());
        Ok(id)
    }

    /// Cancels a queued or running job (a switch job abandons the switch); false when
    /// it had already ended.
    pub async fn cancel(&self, id: i64) -> Result<bool, JobError> {
        for slot in [&self.running, &self.switching] {
            if let Some((running, flag)) = slot.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
                && *running == id
            {
                flag.store(true, Ordering::Relaxed);
            }
        }
        let live = self.catalog.store.cancel_job(id).await.map_err(CatalogError::from)?;
        if live
            && let Some(p) = self.catalog.store.pending_switch().await.map_err(CatalogError::from)?
            && p.job_id == id
            && self.switching.lock().unwrap_or_else(|e| e.into_inner()).is_none()
        {
            self.catalog.store.cancel_switch().await.map_err(CatalogError::from)?;
        }
        Ok(live)
    }
}
