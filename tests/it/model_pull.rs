//! `vidseek model pull` against a local HTTP server on loopback that stands in for the
//! Hugging Face hub: it serves a replica repository through the routes the client
//! calls (the revision listing with blob ids and LFS sha256, `resolve/` with redirects
//! to a CDN route for LFS files, byte ranges), and can cut a transfer half-way or
//! corrupt a file. It also serves files at their own paths, as PyPI's file host does
//! (tests/it/ocr_pull.rs).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sha1::Digest as _;

use crate::common::assert::{cosine, floats};
use crate::common::cli;
use crate::common::models::{cpu_options, replicas};

const PINNED: &str = "77520f2136c0467e32b012be8d190ccf110c5667";

#[derive(Default)]
pub struct Faults {
    /// Paths whose next transfer stops half-way (the connection closes).
    pub cut_once: HashSet<String>,
    /// Paths served with one byte changed.
    pub corrupt: HashSet<String>,
}

#[derive(Default)]
pub struct Log {
    /// (path, Range header) of every file request.
    pub requests: Vec<(String, Option<String>)>,
}

pub struct Hub {
    port: u16,
    pub faults: Arc<Mutex<Faults>>,
    pub log: Arc<Mutex<Log>>,
}

pub struct Repo {
    pub name: String,
    /// path -> content (also served at `/{path}`, as a plain file host such as PyPI's).
    pub files: HashMap<String, Vec<u8>>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn files_of(dir: &Path) -> HashMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut HashMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = HashMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Files above this size are LFS files (the hub lists their sha256 and redirects them).
const LFS_MIN: usize = 100 * 1024;

impl Hub {
    pub fn start(repo: Repo) -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Mutex::new(Faults::default()));
        let log = Arc::new(Mutex::new(Log::default()));
        let repo = Arc::new(repo);
        let (f, l) = (faults.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (repo, f, l) = (repo.clone(), f.clone(), l.clone());
                std::thread::spawn(move || serve(stream, &repo, &f, &l));
            }
        });
        Hub { port, faults, log }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn respond(s: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
}

/// Answers one request: the revision listing, `resolve/` (LFS files redirected to the
/// CDN route) and the CDN route, with byte ranges and the faults asked for.
fn serve(mut s: TcpStream, repo: &Repo, faults: &Mutex<Faults>, log: &Mutex<Log>) {
    let Some((target, range)) = read_request(&s) else {
        return;
    };
    let (path, _query) = target.split_once('?').unwrap_or((&target, ""));
    let listing = format!("/api/models/{}/revision/", repo.name);
    let resolve = format!("/{}/resolve/", repo.name);
    if let Some(rev) = path.strip_prefix(&listing) {
        return serve_listing(&mut s, repo, rev);
    }
    let file = if let Some(rest) = path.strip_prefix(&resolve) {
        match resolve_file(&mut s, repo, rest) {
            Some(file) => file,
            None => return,
        }
    } else if let Some(file) = path.strip_prefix("/cdn/") {
        file.to_string()
    } else if repo.files.contains_key(&path[1.min(path.len())..]) {
        path[1..].to_string()
    } else {
        return respond(&mut s, "404 Not Found", &[], b"no such route");
    };
    send_file(&mut s, repo, faults, log, &file, range);
}

/// The target of a request and its Range header (None if the request cannot be read).
fn read_request(s: &TcpStream) -> Option<(String, Option<String>)> {
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return None;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    Some((target, range))
}

/// The revision listing: every file with its size and blob id, LFS files with their sha256.
fn serve_listing(s: &mut TcpStream, repo: &Repo, rev: &str) {
    if rev != PINNED && rev != "main" {
        return respond(s, "404 Not Found", &[], b"{\"error\":\"Revision Not Found\"}");
    }
    let mut siblings: Vec<Value> = repo
        .files
        .iter()
        .map(|(p, c)| {
            let mut blob = sha1::Sha1::new();
            blob.update(format!("blob {}\0", c.len()).as_bytes());
            blob.update(c);
            let mut v = json!({"rfilename": p, "size": c.len(), "blobId": hex(&blob.finalize())});
            if c.len() >= LFS_MIN {
                v["lfs"] = json!({"sha256": hex(&sha2::Sha256::digest(c)), "size": c.len(), "pointerSize": 134});
            }
            v
        })
        .collect();
    siblings.sort_by(|a, b| a["rfilename"].as_str().cmp(&b["rfilename"].as_str()));
    let body = json!({"id": repo.name, "sha": PINNED, "siblings": siblings}).to_string();
    respond(
        s,
        "200 OK",
        &[("Content-Type".into(), "application/json".into())],
        body.as_bytes(),
    );
}

