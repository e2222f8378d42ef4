//! `bench`: the one-call device benchmark behind `vidseek bench gpu` (an orchestrator,
//! like `jobs`: it drives `embed`, `decode` through `jobs`, and the catalog).
//!
//! In one process, on whatever device the model runs on (CUDA on a GPU machine, CPU
//! elsewhere, reported): embed-only images/s at the asked batch sizes with host input,
//! through the indexing path's batch stream, and with device-resident input; then
//! end-to-end indexing of a folder of videos with software decoding and with FFmpeg's
//! CUDA hwaccel, as video-seconds indexed per wall second, with each file's actual
//! decoder (NVDEC, or software with the reason where it fell back). The report is JSON.
//! Under `VIDSEEK_EXPECT_CUDA=1` (a GPU machine's check) [`cuda_problems`] lists what
//! did not run on the GPU, and the command fails.
//! Videos are rendered beforehand (`--prepare`), because a GPU test machine may have no
//! `ffmpeg` command.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde_json::{Value, json};

use crate::catalog::{Access, Catalog, CatalogError};
use crate::embed::{EmbedError, Embedder, ImageStream, StreamOptions};
use crate::jobs::{self, IndexOptions, JobError};
use crate::library;
use crate::synth::{self, Codec, Rng, Scene, SynthError, VideoSpec};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Synth(#[from] SynthError),
    #[error("{path}: {reason}")]
    Videos { path: PathBuf, reason: String },
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct GpuBench {
    /// Batch sizes of the embed-only runs.
    pub batches: Vec<usize>,
    /// Timed repetitions per batch size (the median is reported).
    pub reps: usize,
    /// Folder of videos for the end-to-end runs (none: embed-only).
    pub videos: Option<PathBuf>,
    /// Periodic samples per second when indexing.
    pub fps: f64,
    /// Scratch folder for the end-to-end data folders.
    pub scratch: PathBuf,
}

/// Renders `files` H.264 videos of `seconds` each at `width` x `height`, 30 fps, into
/// `dir` (scenes of the synthetic domain, a cut every 4 s). Returns their paths.
pub fn prepare_videos(
    dir: &Path,
    files: usize,
    seconds: f64,
    width: u32,
    height: u32,
) -> Result<Vec<PathBuf>, BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::Videos {
        path: dir.to_path_buf(),
        reason: format!("cannot create it ({e})"),
    })?;
    let mut rng = Rng::new(1080);
    let mut out = Vec::new();
    for i in 0..files {
        let cuts = (seconds / 4.0).ceil() as usize;
        let scenes = (0..cuts)
            .map(|k| (Scene::random(&mut rng, 0.1), (seconds - 4.0 * k as f64).min(4.0)))
            .collect();
        let spec = VideoSpec {
            width,
            height,
            fps: (30, 1),
            codec: Codec::H264,
            scenes,
            seed: 1080 + i as u64,
            extra_args: Vec::new(),
        };
        let path = dir.join(format!("bench-{height}p30-{i:02}.mp4"));
        spec.write(&path)?;
        out.push(path);
    }
    Ok(out)
}

/// Embed-only throughput at each batch size, three ways, one realistic preprocessed
/// frame repeated to the batch:
/// - `host`: a plain call with the batch in ordinary host memory (ONNX Runtime copies
///   it to the device inside the call);
/// - `stream`: the indexing path, [`ImageStream`]: the batch written into page-locked
///   staging memory and copied to the device while the previous batch runs;
/// - `device`: the batch already in device memory, only the model run (and the
///   embeddings copied back) timed.
///
/// One warm-up each, then `reps` timed runs (stream: `reps` batches back to back).
fn embed_only(model: &Arc<Embedder>, batches: &[usize], reps: usize) -> Result<Vec<Value>, BenchError> {
    let per = model.pixels_per_image();
    let mut rng = Rng::new(3);
    let frame = synth::render(&Scene::random(&mut rng, 0.0), 1280, 720, &mut rng);
    let mut one = vec![0f32; per];
    model.preprocess(&frame, &mut one)?;
    let copy = |_: usize, out: &mut [f32]| {
        out.copy_from_slice(&one);
        Ok(())
    };
    let reps = reps.max(1);
    let mut out = Vec::new();
    for &b in batches {
        let pixels: Vec<f32> = one.iter().copied().cycle().take(per * b).collect();
        model.embed_pixels(&pixels)?;
        let mut secs = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            model.embed_pixels(&pixels)?;
            secs.push(t.elapsed().as_secs_f64());
        }
        drop(pixels);
        let host = crate::util::median(&secs);

        let mut stream = ImageStream::<()>::new(
            model.clone(),
            StreamOptions {
                max_batch: b,
                ..StreamOptions::default()
            },
        )?;
        stream.submit(b, (), copy)?;
        stream.flush()?;
        let t = Instant::now();
        for _ in 0..reps {
            stream.submit(b, (), copy)?;
        }
        stream.flush()?;
        let streamed = t.elapsed().as_secs_f64() / reps as f64;

        stream.time_resident(b, 1, copy)?;
        let device = crate::util::median(&stream.time_resident(b, reps, copy)?);
        drop(stream);
        let rate = |s: f64| json!({"median_s": s, "images_per_s": b as f64 / s});
        out.push(json!({
            "batch": b,
            "host": rate(host),
            "stream": rate(streamed),
            "device": rate(device),
            "stream_vs_device": device / streamed,
            "host_vs_device": device / host,
        }));
    }
    Ok(out)
}

