//! The indexing pipeline: decoder threads -> the inference thread -> the caller, which
//! writes each finished video to the catalog in one transaction.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::commit::{Counters, file_done, write_failure, write_video};
use super::plan::Work;
use super::speech::{self, SpeechStage};
use super::texts::{read_text, screen_text, subtitles};
use super::{FileReport, IndexOptions, JobError, JobReport, Outcome, ProgressSink};
use crate::catalog::{Catalog, NewText};
use crate::decode::{self, SampleOptions, SampledFrame, VideoInfo};
use crate::embed::{EmbedError, Embedder, Embeddings, ImageStream, StreamOptions};
use crate::image::RgbImage;
use crate::ocr::{CueReader, Ocr};

/// Decoded material for one file, in order: `Start`, frames, then `End`.
enum Decoded {
    Start(usize, VideoInfo),
    Frame(usize, SampledFrame),
    End(usize, Result<Ended, String>),
}

/// What a decoder hands on once a file's frames are all sent: its texts, and how its
/// pictures were decoded (`SampleStats::hwaccel`: "software", "cuda", or "software
/// (REASON)" where the hwaccel was asked for and could not be used).
struct Ended {
    texts: Vec<NewText>,
    decoder: String,
}

/// A frame on its way to the store.
pub(super) struct Pending {
    pub(super) frame: SampledFrame,
    pub(super) vector: Vec<f32>,
    /// Its vector of the model a switch is moving to, when one is under way.
    pub(super) extra: Option<(String, Vec<f32>)>,
}

enum Embedded {
    Video(usize, VideoInfo, Vec<Pending>, Ended),
    Failed(usize, String),
    Frames(usize, f64),
}

/// How the model's side of a pipeline ended, once every file it finished is written.
/// (An error that stops the job at once, a store that cannot be written, is `run`'s
/// `Err` instead.)
#[must_use]
pub(super) enum ModelOutcome {
    /// The model embedded every frame it was given.
    Ran,
    /// The model failed, or its thread panicked: the files finished before are kept,
    /// and the job ends as failed with this error.
    Failed(JobError),
}

/// Indexes the planned files; returns how the model's side ended (its failure ends the
/// job as failed after what was finished is kept), or an error that stops it at once.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    catalog: &Catalog,
    embedder: Arc<Embedder>,
    job_id: i64,
    work: &[Work],
    opts: &IndexOptions,
    progress: &ProgressSink,
    cancel: &Arc<AtomicBool>,
    report: &mut JobReport,
) -> Result<ModelOutcome, JobError> {
    // Decode threads -> embed thread -> this thread (store + indexes).
    let (drx, decoder_threads) = start_decoders(&embedder, work, opts, cancel);
    let (erx, inference) = start_inference(embedder, opts, drx);
    let mut done = Counters::new(work.len(), report.files.len());
    // The channel is drained on this async task; each receive blocks briefly, which is
    // why jobs run on their own runtime thread (CLI) or a blocking task (server).
    while let Ok(msg) = erx.recv() {
        match msg {
            Embedded::Frames(i, t) => done.frame(job_id, i, t, work, progress),
            Embedded::Video(i, info, frames, ended) => {
                let w = &work[i];
                let (video_id, n) = write_video(catalog, w, &info, frames, ended.texts).await?;
                let r = FileReport {
                    path: w.path.display().to_string(),
                    outcome: Outcome::Indexed {
                        video_id,
                        frames: n,
                        decoder: ended.decoder,
                    },
                    duration: info.duration,
                };
                done.file(i, info.duration);
                file_done(catalog, job_id, r, &done, progress, report).await?;
            }
            Embedded::Failed(i, error) => {
                let r = write_failure(catalog, &work[i], error).await?;
                done.file(i, 0.0);
                file_done(catalog, job_id, r, &done, progress, report).await?;
            }
        }
        // Let the runtime's other tasks run between messages (the job's lease heartbeat
        // on the CLI's one-thread runtime).
        tokio::task::yield_now().await;
    }
    for d in decoder_threads {
        let _ = d.join();
    }
    Ok(match inference.join() {
        Ok(Ok(())) => ModelOutcome::Ran,
        Ok(Err(e)) => ModelOutcome::Failed(e.into()),
        Err(_) => {
            tracing::error!("job {job_id}: the inference thread panicked");
            ModelOutcome::Failed(JobError::Panicked(
                "the inference thread panicked; the files in flight were not indexed".into(),
            ))
        }
    })
}