/// `resolve/REV/FILE`: the file to send, or None once the answer is sent (an unknown
/// revision or file; an LFS file redirected to the CDN, keeping the metadata).
fn resolve_file(s: &mut TcpStream, repo: &Repo, rest: &str) -> Option<String> {
    let (rev, file) = rest.split_once('/').unwrap_or((rest, ""));
    if rev != PINNED {
        respond(s, "404 Not Found", &[], b"unknown revision");
        return None;
    }
    let file = file.replace("%20", " ");
    let Some(content) = repo.files.get(&file) else {
        respond(s, "404 Not Found", &[], b"no such file");
        return None;
    };
    if content.len() >= LFS_MIN {
        // LFS files live on a CDN: the hub redirects there, keeping the metadata.
        let headers = vec![
            ("Location".into(), format!("/cdn/{file}")),
            ("X-Repo-Commit".into(), PINNED.into()),
            (
                "X-Linked-Etag".into(),
                format!("\"{}\"", hex(&sha2::Sha256::digest(content))),
            ),
            ("X-Linked-Size".into(), content.len().to_string()),
        ];
        respond(s, "302 Found", &headers, b"");
        return None;
    }
    Some(file)
}

/// Sends `file` from the byte the Range header asks for, corrupted or cut half-way when
/// the faults say so.
fn send_file(
    s: &mut TcpStream,
    repo: &Repo,
    faults: &Mutex<Faults>,
    log: &Mutex<Log>,
    file: &str,
    range: Option<String>,
) {
    log.lock().unwrap().requests.push((file.to_string(), range.clone()));
    let Some(content) = repo.files.get(file) else {
        return respond(s, "404 Not Found", &[], b"no such file");
    };
    let mut content = content.clone();
    let (cut, corrupt) = {
        let mut f = faults.lock().unwrap();
        (f.cut_once.remove(file), f.corrupt.contains(file))
    };
    if corrupt {
        let mid = content.len() / 2;
        content[mid] ^= 0x55;
    }
    let from: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap_or(0);
    let body = &content[from.min(content.len())..];
    let mut head = if range.is_some() {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{}\r\n",
            content.len().saturating_sub(1),
            content.len()
        )
    } else {
        "HTTP/1.1 200 OK\r\n".to_string()
    };
    head.push_str(&format!(
        "Connection: close\r\nX-Repo-Commit: {PINNED}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    let _ = s.write_all(head.as_bytes());
    if cut {
        // Half the bytes, then the connection drops.
        let _ = s.write_all(&body[..body.len() / 2]);
        let _ = s.flush();
        let _ = s.shutdown(std::net::Shutdown::Both);
        return;
    }
    let _ = s.write_all(body);
}

fn pull(hub: &Hub, data: &Path, dest: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--data",
        data.to_str().unwrap(),
        "model",
        "pull",
        "clip-vit-b32",
        "--dest",
        dest.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    cli::vidseek(
        &args,
        &[
            ("HF_ENDPOINT", &hub.endpoint()),
            ("NO_PROXY", "127.0.0.1"),
            ("HTTP_PROXY", ""),
            ("HTTPS_PROXY", ""),
            ("ALL_PROXY", ""),
        ],
        None,
    )
}

fn replica() -> (PathBuf, Value) {
    let (dir, refs) = replicas();
    (dir.join("ViT-B-32__openai"), refs["ViT-B-32__openai"].clone())
}

/// The pull's report and the hub's log: the transfer cut half-way was resumed from where
/// it stopped, and builds for other hardware were skipped.
fn assert_the_cut_transfer_was_resumed(hub: &Hub, report: &Value) {
    assert_eq!(report["commit"], PINNED, "{report}");
    assert!(
        report["resumed"].as_u64().unwrap() >= 1,
        "the cut transfer was resumed: {report}"
    );
    let files: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"visual/model.onnx") && files.contains(&"textual/tokenizer.json"),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .all(|f| !f.ends_with(".armnn") && !f.ends_with(".rknn") && !f.starts_with("README")),
        "builds for other hardware are skipped: {files:?}"
    );
    // The resume asked for the rest of the file, not all of it again.
    let requests = hub.log.lock().unwrap().requests.clone();
    let resumed: Vec<_> = requests
        .iter()
        .filter(|(p, r)| p == "visual/model.onnx" && r.as_deref().is_some_and(|r| r != "bytes=0-"))
        .collect();
    assert_eq!(resumed.len(), 1, "{requests:?}");
    assert!(requests.iter().all(|(p, _)| !p.ends_with(".armnn")), "{requests:?}");
}