/// Indexes every video in `dir` into a fresh data folder, with the decoder in the mode
/// asked for; returns the job's numbers.
async fn index_run(
    model: &Arc<Embedder>,
    videos: &[PathBuf],
    data: &Path,
    fps: f64,
    hwaccel: bool,
) -> Result<Value, BenchError> {
    let _ = std::fs::remove_dir_all(data);
    let catalog = Catalog::open(data, model.model_name(), model.dim(), Access::Write).await?;
    let paths: Vec<String> = videos.iter().map(|p| p.display().to_string()).collect();
    let job = jobs::Queue::new(&catalog)
        .submit(crate::catalog::JobKind::Index, &paths)
        .await?;
    let mut opts = IndexOptions {
        hwaccel: Some(hwaccel),
        ..IndexOptions::default()
    };
    opts.sample.fps = fps;
    // Throughput of exactly one frame per 1/fps s: no near-duplicate collapse.
    opts.sample.dedup_threshold = 0.0;
    if model.provider() == "CUDA" {
        opts.queue = 1024;
    }
    let t = Instant::now();
    let report = jobs::run_job(
        &catalog,
        model.clone(),
        job,
        videos,
        &opts,
        Arc::new(|_| {}),
        Arc::new(AtomicBool::new(false)),
    )
    .await?;
    let wall = t.elapsed().as_secs_f64();
    catalog.close().await;
    let failed: Vec<Value> = report
        .files
        .iter()
        .filter_map(|f| match &f.outcome {
            jobs::Outcome::Failed { error } => Some(json!({"path": f.path, "error": error})),
            _ => None,
        })
        .collect();
    // How each file was decoded, as the decoder reported it.
    let decoders: Vec<Value> = report
        .files
        .iter()
        .filter_map(|f| match &f.outcome {
            jobs::Outcome::Indexed { decoder, .. } => Some(json!({"path": f.path, "decoder": decoder})),
            _ => None,
        })
        .collect();
    let fell_back: Vec<Value> = if hwaccel {
        decoders.iter().filter(|d| d["decoder"] != "cuda").cloned().collect()
    } else {
        Vec::new()
    };
    Ok(json!({
        "decode": if hwaccel { "cuda hwaccel asked" } else { "software" },
        "decoders": decoders,
        "fell_back": fell_back,
        "files": videos.len(),
        "failed": failed,
        "frames": report.frames,
        "video_seconds": report.video_seconds,
        "wall_seconds": wall,
        "video_seconds_per_s": report.video_seconds / wall,
        "frames_per_s": report.frames as f64 / wall,
    }))
}

/// What a report shows running off the GPU, for a machine that must run on it
/// (`VIDSEEK_EXPECT_CUDA=1`): the model not on CUDA, files of the hwaccel run decoded
/// in software (each with its reason) or not indexed. Empty: all on the GPU.
pub fn cuda_problems(report: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if report["provider"] != "CUDA" {
        out.push(format!("the model ran on {}, not CUDA", report["provider"]));
    }
    let runs = report["end_to_end"].as_array().map(Vec::as_slice).unwrap_or_default();
    for run in runs.iter().filter(|r| r["decode"] != "software") {
        for f in run["fell_back"].as_array().into_iter().flatten() {
            out.push(format!("{} was not decoded by NVDEC: {}", f["path"], f["decoder"]));
        }
        for f in run["failed"].as_array().into_iter().flatten() {
            out.push(format!("{} failed: {}", f["path"], f["error"]));
        }
    }
    out
}

/// Runs the whole benchmark and returns the report.
pub async fn gpu(model: Arc<Embedder>, opts: &GpuBench) -> Result<Value, BenchError> {
    let embed = embed_only(&model, &opts.batches, opts.reps)?;
    let mut end_to_end = Vec::new();
    if let Some(dir) = &opts.videos {
        let videos = library::scan(std::slice::from_ref(dir))
            .map_err(|e| BenchError::Videos {
                path: dir.clone(),
                reason: e.to_string(),
            })?
            .files;
        if videos.is_empty() {
            return Err(BenchError::Videos {
                path: dir.clone(),
                reason: "no videos there; render some with `vidseek bench gpu --prepare`".into(),
            });
        }
        for hwaccel in [false, true] {
            let data = opts.scratch.join(if hwaccel { "e2e-hw" } else { "e2e-sw" });
            end_to_end.push(index_run(&model, &videos, &data, opts.fps, hwaccel).await?);
        }
    }
    Ok(json!({
        "model": model.model_name(),
        "provider": model.provider(),
        "fp16": model.is_fp16(),
        "embed_only": embed,
        "embed_only_note": "host: plain call from ordinary memory; stream: the indexing path \
            (page-locked staging, copy overlapped with the previous batch); device: input already \
            in device memory. stream_vs_device is the host-input target ratio (>= 0.8).",
        "end_to_end": end_to_end,
        "sample_fps": opts.fps,
    }))
}