/// The decode threads, started on `work`: each takes the next file not yet taken.
fn start_decoders(
    embedder: &Embedder,
    work: &[Work],
    opts: &IndexOptions,
    cancel: &Arc<AtomicBool>,
) -> (Receiver<Decoded>, Vec<JoinHandle<()>>) {
    // Frames for OCR come at full resolution: fewer of them in flight.
    let queue = if opts.ocr.is_some() {
        opts.queue.min(16)
    } else {
        opts.queue
    };
    let (dtx, drx) = sync_channel::<Decoded>(queue.max(1));
    let for_decoders: Arc<Vec<(PathBuf, Result<VideoInfo, String>)>> =
        Arc::new(work.iter().map(|w| (w.path.clone(), w.info.clone())).collect());
    let mut sample_opts = opts.sample.clone();
    // Frames are always scaled to the model's own input size (224, 240, 336, 384 px
    // models exist): whatever the options say, another geometry would only be rescaled.
    sample_opts.short_side = embedder
        .image_size()
        .max(opts.also_embed.as_ref().map_or(0, |m| m.image_size()));
    if opts.exact_resize || opts.ocr.is_some() {
        // Full resolution (OCR reads small print there); the model's PIL-exact resize
        // does the rest.
        sample_opts.short_side = 0;
    }
    if opts.ocr.is_some() {
        // A caption appearing is a small change of the picture: every periodic sample is
        // kept (and read; unchanged pictures are not read twice, see ocr::cues).
        sample_opts.dedup_threshold = 0.0;
    }
    // The model on the GPU: decode there too (NVDEC), in software where that fails.
    sample_opts.hwaccel = opts.hwaccel.unwrap_or(embedder.provider() == "CUDA");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let decoders = opts.decoders_for(sample_opts.hwaccel, cores).min(work.len()).max(1);
    if decoders > 1 && sample_opts.threads == 0 && !sample_opts.hwaccel {
        // Share the cores between the software decoders rather than each taking all.
        sample_opts.threads = (cores / decoders).max(1);
    }
    let next_file = Arc::new(AtomicUsize::new(0));
    let readers = Readers {
        ocr: opts.ocr.clone().map(|o| (o, opts.ocr_min_confidence)),
        speech: opts.speech.clone(),
    };
    let threads = (0..decoders)
        .map(|d| {
            let (work, opts, tx) = (for_decoders.clone(), sample_opts.clone(), dtx.clone());
            let (cancel, next, readers) = (cancel.clone(), next_file.clone(), readers.clone());
            std::thread::Builder::new()
                .name(format!("vidseek-decode-{d}"))
                .spawn(move || decode_files(&work, &next, &opts, &readers, &tx, &cancel))
                .expect("spawn decode thread")
        })
        .collect();
    (drx, threads)
}

/// The inference thread, started on the decoders' output.
fn start_inference(
    embedder: Arc<Embedder>,
    opts: &IndexOptions,
    drx: Receiver<Decoded>,
) -> (Receiver<Embedded>, JoinHandle<Result<(), EmbedError>>) {
    let (etx, erx) = sync_channel::<Embedded>(4);
    // A graph fixed at a batch size (Immich's: 1) gets batches of exactly that size.
    let batch = embedder
        .image_batch()
        .unwrap_or_else(|| opts.batch_for(embedder.provider()));
    let also = opts.also_embed.clone();
    let inference = std::thread::Builder::new()
        .name("vidseek-embed".into())
        .spawn(move || embed_frames(embedder, also, batch, drx, &etx))
        .expect("spawn embed thread");
    (erx, inference)
}

