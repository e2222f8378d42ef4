//! `library`: which files belong to the library and whether they changed. Pure
//! filesystem: walking folders, video extensions, file identity (size, mtime, a fast
//! content hash), and watching library roots for new, changed and removed files
//! (notify). Knows nothing of decoding or storage.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Errors of looking at the filesystem.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// A path given by the user does not exist or cannot be read.
    #[error("{}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    /// The operating system refused to watch a folder.
    #[error("cannot watch {}: {reason} (on Linux, raise fs.inotify.max_user_watches)", path.display())]
    Watch { path: PathBuf, reason: String },
}

impl crate::error::Classified for LibraryError {
    fn fault(&self) -> crate::error::Fault {
        match self {
            LibraryError::Unreadable { .. } => crate::error::Fault::BadInput,
            LibraryError::Watch { .. } => crate::error::Fault::Unavailable,
        }
    }
}

/// File name extensions (lower case) treated as video.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "wmv", "flv", "mpg", "mpeg", "ts", "m2ts", "mts", "3gp", "ogv", "mxf",
];

pub fn is_video_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Video files, absolute and canonical, in a stable order, each once.
    pub files: Vec<PathBuf>,
    /// Paths that could not be read (permissions, dangling links), with the reason.
    pub errors: Vec<(PathBuf, String)>,
}

/// Finds the video files under `paths` (files or folders). Folders are walked
/// recursively; hidden files and folders are skipped; symbolic links are followed, but
/// each real folder is entered once (no loops, no duplicates). A file given explicitly
/// is taken whatever its extension, so a mislabelled file gets a clear decode error
/// instead of silence.
pub fn scan(paths: &[PathBuf]) -> Result<Scan, LibraryError> {
    let mut scan = Scan::default();
    let mut seen_dirs = HashSet::new();
    let mut seen_files = HashSet::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| LibraryError::Unreadable {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let real = p.canonicalize().map_err(|e| LibraryError::Unreadable {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        if meta.is_dir() {
            walk(&real, &mut scan, &mut seen_dirs, &mut seen_files);
        } else if seen_files.insert(real.clone()) {
            scan.files.push(real);
        }
    }
    Ok(scan)
}

fn walk(dir: &Path, scan: &mut Scan, seen_dirs: &mut HashSet<PathBuf>, seen_files: &mut HashSet<PathBuf>) {
    if !seen_dirs.insert(dir.to_path_buf()) {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            scan.errors.push((dir.to_path_buf(), e.to_string()));
            return;
        }
    };
    let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| !is_hidden(p)).collect();
    children.sort();
    for child in children {
        // metadata() follows links; a dangling link is an error worth reporting.
        let meta = match std::fs::metadata(&child) {
            Ok(m) => m,
            Err(e) => {
                if is_video_name(&child) {
                    scan.errors.push((child, e.to_string()));
                }
                continue;
            }
        };
        let Ok(real) = child.canonicalize() else {
            continue;
        };
        if meta.is_dir() {
            walk(&real, scan, seen_dirs, seen_files);
        } else if meta.is_file() && is_video_name(&child) && seen_files.insert(real.clone()) {
            scan.files.push(real);
        }
    }
}

/// What identifies a file's content cheaply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// FNV-1a 64 of the size and three 64 KiB samples (start, middle, end), hex.
    pub hash: String,
}

/// Size, modification time and fast hash of `path`.
pub fn identity(path: &Path) -> std::io::Result<FileIdentity> {
    let mut f = File::open(path)?;
    let meta = f.metadata()?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let (size, h) = crate::util::hash::sampled_hash(&mut f)?;
    Ok(FileIdentity {
        size,
        mtime_ns,
        hash: format!("{h:016x}"),
    })
}

/// Whether `path` (resolved: symlinks and `..`) lies inside one of `roots`.
pub fn inside_roots(path: &Path, roots: &[PathBuf]) -> Option<PathBuf> {
    let real = path.canonicalize().ok()?;
    roots
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .any(|r| real.starts_with(&r))
        .then_some(real)
}

/// Changes seen by a [`Watcher`], reported once files have stopped changing.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// New or modified video files whose size and mtime held still for the settle time.
    pub ready: Vec<PathBuf>,
    /// Video files that disappeared.
    pub removed: Vec<PathBuf>,
}

