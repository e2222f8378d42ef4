//! vidseek: self-hosted text-to-video semantic search.
//!
//! Write path: `library -> jobs: decode -> embed -> catalog (store, indexes)`.
//! Read path: `api / cli -> search: embed(text) -> index -> store -> segments`.
//! See ARCHITECTURE.md for what each module owns.
//!
//! The modules are private; what the binary, the tests and the benchmarks use is
//! re-exported here, so the compiler sees (and flags) everything else that is unused.

#![warn(missing_docs)]

mod api;
mod bench;
mod catalog;
mod cli;
mod config;
mod decode;
mod embed;
mod error;
mod export;
mod image;
mod index;
mod jobs;
mod library;
mod mcp;
mod modelhub;
mod ocr;
mod search;
mod simd;
mod speech;
mod synth;
mod types;
mod util;

pub use catalog::{
    Access, Catalog, JobKind, JobState, LibraryInfo, NewFrame, NewVideo, VectorChoice, VectorScope,
    info as library_info, info_in as library_info_in,
};
pub use cli::{Cli, exit_code, run};
pub use decode::{
    AUDIO_RATE, AudioTrack, SampleOptions, SampleReason, SampledFrame, VideoInfo, audio as decode_audio,
    image as decode_image, probe as probe_video, sample as decode_video,
};
pub use embed::text::TextTokenizer;
pub use embed::{
    Device, EmbedError, EmbedOptions, Embedder, Filter, ImageStream, Manifest, Padding, StreamOptions, preprocess,
    read_templates, runtime,
};
pub use image::RgbImage;
pub use index::{HnswParams, VectorBackend, VectorIndex, quantise};
pub use jobs::{IndexOptions, Queue as JobQueue, run_job};
pub use modelhub::{ImportOptions, Variant, import as import_model};
pub use ocr::{Cue as OcrCue, CueReader as OcrCueReader, Line as OcrLine, Ocr, OcrError, iou as ocr_box_iou};
pub use search::calibrate::Vocabulary;
pub use search::eval::{Report as EvalReport, Truth, answers as answers_truth};
pub use search::probe::{Probe, train as train_probe};
pub use search::tags::Tagger;
pub use search::{MinScore, SearchRequest, search};
pub use simd::{DotI8, dot_i8_kernels};
pub use speech::{
    Engine as SpeechEngine, Segment as SpeechSegment, Settings as SpeechSettings, SpeechError, Whisper,
    convert_folder as convert_speech_model, locate as locate_speech_model,
};
pub use synth::{Codec, Colour, Rng, Scene, SceneSpan, Shape, VideoSpec, render};
pub use util::secret::key_hash;
pub use util::{median, trim_heap};