/// What the decode threads read besides the pictures: on-screen text (OCR, with its
/// confidence floor) and speech.
#[derive(Clone)]
struct Readers {
    ocr: Option<(Arc<Ocr>, f32)>,
    speech: Option<Arc<SpeechStage>>,
}

/// A decode thread: takes the next file not yet taken, samples it, reads its subtitles,
/// and goes on until none is left (several such threads share `next`); a file's speech
/// is recognised on a thread of its own beside its frames. A panic while decoding a file
/// fails that file (logged with its name) and the thread goes on.
fn decode_files(
    work: &[(PathBuf, Result<VideoInfo, String>)],
    next: &AtomicUsize,
    opts: &SampleOptions,
    readers: &Readers,
    tx: &SyncSender<Decoded>,
    cancel: &AtomicBool,
) {
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some((path, info)) = work.get(i) else {
            break;
        };
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        // Facts first (from the plan: each file is probed once), so the embed thread
        // knows the file before its frames.
        let info = match info {
            Ok(info) => info.clone(),
            Err(e) => {
                if tx.send(Decoded::End(i, Err(e.clone()))).is_err() {
                    return;
                }
                continue;
            }
        };
        let audio_streams = info.audio_streams;
        if tx.send(Decoded::Start(i, info)).is_err() {
            return;
        }
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::thread::scope(|s| {
                let heard = readers
                    .speech
                    .as_deref()
                    .map(|sp| speech::start(s, sp, path, audio_streams));
                let mut reader = readers.ocr.as_ref().map(|(o, c)| CueReader::new(o, *c));
                let mut sink = |f: SampledFrame| {
                    // Decoding yields to searches between sampled frames too.
                    crate::util::priority::yield_to_searches(std::time::Duration::from_millis(20));
                    read_text(&mut reader, path, &f);
                    !cancel.load(Ordering::Relaxed) && tx.send(Decoded::Frame(i, f)).is_ok()
                };
                let sampled = decode::sample(path, opts, &mut sink);
                let spoken = speech::heard(heard, path);
                match sampled {
                    Ok((info, stats)) => Ok(Ended {
                        texts: [subtitles(path, &info), screen_text(reader, path), spoken].concat(),
                        decoder: stats.hwaccel,
                    }),
                    Err(e) => Err(e.to_string()),
                }
            })
        }));
        let end = decoded.unwrap_or_else(|p| {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!("the decoder panicked on {}: {what}", path.display());
            Err(format!(
                "internal error: the decoder failed on this file ({what}); please report it"
            ))
        });
        if cancel.load(Ordering::Relaxed) {
            let _ = tx.send(Decoded::End(i, Err("canceled".into())));
            break;
        }
        if tx.send(Decoded::End(i, end)).is_err() {
            return;
        }
    }
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
    let mut b = Batcher::new(model, also, batch, tx)?;
    while let Ok(msg) = rx.recv() {
        let done = match msg {
            Decoded::Start(i, info) => {
                b.open.insert(
                    i,
                    OpenFile {
                        info,
                        frames: Vec::new(),
                        waiting: 0,
                        end: None,
                    },
                );
                continue;
            }
            Decoded::Frame(i, f) => {
                if let Some(o) = b.open.get_mut(&i) {
                    o.waiting += 1;
                }
                b.queue.push((i, f, None));
                if b.queue.len() < batch {
                    continue;
                }
                b.submit()?
            }
            Decoded::End(i, result) => {
                match b.open.get_mut(&i) {
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
                if b.queue.iter().any(|(q, _, _)| *q == i) {
                    b.submit()?
                } else {
                    Vec::new()
                }
            }
        };
        if !b.settle(done) {
            return Ok(());
        }
    }
    let mut done = if b.queue.is_empty() { Vec::new() } else { b.submit()? };
    done.extend(b.stream.flush()?);
    b.settle(done);
    Ok(())
}

