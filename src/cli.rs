//! `cli`: the command line (clap). Parses, calls the library, prints. Every command is
//! a thin shell over the same functions the HTTP API and the tests call.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::bench;
use crate::catalog::{Access, Catalog, JobKind, VideoStatus};
use crate::config;
use crate::decode::{self, SampleOptions};
use crate::embed::{self, Device, EmbedOptions, Embedder};
use crate::jobs::{self, IndexOptions, JobReport, Outcome, Progress};
use crate::modelhub;
use crate::search::{self, SearchRequest};
use crate::synth;

#[derive(Parser, Debug)]
#[command(name = "vidseek", version, about = "Self-hosted text-to-video semantic search")]
/// The command line.
pub struct Cli {
    #[command(flatten)]
    /// Options accepted before or after the subcommand.
    pub global: Global,
    #[command(subcommand)]
    /// What to do.
    pub command: Command,
}

/// Options accepted before or after the subcommand.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Data folder (database, indexes, thumbnails).
    #[arg(long, global = true, env = "VIDSEEK_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Model package folder (model.json + ONNX graphs + tokenizer.json).
    #[arg(long, global = true, env = "VIDSEEK_MODEL", value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// ONNX Runtime shared library (libonnxruntime.so) or its folder.
    #[arg(long, global = true, env = "ORT_DYLIB_PATH", value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Where inference runs: auto (CUDA if usable, else CPU), cpu, cuda.
    #[arg(long, global = true, env = "VIDSEEK_DEVICE", default_value = "auto")]
    pub device: Device,
    /// Threads per inference session (default: one per core).
    #[arg(long, global = true, env = "VIDSEEK_THREADS", value_name = "N")]
    pub threads: Option<usize>,
    /// Embed queries with the package's int8 text tower on the CPU (files.textual_int8,
    /// made by models/quantize_text.py): faster, cosine >= 0.99 to the fp32 tower.
    #[arg(long, global = true, env = "VIDSEEK_TEXT_INT8")]
    pub text_int8: bool,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Global {
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(config::default_data_dir)
    }
    /// The model package to load: `--model` (`VIDSEEK_MODEL`), else the one the library
    /// in the data folder recorded (where a switch moved it), else the default.
    pub fn model_dir(&self) -> PathBuf {
        if let Some(m) = &self.model {
            return m.clone();
        }
        let data = self.data_dir();
        let db = crate::catalog::db_path(&data);
        if db.is_file()
            && let Ok(rt) = runtime()
            && let Ok(Some(dir)) = rt.block_on(async { crate::catalog::info(&data).await.map(|i| i.model_dir) })
            && dir.join(embed::MANIFEST_FILE).is_file()
        {
            return dir;
        }
        config::default_model_dir(&data)
    }
    pub fn embed_options(&self) -> EmbedOptions {
        EmbedOptions {
            ort_lib: self.ort_lib.clone(),
            device: self.device,
            intra_threads: self.threads,
            text_int8: self.text_int8,
            concurrent_queries: false,
        }
    }
    pub fn load_model(&self) -> Result<Embedder> {
        let dir = self.model_dir();
        Ok(Embedder::load(&dir, &self.embed_options())?)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Embed a sentence or an image and print the CLIP vector.
    #[command(subcommand)]
    Embed(EmbedCmd),
    /// Report ONNX Runtime, execution providers, FFmpeg and the model package.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Get, import and list model packages.
    #[command(subcommand)]
    Model(ModelCmd),
    /// Index video files or folders (recursive); unchanged files are skipped.
    Index {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Periodic samples per second (shot changes add more).
        #[arg(long, default_value_t = 1.0)]
        fps: f64,
        /// Frames per model call (0: 16 on the CPU, 256 on CUDA).
        #[arg(long, default_value_t = 0)]
        batch: usize,
        /// Files decoded at once (0: 4 with GPU decoding, else one per four cores).
        #[arg(long, default_value_t = 0)]
        decoders: usize,
        /// Decode frames at full resolution and resize them exactly like the reference
        /// (PIL bicubic) instead of one swscale pass: slower, pixel-exact.
        #[arg(long)]
        exact_resize: bool,
        /// Machine-readable summary instead of a progress bar.
        #[arg(long)]
        json: bool,
    },
    /// Search the library: text in the query language, a picture, or a frame.
    #[command(after_long_help = QUERY_HELP)]
    Search {
        /// What to look for (the query language, below); may be left out with --image
        /// or --frame. A query that starts with `-` (a negative term) is taken as it is.
        #[arg(default_value = "", allow_hyphen_values = true)]
        query: String,
        /// Number of results.
        #[arg(short, default_value_t = 10)]
        k: i64,
        /// Only this video (id).
        #[arg(long)]
        video: Option<i64>,
        /// The cut-off: auto (only credible matches), off (everything, best first), or a
        /// cosine similarity between -1 and 1.
        #[arg(long, default_value = "auto")]
        min_score: String,
        /// Search by a picture (combined with the query text when there is one).
        #[arg(long)]
        image: Option<PathBuf>,
        /// More like this frame (the frame id of any result).
        #[arg(long)]
        frame: Option<i64>,
        /// The weight of the picture against the text's 1 (above 0, at most 10).
        #[arg(long, default_value_t = 1.0)]
        image_weight: f32,
        /// Prompt templates a short query is embedded through: auto (the model's),
        /// none (as written), or a file of templates, one a line with {}.
        #[arg(long, default_value = "auto", value_name = "auto|none|FILE")]
        templates: String,
        /// Only moments with this zero-shot tag (repeatable; the same as tag:LABEL).
        #[arg(long = "tag", value_name = "LABEL")]
        tags: Vec<String>,
        /// More like these frames (ids from results): a few-shot probe is trained on them.
        #[arg(long, value_delimiter = ',', value_name = "ID,...")]
        like: Vec<i64>,
        /// ... and unlike these.
        #[arg(long, value_delimiter = ',', value_name = "ID,...")]
        unlike: Vec<i64>,
        /// Save the probe of --like/--unlike (and the query) as a named tag.
        #[arg(long, value_name = "NAME", requires = "like")]
        save_tag: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Measure search on known moments: TRUTH is a JSON list of {"query", "path",
    /// "start", "end"}; reports R@1, R@5, R@10, mAP, the median peak error and misses.
    Eval {
        truth: PathBuf,
        /// The cut-off the searches use (off: ranking quality).
        #[arg(long, default_value = "off")]
        min_score: String,
        /// Prompt templates: auto, none or a file (see `search --templates`).
        #[arg(long, default_value = "auto", value_name = "auto|none|FILE")]
        templates: String,
        #[arg(long)]
        json: bool,
    },
    /// The library's label vocabulary for zero-shot tags.
    #[command(subcommand)]
    Labels(LabelsCmd),
    /// The zero-shot tags of the library: each label with its moments and videos.
    Tags {
        #[arg(long)]
        json: bool,
    },
    /// List indexed (and failed) videos.
    Videos {
        #[arg(long)]
        json: bool,
    },
    /// Remove a video from the library by path or id (the file is not touched).
    Remove { target: String },
    /// Remove videos whose files no longer exist.
    Prune,
    /// Re-embed every video with the model given by --model (the same as `model use`).
    Reembed {
        #[arg(long)]
        json: bool,
    },
    /// Render sample footage of the synthetic scene domain (videos + truth.json).
    SampleFootage {
        dir: PathBuf,
        /// Number of videos.
        #[arg(long, default_value_t = 4)]
        videos: usize,
        /// Scenes per video.
        #[arg(long, default_value_t = 6)]
        scenes: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Serve the web UI and HTTP API.
    Serve(ServeArgs),
    /// The offline demo: render sample footage, index it, show searches, serve the UI.
    Demo {
        /// Stop after indexing and the example searches.
        #[arg(long)]
        no_serve: bool,
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: std::net::SocketAddr,
    },
    /// Benchmarks that need no source tree (`bench gpu`: the device check).
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Render synthetic scenes and classify them zero-shot (a quick model check).
    ZeroShot {
        /// Frames to render.
        #[arg(long, default_value_t = 64)]
        frames: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum LabelsCmd {
    /// Set the vocabulary from a file (one label a line, `#` comments); the tags are
    /// recomputed from the stored vectors, without decoding.
    Set {
        file: Option<PathBuf>,
        /// Back to the default vocabulary (the model's labels, else the built-in list).
        #[arg(long, conflicts_with = "file")]
        default: bool,
    },
    /// Print the vocabulary.
    Show {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on (a non-loopback address needs --token).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: std::net::SocketAddr,
    /// Library folder (repeatable): uploads go to the first; POST /api/index accepts paths inside them.
    #[arg(long = "library", value_name = "DIR")]
    pub libraries: Vec<PathBuf>,
    /// Index new and changed files under the library folders automatically.
    #[arg(long)]
    pub watch: bool,
    /// Access token required on every API call.
    #[arg(long, env = "VIDSEEK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Largest upload in MiB.
    #[arg(long, default_value_t = 4096)]
    pub max_upload_mb: u64,
    /// Periodic samples per second when indexing.
    #[arg(long, default_value_t = 1.0)]
    pub fps: f64,
}

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Embed-only images/s at each batch size, then end-to-end indexing of a folder of
    /// videos with software and with CUDA hwaccel decoding; prints a JSON report.
    Gpu(GpuArgs),
}

#[derive(Args, Debug, Clone)]
pub struct GpuArgs {
    /// Only render the benchmark videos into DIR (needs the ffmpeg command) and exit.
    #[arg(long, value_name = "DIR")]
    pub prepare: Option<PathBuf>,
    /// With --prepare: how many files, how long, how tall (16:9).
    #[arg(long, default_value_t = 8)]
    pub files: usize,
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    #[arg(long, default_value_t = 1080)]
    pub height: u32,
    /// Folder of videos for the end-to-end runs (default: embed-only).
    #[arg(long, value_name = "DIR")]
    pub videos: Option<PathBuf>,
    /// Embed-only batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "256,1024")]
    pub batches: Vec<usize>,
    /// Timed repetitions per batch size.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Periodic samples per second when indexing.
    #[arg(long, default_value_t = 1.0)]
    pub fps: f64,
    /// Also write the report here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum EmbedCmd {
    /// Embed a sentence.
    Text {
        text: String,
        #[arg(long)]
        json: bool,
    },
    /// Embed an image file (PNG, JPEG, ...; decoded by FFmpeg).
    Image {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ModelCmd {
    /// Download a known ONNX CLIP from the Hugging Face hub at its pinned commit and make
    /// it a package (needs internet; HF_ENDPOINT, HF_TOKEN and the proxy variables apply).
    Pull {
        name: String,
        /// Target folder (default: <data>/models/NAME).
        #[arg(long)]
        dest: Option<PathBuf>,
        /// A commit, branch or tag instead of the pinned commit.
        #[arg(long)]
        revision: Option<String>,
        /// Which weights of a layout that ships several: fp32, fp16, quantized.
        #[arg(long, default_value = "fp32")]
        variant: modelhub::Variant,
        #[arg(long)]
        json: bool,
    },
    /// Convert a local model folder (Immich, transformers.js or vidseek layout) into a package.
    Import {
        src: PathBuf,
        dest: PathBuf,
        /// Package name (default: the source folder's name).
        #[arg(long)]
        name: Option<String>,
        /// Which weights of a layout that ships several: fp32, fp16, quantized.
        #[arg(long, default_value = "fp32")]
        variant: modelhub::Variant,
    },
    /// List the models `pull` knows: dimension, image size, languages, licence, size, speed.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Validate a package (default: the configured model).
    Check { dir: Option<PathBuf> },
    /// The library's model and the switch under way, with its progress.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Move the library to another model without taking search down: every frame is
    /// re-embedded into a second vector set (searches keep using the current one), then
    /// the library switches at once. A killed run resumes where it stopped.
    Use {
        /// The model package folder.
        #[arg(required_unless_present = "cancel")]
        dir: Option<PathBuf>,
        /// Abandon the switch under way (the current model stays).
        #[arg(long)]
        cancel: bool,
        #[arg(long)]
        json: bool,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Embed(cmd) => embed_cmd(g, cmd),
        Command::Doctor { json } => doctor(g, *json),
        Command::Model(cmd) => model_cmd(g, cmd),
        Command::ZeroShot { frames, json } => zero_shot(g, *frames, *json),
        Command::Bench(BenchCmd::Gpu(args)) => bench_gpu(g, args),
        Command::Serve(args) => serve(g, args),
        Command::Demo { no_serve, bind } => demo(g, *no_serve, *bind),
        Command::Index {
            paths,
            fps,
            batch,
            decoders,
            exact_resize,
            json,
        } => index(g, paths, *fps, *batch, *decoders, *exact_resize, *json),
        Command::Search {
            query,
            k,
            video,
            min_score,
            image,
            frame,
            image_weight,
            templates,
            tags,
            like,
            unlike,
            save_tag,
            json,
        } => {
            let mut req = SearchRequest::new(query.clone(), *k);
            req.video = *video;
            req.min_score = min_score.parse()?;
            req.image = image.clone().map(search::ImageQuery::File);
            req.frame = *frame;
            req.image_weight = *image_weight;
            req.templates = templates_arg(templates)?;
            req.tags = tags.clone();
            req.like = like.clone();
            req.unlike = unlike.clone();
            search_cmd(g, req, save_tag.as_deref(), *json)
        }
        Command::Eval {
            truth,
            min_score,
            templates,
            json,
        } => eval_cmd(g, truth, min_score, &templates_arg(templates)?, *json),
        Command::Labels(cmd) => labels_cmd(g, cmd),
        Command::Tags { json } => tags_cmd(g, *json),
        Command::Videos { json } => videos(g, *json),
        Command::Remove { target } => remove(g, target),
        Command::Prune => prune(g),
        Command::Reembed { json } => reembed(g, *json),
        Command::SampleFootage {
            dir,
            videos,
            scenes,
            seed,
        } => sample_footage(dir, *videos, *scenes, *seed),
    }
}

fn bench_gpu(g: &Global, a: &GpuArgs) -> Result<()> {
    if let Some(dir) = &a.prepare {
        let width = (a.height * 16 / 9) & !1;
        let files = bench::prepare_videos(dir, a.files, a.seconds, width, a.height)?;
        println!(
            "rendered {} videos of {} s at {width}x{} into {}",
            files.len(),
            a.seconds,
            a.height,
            dir.display()
        );
        return Ok(());
    }
    if a.batches.is_empty() || a.batches.contains(&0) {
        bail!("--batches takes positive batch sizes, e.g. 256,1024");
    }
    let model = Arc::new(g.load_model()?);
    let scratch = std::env::temp_dir().join(format!("vidseek-bench-{}", std::process::id()));
    let opts = bench::GpuBench {
        batches: a.batches.clone(),
        reps: a.reps,
        videos: a.videos.clone(),
        fps: a.fps,
        scratch: scratch.clone(),
    };
    let report = runtime()?.block_on(bench::gpu(model, &opts));
    let _ = std::fs::remove_dir_all(&scratch);
    let report = report?;
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(out) = &a.out {
        std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
    }
    println!("{text}");
    Ok(())
}

fn sample_footage(dir: &std::path::Path, videos: usize, scenes: usize, seed: u64) -> Result<()> {
    let truth = synth::sample_library(dir, videos, scenes, seed)?;
    println!("{}", serde_json::to_string_pretty(&truth)?);
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// A progress bar over the seconds of video to index.
fn progress_bar(json: bool) -> (jobs::ProgressSink, Option<indicatif::ProgressBar>) {
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

fn index_options(fps: f64, batch: usize, decoders: usize) -> Result<IndexOptions> {
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
async fn run_jobs(
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

fn print_reports(reports: &[JobReport], json: bool) -> Result<()> {
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

fn index(
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

/// The query language, for `vidseek search --help`.
const QUERY_HELP: &str = "\
The query language:
  red circle            words: the sentence is embedded; the words also match subtitles,
                        titles and file names (stop words never match by themselves)
  \"a red circle\"        a phrase: matches text only as a whole
  -blue  -\"a blue sky\"  negative terms: frames that look like them are dropped or pushed
                        down; text with them does not match
  beach^2               a weight (0 to 10) for a word or a phrase
  path:holiday          file path contains the text (path:*.mkv or path:2024/*/beach*: a glob)
  ext:mp4               file extension;  -path: -ext: -video: exclude
  after:2024-06  before:2025-01-31   file time (YYYY, YYYY-MM, YYYY-MM-DD[THH:MM[:SS]])
  longer:90s  shorter:1h30m          video duration (90, 90s, 1.5m, 2m30s, 1h, 1:30)
  video:12              only this video;  source:visual or source:text: only that kind of match
  A >> B   A >>30s B    a moment like A followed within 60 s (or the gap given) by one like B
  tag:\"a red circle\"    only moments with this zero-shot tag (-tag: excludes; tags alone
                        list their moments); `vidseek tags` lists them
Short queries (a name of up to four words, e.g. \"red circle\") are embedded through the
model's prompt templates (--templates); sentences as written. --like ID,... trains a
few-shot probe on frames of earlier results (--unlike: frames to avoid).
Filters restrict before ranking. By default only credible matches are shown (--min-score
auto: a result must look more like the query than like any label of the model's vocabulary,
within a margin); --min-score off shows every result, best first.

Examples:
  vidseek search \"a dog catching a frisbee\" ext:mp4 after:2024
  vidseek search 'beach -crowd path:holiday/*'
  vidseek search --image photo.jpg \"at night\"
  vidseek search --frame 1234";

/// `--templates auto|none|FILE`.
fn templates_arg(s: &str) -> Result<search::prompts::Templates> {
    Ok(match s {
        "auto" | "none" => s.parse()?,
        file => {
            let path = PathBuf::from(file);
            if !path.is_file() {
                return Err(search::SearchError::BadTemplates(format!(
                    "--templates {file}: no such file; give auto, none, or a file of templates (one a line, each with {{}})"
                ))
                .into());
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read the templates {file}"))?;
            search::prompts::Templates::given(embed::parse_labels(&text))
                .map_err(|e| anyhow::anyhow!(e).context(format!("in {file}")))?
        }
    })
}

fn labels_cmd(g: &Global, cmd: &LabelsCmd) -> Result<()> {
    let model = Arc::new(g.load_model()?);
    let rt = runtime()?;
    rt.block_on(async {
        let catalog = Catalog::open(&g.data_dir(), model.model_name(), model.dim(), Access::Read).await?;
        match cmd {
            LabelsCmd::Set { file, default } => {
                let text = match (file, default) {
                    (Some(f), false) => Some(
                        std::fs::read_to_string(f)
                            .with_context(|| format!("cannot read the label file {}", f.display()))?,
                    ),
                    (None, true) => None,
                    _ => bail!("give a label file (one label a line) or --default"),
                };
                search::tags::set_labels(&catalog, text.as_deref()).await?;
                let (labels, _) = search::tags::labels(&catalog, &model).await?;
                let n = search::tags::ensure(&catalog, &model).await?;
                println!(
                    "{} labels; tags recomputed for {n} videos from the stored vectors",
                    labels.len()
                );
            }
            LabelsCmd::Show { json } => {
                let (labels, set) = search::tags::labels(&catalog, &model).await?;
                if *json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&json!({"labels": labels, "default": !set}))?
                    );
                } else {
                    if !set {
                        eprintln!("(the default vocabulary: `vidseek labels set FILE` sets the library's own)");
                    }
                    for l in labels {
                        println!("{l}");
                    }
                }
            }
        }
        catalog.close().await;
        anyhow::Ok(())
    })
}

fn tags_cmd(g: &Global, json: bool) -> Result<()> {
    let model = Arc::new(g.load_model()?);
    let rt = runtime()?;
    let tags = rt.block_on(async {
        let catalog = Catalog::open(&g.data_dir(), model.model_name(), model.dim(), Access::Read).await?;
        let t = search::tags::counts(&catalog, &model).await;
        catalog.close().await;
        anyhow::Ok(t?)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({ "tags": tags }))?);
    } else if tags.is_empty() {
        println!("no tags yet: index videos, or set a vocabulary with `vidseek labels set FILE`");
    } else {
        for t in &tags {
            println!("{:>6} moments  {:>4} videos  {}", t.moments, t.videos, t.label);
        }
    }
    Ok(())
}

fn search_cmd(g: &Global, req: SearchRequest, save_tag: Option<&str>, json: bool) -> Result<()> {
    search::validate(&req)?;
    let model = Arc::new(g.load_model()?);
    let rt = runtime()?;
    let resp = rt.block_on(async {
        let catalog = Catalog::open(&g.data_dir(), model.model_name(), model.dim(), Access::Read).await?;
        let resp = search::search(&catalog, model.clone(), &req).await?;
        if let Some(name) = save_tag {
            search::tags::save_probe(
                &catalog,
                crate::catalog::SavedProbe {
                    name: name.to_string(),
                    query: req.query.clone(),
                    likes: req.like.clone(),
                    unlikes: req.unlike.clone(),
                },
            )
            .await?;
            let n = search::tags::ensure(&catalog, &model).await?;
            eprintln!("saved the probe as the tag {name:?}; tags recomputed for {n} videos");
        }
        anyhow::Ok(resp)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&resp)?);
    } else if resp.results.is_empty() {
        if resp.withheld > 0 {
            println!(
                "no good match for {:?} ({} weaker matches held back: --min-score off shows them)",
                resp.query, resp.withheld
            );
        } else {
            println!("no matches for {:?}", resp.query);
        }
    } else {
        for r in &resp.results {
            let frame = r.frame_id.map(|f| format!("  frame {f}")).unwrap_or_default();
            let text = r.text.as_deref().map(|t| format!("  \"{t}\"")).unwrap_or_default();
            let tags = if r.tags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", r.tags.join(", "))
            };
            println!(
                "{}  {}-{}  {:.3}  {:?}{frame}{text}{tags}",
                r.path,
                search::clock(r.start),
                search::clock(r.end),
                r.score,
                r.source
            );
        }
        if resp.withheld > 0 {
            println!(
                "({} weaker matches held back: --min-score off shows them)",
                resp.withheld
            );
        }
    }
    Ok(())
}

fn eval_cmd(
    g: &Global,
    truth: &std::path::Path,
    min_score: &str,
    templates: &search::prompts::Templates,
    json: bool,
) -> Result<()> {
    let min_score: search::MinScore = min_score.parse()?;
    let text =
        std::fs::read_to_string(truth).with_context(|| format!("cannot read the truth file {}", truth.display()))?;
    let list = search::eval::parse_truth(&text).with_context(|| format!("in {}", truth.display()))?;
    let model = Arc::new(g.load_model()?);
    let rt = runtime()?;
    let report = rt.block_on(async {
        let catalog = Catalog::open(&g.data_dir(), model.model_name(), model.dim(), Access::Read).await?;
        anyhow::Ok(search::eval::run(&catalog, model.clone(), &list, min_score, templates).await?)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} queries, {} moments (cut-off {}, templates {})\nR@1 {:.3}  R@5 {:.3}  R@10 {:.3}  mAP {:.3}  median peak error {}",
        report.queries,
        report.moments,
        report.cutoff,
        report.templates,
        report.recall_at_1,
        report.recall_at_5,
        report.recall_at_10,
        report.map,
        report
            .median_peak_error
            .map(|e| format!("{e:.2} s"))
            .unwrap_or_else(|| "-".into())
    );
    for m in &report.misses {
        let rank = m
            .rank
            .map(|r| format!("rank {r}"))
            .unwrap_or_else(|| format!("not in the first {}", search::eval::DEPTH));
        let first = m
            .first
            .as_ref()
            .map(|f| {
                let also = if m.first_is_truth {
                    ", another moment of this query's truth"
                } else {
                    ""
                };
                format!(
                    "{} {}-{} ({:.3}{also})",
                    f.path,
                    search::clock(f.start),
                    search::clock(f.end),
                    f.score
                )
            })
            .unwrap_or_else(|| "nothing".into());
        println!(
            "miss: {:?} {} {}-{}: {rank}; first came {first}",
            m.query,
            m.path,
            search::clock(m.start),
            search::clock(m.end)
        );
    }
    Ok(())
}

/// The exit status of a failed command: 2 for a query, truth file or argument the user
/// must fix (as clap uses for usage errors), 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    use crate::error::{Classified, Fault};
    let bad = e.chain().any(|c| {
        c.downcast_ref::<search::SearchError>()
            .is_some_and(|s| s.fault() == Fault::BadInput)
            || c.downcast_ref::<search::eval::EvalError>()
                .is_some_and(|s| s.fault() == Fault::BadInput)
    });
    if bad { 2 } else { 1 }
}

fn videos(g: &Global, json: bool) -> Result<()> {
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
async fn open_for_maintenance(g: &Global) -> Result<Catalog> {
    let data = g.data_dir();
    let (name, dim) = match crate::catalog::info(&data).await?.model {
        Some(m) => m,
        None => bail!("the library in {} is empty", data.display()),
    };
    Ok(Catalog::open(&data, &name, dim, Access::Write).await?)
}

fn remove(g: &Global, target: &str) -> Result<()> {
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

fn prune(g: &Global) -> Result<()> {
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

fn reembed(g: &Global, json: bool) -> Result<()> {
    let Some(dir) = g.model.clone() else {
        bail!("give the model to re-embed with: vidseek --model DIR reembed (or `vidseek model use DIR`)");
    };
    model_use(g, Some(&dir), false, json)
}

/// `vidseek model use DIR`: the switch in the foreground (the server does the same in
/// the background through POST /api/model).
fn model_use(g: &Global, dir: Option<&std::path::Path>, cancel: bool, json: bool) -> Result<()> {
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

fn print_embedding(model: &Embedder, v: &[f32], json: bool) {
    if json {
        println!(
            "{}",
            json!({"model": model.model_name(), "dim": v.len(), "embedding": v})
        );
    } else {
        let head: Vec<String> = v.iter().take(8).map(|x| format!("{x:.4}")).collect();
        println!(
            "model {} ({}), dim {}: [{}, ...]",
            model.model_name(),
            model.provider(),
            v.len(),
            head.join(", ")
        );
    }
}

fn embed_cmd(g: &Global, cmd: &EmbedCmd) -> Result<()> {
    match cmd {
        EmbedCmd::Text { text, json } => {
            if text.trim().is_empty() {
                bail!("the text is empty: give a sentence, e.g. vidseek embed text \"a red circle\"");
            }
            let model = g.load_model()?;
            let e = model.embed_texts(&[text.as_str()])?;
            print_embedding(&model, e.row(0), *json);
        }
        EmbedCmd::Image { file, json } => {
            let img = decode::image(file)?;
            let model = g.load_model()?;
            let e = model.embed_images(&[img])?;
            print_embedding(&model, e.row(0), *json);
        }
    }
    Ok(())
}

fn doctor(g: &Global, json: bool) -> Result<()> {
    let mut ok = true;
    let mut report = serde_json::Map::new();
    let mut lines = Vec::new();

    match embed::runtime::init(g.ort_lib.as_deref()) {
        Ok(rt) => {
            let providers = embed::runtime::available_providers();
            report.insert(
                "onnxruntime".into(),
                json!({"library": rt.library, "version": rt.version, "providers": providers}),
            );
            lines.push(format!(
                "ONNX Runtime   {} (version {})",
                rt.library.display(),
                rt.version
            ));
            lines.push(format!("providers      {}", providers.join(", ")));
        }
        Err(e) => {
            ok = false;
            report.insert("onnxruntime".into(), json!({"error": e.to_string()}));
            lines.push(format!("ONNX Runtime   MISSING: {e}"));
        }
    }

    let ff = decode::library_versions();
    lines.push(format!(
        "FFmpeg         {}",
        ff.iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    report.insert(
        "ffmpeg".into(),
        serde_json::Value::Object(ff.iter().map(|(n, v)| (n.to_string(), json!(v))).collect()),
    );

    let dir = g.model_dir();
    match Embedder::load(&dir, &g.embed_options()) {
        Ok(m) => {
            let man = m.manifest();
            lines.push(format!(
                "model          {} ({}, dim {}, image {}px, context {}): valid",
                dir.display(),
                man.name,
                man.embedding_dim,
                man.image.size,
                man.text.context_length
            ));
            lines.push(format!("device         {:?} -> running on {}", g.device, m.provider()));
            let origin = man.origin.clone().unwrap_or_default();
            let known = modelhub::KNOWN
                .iter()
                .find(|k| Some(k.repo) == origin.repo.as_deref() || k.name == man.name);
            let sc = man.scoring();
            lines.push(format!(
                "layout         {}{}{}; image {} px {} {}{}; text {} tokens{}{}, clean-up {:?}; scores {:?} (scale {}{})",
                if origin.layout.is_empty() { "vidseek" } else { origin.layout.as_str() },
                origin.variant.as_deref().map(|v| format!(", {v}")).unwrap_or_default(),
                match (&origin.repo, &origin.revision) {
                    (Some(r), Some(c)) => format!(", {r}@{}", &c[..c.len().min(12)]),
                    _ => String::new(),
                },
                man.image.size,
                man.image.resize,
                man.image.interpolation,
                m.image_batch().map(|b| format!(", fixed batch {b}")).unwrap_or_default(),
                man.text.context_length,
                if man.text.dynamic_length && !man.text.pad_to_context { " (run at true length)" } else { " (padded)" },
                m.text_batch().map(|b| format!(", fixed batch {b}")).unwrap_or_default(),
                man.text.clean,
                sc.link,
                sc.logit_scale,
                sc.logit_bias.map(|b| format!(", bias {b}")).unwrap_or_default()
            ));
            if let Some(k) = known {
                lines.push(format!("limits         {} ({}; {})", k.limits, k.languages, k.licence));
            }
            report.insert(
                "layout".into(),
                json!({"origin": origin, "image_batch": m.image_batch(), "text_batch": m.text_batch(),
                       "scoring": sc, "limits": known.map(|k| k.limits), "languages": known.map(|k| k.languages)}),
            );
            if man.name.starts_with("tiny-clip") {
                lines.push(
                    "note           this is the bundled synthetic-domain model (coloured shapes only); \
                     for real footage run `vidseek model pull clip-vit-b32` where there is internet"
                        .into(),
                );
            }
            report.insert(
                "model".into(),
                json!({"dir": dir, "name": man.name, "dim": man.embedding_dim, "valid": true, "provider": m.provider(), "device": g.device,
                       "threads": g.threads}),
            );
            // A GPU machine's check (`.ci/gpu-run`) accepts no fallback.
            if std::env::var("VIDSEEK_EXPECT_CUDA").is_ok_and(|v| v.trim() == "1") && m.provider() != "CUDA" {
                ok = false;
                lines.push(format!(
                    "expected       CUDA (VIDSEEK_EXPECT_CUDA=1), but the model runs on {}",
                    m.provider()
                ));
            }
        }
        Err(e) => {
            ok = false;
            lines.push(format!("model          INVALID: {e}"));
            report.insert(
                "model".into(),
                json!({"dir": dir, "valid": false, "error": e.to_string()}),
            );
        }
    }
    lines.push(format!("data           {}", g.data_dir().display()));
    report.insert("data".into(), json!(g.data_dir()));
    report.insert("ok".into(), json!(ok));

    if json {
        println!("{}", serde_json::Value::Object(report));
    } else {
        for l in lines {
            println!("{l}");
        }
    }
    if !ok {
        bail!("vidseek is not ready: see the lines above");
    }
    Ok(())
}

fn model_cmd(g: &Global, cmd: &ModelCmd) -> Result<()> {
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

fn serve(g: &Global, args: &ServeArgs) -> Result<()> {
    let embed = EmbedOptions {
        concurrent_queries: true,
        ..g.embed_options()
    };
    let model = Arc::new(Embedder::load(&g.model_dir(), &embed)?);
    let index = index_options(args.fps, 0, 0)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let catalog = Arc::new(Catalog::open(&g.data_dir(), model.model_name(), model.dim(), Access::Write).await?);
        catalog.remember_model_dir(model.dir()).await?;
        let cfg = crate::api::ServeConfig {
            bind: args.bind,
            libraries: args.libraries.clone(),
            watch: args.watch,
            token: args.token.clone().filter(|t| !t.is_empty()),
            max_upload: args.max_upload_mb.saturating_mul(1024 * 1024),
            index,
            embed,
            search_permits: crate::api::SEARCH_PERMITS,
        };
        crate::api::serve(cfg, catalog, model).await?;
        anyhow::Ok(())
    })
}

/// Renders sample footage into the data folder (once), indexes it, runs a few example
/// searches against the known scenes, then serves the UI over that library.
fn demo(g: &Global, no_serve: bool, bind: std::net::SocketAddr) -> Result<()> {
    let data = g.data_dir();
    let lib = data.join("demo-library");
    let truth_file = lib.join("truth.json");
    if !truth_file.exists() {
        eprintln!("demo: rendering sample footage into {}", lib.display());
        synth::sample_library(&lib, 6, 6, 7)?;
    }
    let truth: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&truth_file)?)?;
    let model = Arc::new(g.load_model()?);
    let opts = IndexOptions::default();
    let rt = runtime()?;
    rt.block_on(async {
        let catalog = Catalog::open(&data, model.model_name(), model.dim(), Access::Write).await?;
        let reports = run_jobs(&catalog, model.clone(), std::slice::from_ref(&lib), &opts, false).await?;
        print_reports(&reports, false)?;
        println!("\nexample searches (the truth is in {}):", truth_file.display());
        let mut right = 0;
        let mut asked = 0;
        for v in truth.iter().take(3) {
            for s in v["scenes"].as_array().into_iter().flatten().take(2) {
                let caption = s["caption"].as_str().unwrap_or_default();
                let resp = search::search(&catalog, model.clone(), &SearchRequest::new(caption, 1)).await?;
                let (ws, we) = (s["start"].as_f64().unwrap_or(0.0), s["end"].as_f64().unwrap_or(0.0));
                // Right when the hit overlaps any scene with this caption (random footage
                // can show the same scene twice).
                let ok = resp.results.first().is_some_and(|r| {
                    truth.iter().any(|tv| {
                        tv["path"].as_str() == Some(r.path.as_str())
                            && tv["scenes"].as_array().into_iter().flatten().any(|ts| {
                                ts["caption"].as_str() == Some(caption)
                                    && r.start < ts["end"].as_f64().unwrap_or(0.0)
                                    && r.end > ts["start"].as_f64().unwrap_or(0.0)
                            })
                    })
                });
                asked += 1;
                right += ok as usize;
                match resp.results.first() {
                    Some(r) => println!(
                        "  {} {caption:?}\n      -> {}  {}-{}  {:.3}   (truth {}-{})",
                        if ok { "ok  " } else { "MISS" },
                        r.path,
                        search::clock(r.start),
                        search::clock(r.end),
                        r.score,
                        search::clock(ws),
                        search::clock(we)
                    ),
                    None => println!("  MISS {caption:?} -> nothing"),
                }
            }
        }
        println!("{right}/{asked} example searches found the right moment");
        // Every scene's caption as a query, scored like `vidseek eval`.
        let eval: Vec<search::eval::Truth> = truth
            .iter()
            .flat_map(|v| {
                let path = v["path"].as_str().unwrap_or_default().to_string();
                v["scenes"].as_array().cloned().unwrap_or_default().into_iter().map(move |s| search::eval::Truth {
                    query: s["caption"].as_str().unwrap_or_default().to_string(),
                    path: path.clone(),
                    start: s["start"].as_f64().unwrap_or(0.0),
                    end: s["end"].as_f64().unwrap_or(0.0),
                })
            })
            .collect();
        let eval_file = lib.join("eval.json");
        if !eval_file.exists() {
            // A demo library rendered before eval.json existed.
            std::fs::write(&eval_file, serde_json::to_string_pretty(&eval)?)?;
        }
        let r = search::eval::run(
            &catalog,
            model.clone(),
            &eval,
            search::MinScore::Off,
            &search::prompts::Templates::Auto,
        )
        .await?;
        println!(
            "eval over all {} scenes ({} queries; `vidseek eval {}` repeats it): R@1 {:.3}  R@5 {:.3}  R@10 {:.3}  mAP {:.3}  median peak error {}",
            r.moments,
            r.queries,
            eval_file.display(),
            r.recall_at_1,
            r.recall_at_5,
            r.recall_at_10,
            r.map,
            r.median_peak_error.map(|e| format!("{e:.2} s")).unwrap_or_else(|| "-".into())
        );
        catalog.close().await;
        anyhow::Ok(())
    })?;
    drop(rt);
    if no_serve {
        return Ok(());
    }
    println!("\nopen http://{bind}/ and search, e.g. \"a red circle\" (Ctrl-C stops)");
    serve(
        g,
        &ServeArgs {
            bind,
            libraries: vec![lib],
            watch: true,
            token: None,
            max_upload_mb: 4096,
            fps: 1.0,
        },
    )
}

/// Renders random scenes of the synthetic domain and classifies each against every
/// canonical caption: what the bundled model understands, with no files or network.
fn zero_shot(g: &Global, frames: usize, json: bool) -> Result<()> {
    let model = g.load_model()?;
    let labels = synth::Scene::canonical();
    let captions: Vec<String> = labels.iter().map(synth::Scene::caption).collect();
    let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
    let text = model.embed_texts(&refs)?;
    let mut rng = synth::Rng::new(2024);
    let sizes = [(640, 360), (480, 480), (360, 640), (640, 480)];
    let mut correct = 0;
    let mut rows = Vec::new();
    for i in 0..frames {
        let scene = synth::Scene::random(&mut rng, 0.1);
        let (w, h) = sizes[i % sizes.len()];
        let img = synth::render(&scene, w, h, &mut rng);
        let e = model.embed_images(&[img])?;
        let (best, score) = text
            .rows()
            .map(|t| crate::simd::dot(t, e.row(0)))
            .enumerate()
            .fold((0, f32::MIN), |a, (j, s)| if s > a.1 { (j, s) } else { a });
        let hit = labels[best].same_content(&scene);
        correct += hit as usize;
        rows.push(json!({"truth": scene.caption(), "predicted": captions[best], "score": score, "correct": hit}));
        if !json {
            println!(
                "{} {:<44} -> {:<44} {:.3}",
                if hit { "ok  " } else { "MISS" },
                scene.caption(),
                captions[best],
                score
            );
        }
    }
    let acc = correct as f64 / frames.max(1) as f64;
    if json {
        println!(
            "{}",
            json!({"model": model.model_name(), "provider": model.provider(), "accuracy": acc, "frames": rows})
        );
    } else {
        println!(
            "\n{correct}/{frames} frames classified exactly (accuracy {acc:.3}) by {} on {}",
            model.model_name(),
            model.provider()
        );
    }
    Ok(())
}