/// The installed package is the fresh one, pinned, and embeds like the replica; nothing
/// but the package is left beside it.
fn assert_the_pulled_package_is_installed(dest: &Path, reference: &Value) {
    let m: Value = serde_json::from_str(&std::fs::read_to_string(dest.join("model.json")).unwrap()).unwrap();
    assert_eq!(m["name"], "clip-vit-b32");
    assert_eq!(m["origin"]["repo"], "immich-app/ViT-B-32__openai");
    assert_eq!(m["origin"]["revision"], PINNED);
    let e = vidseek::Embedder::load(dest, &cpu_options()).unwrap();
    let text = "a red circle on a blue background";
    let got = e.embed_texts(&[text]).unwrap();
    assert!(cosine(got.row(0), &floats(&reference["texts"][text])) > 0.9999);
    let staging: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(staging.len(), 1, "only the package is left: {staging:?}");
}

#[test]
fn pull_resumes_a_dropped_transfer_checks_every_file_and_installs_atomically() {
    let (src, reference) = replica();
    let hub = Hub::start(Repo {
        name: "immich-app/ViT-B-32__openai".into(),
        files: files_of(&src),
    });
    let tmp = tempfile::tempdir().unwrap();
    let (data, dest) = (tmp.path().join("data"), tmp.path().join("models/clip-vit-b32"));
    // A stale package with a manifest of its own sits where the pull installs.
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("model.json"), "{\"format\": 1, \"name\": \"stale\"}").unwrap();

    hub.faults.lock().unwrap().cut_once.insert("visual/model.onnx".into());
    let out = pull(&hub, &data, &dest, &[]);
    assert!(out.status.success(), "{}", cli::stderr(&out));
    let v: Value = serde_json::from_str(&cli::stdout(&out)).unwrap();
    let report = &v["pull"];
    assert_the_cut_transfer_was_resumed(&hub, report);
    assert_the_pulled_package_is_installed(&dest, &reference);

    // A corrupted file: a clear error with both sums, and the installed package untouched.
    let before = std::fs::read_to_string(dest.join("model.json")).unwrap();
    hub.faults.lock().unwrap().corrupt.insert("textual/model.onnx".into());
    let out = pull(&hub, &data, &dest, &[]);
    assert!(!out.status.success());
    let err = cli::stderr(&out);
    assert!(
        err.contains("textual/model.onnx") && err.contains("checksum") && err.matches("sha256 ").count() == 2,
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(dest.join("model.json")).unwrap(), before);
    vidseek::Embedder::load(&dest, &cpu_options()).unwrap();

    // Fixed on the hub: the next pull fetches only what it lacks.
    hub.faults.lock().unwrap().corrupt.clear();
    let out = pull(&hub, &data, &dest, &[]);
    assert!(out.status.success(), "{}", cli::stderr(&out));
    let report = &serde_json::from_str::<Value>(&cli::stdout(&out)).unwrap()["pull"];
    let (fetched, total) = (
        report["fetched_bytes"].as_u64().unwrap(),
        report["total_bytes"].as_u64().unwrap(),
    );
    assert!(
        fetched < total / 2,
        "the verified files of the failed pull were reused: {report}"
    );
}

#[test]
fn pull_names_what_it_cannot_find() {
    let (src, _) = replica();
    let hub = Hub::start(Repo {
        name: "immich-app/ViT-B-32__openai".into(),
        files: files_of(&src),
    });
    let tmp = tempfile::tempdir().unwrap();
    let (data, dest) = (tmp.path().join("data"), tmp.path().join("m"));
    let out = pull(&hub, &data, &dest, &["--revision", "no-such-branch"]);
    assert!(!out.status.success());
    let err = cli::stderr(&out);
    assert!(
        err.contains("404") && err.contains("no such repository or revision"),
        "{err}"
    );
    assert!(!dest.exists());
    let out = cli::vidseek(&["model", "pull", "no-such-model"], &[], None);
    assert!(!out.status.success());
    let err = cli::stderr(&out);
    assert!(err.contains("clip-vit-b32") && err.contains("siglip-b16"), "{err}");
    let out = cli::vidseek(&["model", "list", "--json"], &[], None);
    assert!(out.status.success());
    let list: Value = serde_json::from_str(&cli::stdout(&out)).unwrap();
    let b32 = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "clip-vit-b32")
        .unwrap();
    assert_eq!(
        (
            b32["dim"].as_u64(),
            b32["image_size"].as_u64(),
            b32["revision"].as_str()
        ),
        (Some(512), Some(224), Some(PINNED))
    );
}