/// Watches library roots recursively; dropping it stops watching.
pub struct Watcher {
    _inner: notify::RecommendedWatcher,
    stop: Arc<AtomicBool>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Calls `on_change` with files that appeared, changed or vanished under `roots`. A file
/// is reported only after its size and modification time stayed the same for `settle`
/// (a copy or an upload in progress is not indexed half-written).
pub fn watch(
    roots: &[PathBuf],
    settle: Duration,
    on_change: impl Fn(Changes) + Send + 'static,
) -> Result<Watcher, LibraryError> {
    use notify::Watcher as _;

    let settling: Arc<Mutex<Settling>> = Arc::default();
    let s2 = settling.clone();
    let watched: Vec<PathBuf> = roots.to_vec();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if !changes_content(&ev.kind) {
            return;
        }
        let mut s = s2.lock().unwrap_or_else(|e| e.into_inner());
        s.note(ev.paths, &watched);
    })
    .map_err(|e| LibraryError::Watch {
        path: roots.first().cloned().unwrap_or_default(),
        reason: e.to_string(),
    })?;
    for r in roots {
        w.watch(r, notify::RecursiveMode::Recursive)
            .map_err(|e| LibraryError::Watch {
                path: r.clone(),
                reason: e.to_string(),
            })?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    std::thread::Builder::new()
        .name("vidseek-watch".into())
        .spawn(move || {
            let tick = (settle / 4).max(Duration::from_millis(100));
            while !stop2.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                let changes = {
                    let mut s = settling.lock().unwrap_or_else(|e| e.into_inner());
                    s.take_settled(settle, Instant::now())
                };
                if !changes.ready.is_empty() || !changes.removed.is_empty() {
                    on_change(changes);
                }
            }
        })
        .map_err(|e| LibraryError::Watch {
            path: roots.first().cloned().unwrap_or_default(),
            reason: e.to_string(),
        })?;
    Ok(Watcher { _inner: w, stop })
}

/// Whether an event can mean a file appeared, changed or went: not a read (opening,
/// reading or closing a file unwritten, which a player streaming it does all the time,
/// and whose re-check would queue an index job on every play), nor an access time.
fn changes_content(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

/// Changed video files waiting for their size and modification time to hold still.
#[derive(Default)]
struct Settling {
    /// Per changed path: None until first checked, then the (size, mtime) seen and since when.
    paths: HashMap<PathBuf, Option<(u64, SystemTime, Instant)>>,
}

impl Settling {
    /// Notes the video files among the paths of one filesystem event.
    fn note(&mut self, paths: Vec<PathBuf>, roots: &[PathBuf]) {
        for path in paths {
            // Hidden files and folders inside the library are skipped, as by `scan`
            // (the library root itself may live under a hidden folder).
            let hidden = roots.iter().find_map(|r| path.strip_prefix(r).ok()).is_none_or(|rel| {
                rel.components()
                    .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
            });
            if is_video_name(&path) && !hidden {
                self.paths.insert(path, None);
            }
        }
    }

    /// Takes the files whose size and mtime held still for `settle` (as of `now`) and
    /// those that vanished, each list sorted; the others wait for the next look.
    fn take_settled(&mut self, settle: Duration, now: Instant) -> Changes {
        let mut changes = Changes::default();
        self.paths.retain(|path, seen| match std::fs::metadata(path) {
            Err(_) => {
                changes.removed.push(path.clone());
                false
            }
            Ok(m) => {
                let stamp = (m.len(), m.modified().unwrap_or(UNIX_EPOCH));
                match seen {
                    Some((len, mtime, since)) if (*len, *mtime) == stamp => {
                        if now.duration_since(*since) >= settle {
                            changes.ready.push(path.clone());
                            false
                        } else {
                            true
                        }
                    }
                    _ => {
                        *seen = Some((stamp.0, stamp.1, now));
                        true
                    }
                }
            }
        });
        changes.ready.sort();
        changes.removed.sort();
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_of_a_file_are_not_changes() {
        use notify::EventKind;
        use notify::event::{AccessKind, AccessMode, CreateKind, MetadataKind, ModifyKind, RemoveKind};
        for read in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
        ] {
            assert!(!changes_content(&read), "{read:?}");
        }
        for change in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ] {
            assert!(changes_content(&change), "{change:?}");
        }
    }

    #[test]
    fn scan_finds_videos_recursively_skips_hidden_and_follows_links_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::create_dir_all(d.join(".hidden")).unwrap();
        for f in [
            "a/one.mp4",
            "a/b/two.MKV",
            "a/notes.txt",
            ".hidden/three.mp4",
            "a/.four.mp4",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        // A link back to the top (a loop) and a second link to the same folder.
        std::os::unix::fs::symlink(d, d.join("a/b/loop")).unwrap();
        std::os::unix::fs::symlink(d.join("a/b"), d.join("again")).unwrap();
        std::os::unix::fs::symlink(d.join("missing.mp4"), d.join("dangling.mp4")).unwrap();
        let s = scan(&[d.to_path_buf()]).unwrap();
        let mut names: Vec<String> = s
            .files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["one.mp4", "two.MKV"]);
        assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
        assert!(s.errors[0].0.ends_with("dangling.mp4"));
    }

    #[test]
    fn identity_changes_with_content_and_not_without() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.mp4");
        std::fs::write(&p, vec![7u8; 500_000]).unwrap();
        let a = identity(&p).unwrap();
        assert_eq!(a, identity(&p).unwrap());
        let mut data = vec![7u8; 500_000];
        data[250_000] = 8; // inside the middle sample
        std::fs::write(&p, data).unwrap();
        let b = identity(&p).unwrap();
        assert_ne!(a.hash, b.hash);
        assert_eq!(a.size, b.size);
    }
}
