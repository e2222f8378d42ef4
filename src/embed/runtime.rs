//! Finding and loading the ONNX Runtime shared library (ort's `load-dynamic`), once per
//! process, and which execution providers it offers.
//!
//! Search order: an explicit path (`--ort-lib`), `ORT_DYLIB_PATH`, a project-local
//! `.ort/` folder (next to the binary or in any folder above it or above the working
//! directory: where `.ci/setup` puts the library from the PyPI wheel), a `lib/` folder
//! next to the binary (bundles), then the `onnxruntime` Python package's `capi/` folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ort::ep::ExecutionProvider;

use super::EmbedError;

/// The loaded runtime: where it came from and what it can run on.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// The shared library in use.
    pub library: PathBuf,
    /// Its version.
    pub version: String,
    /// The process's ONNX Runtime environment.
    pub environment: ort::environment::Environment,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Where the setup script installs the library, relative to the project root.
pub const LOCAL_DIR: &str = ".ort";
const INSTALL_HINT: &str = "install it with `.ci/setup` (puts the PyPI onnxruntime 1.31 library in .ort/), \
     or `python3 -m pip install onnxruntime==1.31.1`, or point --ort-lib / ORT_DYLIB_PATH at libonnxruntime.so";

/// Loads ONNX Runtime (first call) and returns it; later calls return the same one.
pub fn init(explicit: Option<&Path>) -> Result<&'static Runtime, EmbedError> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let library = locate(explicit)?;
    let builder = ort::init_from(&library).map_err(|e| EmbedError::RuntimeLoad {
        path: library.clone(),
        reason: e.to_string(),
    })?;
    let environment = builder
        .with_name("vidseek")
        .build()
        .map_err(|e| EmbedError::RuntimeLoad {
            path: library.clone(),
            reason: e.to_string(),
        })?;
    let version = version_of(&library);
    Ok(RUNTIME.get_or_init(|| Runtime {
        library,
        version,
        environment,
    }))
}

/// The library file to load, or an error listing every place looked at.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, EmbedError> {
    if let Some(p) = explicit {
        return existing_library(p).ok_or_else(|| EmbedError::RuntimeMissing {
            searched: vec![p.to_path_buf()],
            hint: "the path given with --ort-lib / ORT_DYLIB_PATH does not exist or holds no libonnxruntime.so",
        });
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return existing_library(&p).ok_or(EmbedError::RuntimeMissing {
            searched: vec![p],
            hint: "ORT_DYLIB_PATH does not name an existing libonnxruntime.so",
        });
    }
    let mut searched = Vec::new();
    for dir in candidate_dirs() {
        if let Some(lib) = library_in(&dir) {
            return Ok(lib);
        }
        searched.push(dir);
    }
    if let Some(dir) = python_capi_dir() {
        if let Some(lib) = library_in(&dir) {
            return Ok(lib);
        }
        searched.push(dir);
    } else {
        searched.push(PathBuf::from("<python3 site-packages>/onnxruntime/capi"));
    }
    Err(EmbedError::RuntimeMissing {
        searched,
        hint: INSTALL_HINT,
    })
}

fn existing_library(p: &Path) -> Option<PathBuf> {
    if p.is_dir() {
        library_in(p)
    } else {
        p.is_file().then(|| p.to_path_buf())
    }
}

/// Project-local folders: `.ort/` in the binary's folder and each folder above it, then
/// in the working directory and each folder above it; `lib/` next to the binary.
fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok())
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let cwd = std::env::current_dir().ok();
    for start in exe_dir.iter().chain(cwd.iter()) {
        for dir in start.ancestors() {
            let d = dir.join(LOCAL_DIR);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    if let Some(e) = exe_dir {
        dirs.push(e.join("lib"));
    }
    dirs
}

/// `libonnxruntime.so`, or the highest versioned `libonnxruntime.so.1.N.M`, in `dir`.
pub fn library_in(dir: &Path) -> Option<PathBuf> {
    let plain = dir.join("libonnxruntime.so");
    if plain.is_file() {
        return Some(plain);
    }
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("libonnxruntime.so.")) else {
            continue;
        };
        let ver: Vec<u32> = rest.split('.').filter_map(|p| p.parse().ok()).collect();
        if best.as_ref().is_none_or(|(b, _)| ver > *b) {
            best = Some((ver, entry.path()));
        }
    }
    best.map(|(_, p)| p)
}

/// The `capi/` folder of the `onnxruntime` Python package, asked of `python3` without
/// importing the package.
fn python_capi_dir() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u; s = u.find_spec('onnxruntime'); print(s.submodule_search_locations[0] if s else '')",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = dir.trim();
    (!dir.is_empty()).then(|| Path::new(dir).join("capi"))
}

/// The version from the library's file name, or from its build string.
fn version_of(library: &Path) -> String {
    let real = library.canonicalize().unwrap_or_else(|_| library.to_path_buf());
    if let Some(v) = real
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("libonnxruntime.so."))
    {
        return v.to_string();
    }
    let info = ort::info();
    info.split(|c: char| c == ',' || c.is_whitespace())
        .find_map(|p| p.strip_prefix("git-branch=rel-"))
        .unwrap_or("unknown")
        .to_string()
}

/// Execution providers compiled into the loaded library, in preference order.
pub fn available_providers() -> Vec<&'static str> {
    let mut out = Vec::new();
    if ort::ep::CUDA::is_available().unwrap_or(false) {
        out.push("CUDA");
    }
    out.push("CPU");
    out
}
