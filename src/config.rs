//! Where things live: the data folder, the model package, the project's own files.
//! Plain filesystem logic shared by the CLI, the server and the tests.

use std::path::{Path, PathBuf};

/// Folder of the model trained on the synthetic domain, relative to the project root.
pub const BUNDLED_MODEL: &str = "models/tiny-clip";

/// `$VIDSEEK_DATA` is read by the CLI; this is the fallback:
/// `$XDG_DATA_HOME/vidseek`, else `~/.local/share/vidseek`, else `./vidseek-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("vidseek");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/vidseek");
    }
    PathBuf::from("vidseek-data")
}

/// The project checkout this binary runs from (the folder holding the bundled model),
/// searched above the executable and above the working directory.
pub fn project_root() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok().and_then(|e| e.canonicalize().ok());
    let cwd = std::env::current_dir().ok();
    let starts = exe.iter().filter_map(|e| e.parent()).chain(cwd.as_deref());
    for start in starts {
        for dir in start.ancestors() {
            if dir.join(BUNDLED_MODEL).join("model.json").is_file() {
                return Some(dir.to_path_buf());
            }
        }
    }
    None
}

/// The model used when none is given: a package installed as `<data>/models/default`
/// (e.g. by `vidseek model pull`), else the bundled synthetic-domain model.
pub fn default_model_dir(data: &Path) -> PathBuf {
    let installed = data.join("models/default");
    if installed.join("model.json").is_file() {
        return installed;
    }
    match project_root() {
        Some(root) => root.join(BUNDLED_MODEL),
        None => installed,
    }
}