/// A file the inference thread has frames of.
struct OpenFile {
    info: VideoInfo,
    frames: Vec<Pending>,
    /// Frames queued or in flight.
    waiting: usize,
    /// The decoder's verdict, once it has sent the last frame.
    end: Option<Result<Ended, String>>,
}

/// Frames of one model call: (file, frame, its vector of the second model).
type Batch = Vec<(usize, SampledFrame, Option<Vec<f32>>)>;

/// The inference thread's state: the files open, the frames queued for the next batch,
/// and the model's batch stream.
struct Batcher<'a> {
    model: Arc<Embedder>,
    /// The model a switch is moving to, when one is under way.
    also: Option<Arc<Embedder>>,
    stream: ImageStream<Batch>,
    open: HashMap<usize, OpenFile>,
    queue: Batch,
    tx: &'a SyncSender<Embedded>,
}

impl<'a> Batcher<'a> {
    fn new(
        model: Arc<Embedder>,
        also: Option<Arc<Embedder>>,
        batch: usize,
        tx: &'a SyncSender<Embedded>,
    ) -> Result<Self, EmbedError> {
        let stream = ImageStream::<Batch>::new(
            model.clone(),
            StreamOptions {
                max_batch: batch,
                ..StreamOptions::default()
            },
        )?;
        Ok(Self {
            model,
            also,
            stream,
            open: HashMap::new(),
            queue: Vec::new(),
            tx,
        })
    }

    /// Sends the queued frames as one batch (their pixels go into the stream's buffer;
    /// the rest of each frame travels with the batch) and returns what finished.
    fn submit(&mut self) -> Result<Vec<(Batch, Embeddings)>, EmbedError> {
        // Searches first: a batch of image inference holds both cores for a while.
        crate::util::priority::yield_to_searches(std::time::Duration::from_millis(50));
        let mut frames = std::mem::take(&mut self.queue);
        let images: Vec<RgbImage> = frames
            .iter_mut()
            .map(|(_, f, _)| std::mem::replace(&mut f.image, RgbImage::filled(0, 0, [0; 3])))
            .collect();
        if let Some(second) = &self.also {
            // The switch's model sees the same pictures (decoded at the larger of the
            // two geometries); its vectors travel with the batch.
            let e = second.embed_images(&images)?;
            for (k, f) in frames.iter_mut().enumerate() {
                f.2 = Some(e.row(k).to_vec());
            }
        }
        let model = &self.model;
        self.stream
            .submit(frames.len(), frames, |k, out| model.preprocess(&images[k], out))
    }

    /// Puts each finished batch's vectors with their files, then sends on every file whose
    /// frames have all come back and whose decoder is done; false when the receiver has gone.
    fn settle(&mut self, done: Vec<(Batch, Embeddings)>) -> bool {
        for (frames, e) in done {
            for (k, (i, f, extra)) in frames.into_iter().enumerate() {
                let t = f.end;
                if let Some(o) = self.open.get_mut(&i) {
                    o.waiting -= 1;
                    o.frames.push(Pending {
                        frame: f,
                        vector: e.row(k).to_vec(),
                        extra: extra
                            .zip(self.also.as_ref())
                            .map(|(v, m)| (m.model_name().to_string(), v)),
                    });
                }
                let _ = self.tx.send(Embedded::Frames(i, t));
            }
        }
        let finished: Vec<usize> = self
            .open
            .iter()
            .filter(|(_, o)| o.waiting == 0 && o.end.is_some())
            .map(|(i, _)| *i)
            .collect();
        for i in finished {
            let o = self.open.remove(&i).expect("listed above");
            let msg = match o.end.expect("listed above") {
                Ok(ended) if !o.frames.is_empty() => Embedded::Video(i, o.info, o.frames, ended),
                Ok(_) => Embedded::Failed(i, "no picture could be decoded".into()),
                Err(e) => Embedded::Failed(i, e),
            };
            if self.tx.send(msg).is_err() {
                return false;
            }
        }
        true
    }
}
