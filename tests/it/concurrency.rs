//! Writers racing through the HTTP API of a real server: index jobs, deletes, prunes,
//! uploads and searches at once, for a bounded time, on rendered footage. No request may
//! get a 5xx ("database is locked" used to reach clients as 500), every request that
//! succeeded must have taken effect, and afterwards the store, the vector index and the
//! text index must agree.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::cli;
use crate::common::models;
use crate::common::server::{Response, Server, multipart};

/// How long the writers race.
const RACE: Duration = Duration::from_secs(25);

fn render(path: &Path, scenes: Vec<(Scene, f64)>, seed: u64) {
    let mut spec = VideoSpec::new(scenes);
    spec.width = 320;
    spec.height = 180;
    spec.seed = seed;
    spec.write(path).unwrap();
}

#[derive(Default)]
struct Log {
    /// (who, method path, status, body) of every answer >= 500.
    server_errors: Vec<String>,
    requests: usize,
    /// Video ids a DELETE answered 204 for, and their paths.
    deleted: Vec<i64>,
    deleted_paths: Vec<String>,
    /// Video ids a prune said it removed.
    pruned: Vec<i64>,
    /// Job ids answered 202 (index, the pruner's and upload).
    jobs: Vec<i64>,
    /// (job id, path) of every upload.
    uploaded: Vec<(i64, String)>,
    searches: usize,
}

impl Log {
    fn saw(&mut self, who: &str, what: &str, r: &Response) {
        self.requests += 1;
        if r.status >= 500 {
            self.server_errors
                .push(format!("{who}: {what} -> {} {}", r.status, r.text()));
        }
    }
}

fn video_ids(s: &Server) -> Vec<i64> {
    s.get("/api/videos").json()["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect()
}

/// Four videos in `lib` (the library the writers race on), and the bytes of a spare one
/// rendered outside it (material for the uploader and the pruner).
fn race_library(lib: &Path, spare: &Path) -> Vec<u8> {
    std::fs::create_dir_all(lib).unwrap();
    let scenes = [
        (Colour::Red, Shape::Circle, Colour::Blue),
        (Colour::Green, Shape::Star, Colour::White),
        (Colour::Yellow, Shape::Triangle, Colour::Purple),
        (Colour::Orange, Shape::Square, Colour::Black),
    ];
    for (i, (c, sh, bg)) in scenes.iter().enumerate() {
        render(
            &lib.join(format!("v{i}.mp4")),
            vec![(Scene::new(*c, *sh, *bg), 3.0), (Scene::empty(*bg), 2.0)],
            i as u64 + 1,
        );
    }
    render(
        spare,
        vec![(Scene::new(Colour::White, Shape::Circle, Colour::Green), 3.0)],
        9,
    );
    std::fs::read(spare).unwrap()
}

/// What one racer does each round.
type Racer = Box<dyn Fn(&Server, &Mutex<Log>, usize) + Send>;

/// Indexes the whole library every 0.3 s.
fn indexer(path: String) -> Racer {
    Box::new(move |s, log, _| {
        let r = s.post_json("/api/index", &json!({ "path": path }));
        let mut l = log.lock().unwrap();
        l.saw("indexer", "POST /api/index", &r);
        if r.status == 202 {
            l.jobs.push(r.json()["id"].as_i64().unwrap());
        } else {
            l.server_errors
                .push(format!("indexer: unexpected {} {}", r.status, r.text()));
        }
        drop(l);
        std::thread::sleep(Duration::from_millis(300));
    })
}

/// Deletes every video it sees.
fn deleter(name: &'static str) -> Racer {
    Box::new(move |s, log, _| {
        let list = s.get("/api/videos");
        log.lock().unwrap().saw(name, "GET /api/videos", &list);
        if list.status != 200 {
            return;
        }
        for v in list.json()["videos"].as_array().unwrap() {
            let id = v["id"].as_i64().unwrap();
            let r = s.req("DELETE", &format!("/api/videos/{id}"), None);
            let mut l = log.lock().unwrap();
            l.saw(name, "DELETE /api/videos/{id}", &r);
            match r.status {
                204 => {
                    l.deleted.push(id);
                    l.deleted_paths.push(v["path"].as_str().unwrap().to_string());
                }
                404 => {} // the other client was first
                other => l
                    .server_errors
                    .push(format!("{name}: DELETE {id} -> {other} {}", r.text())),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    })
}

/// A file appears in the library, gets indexed, disappears, and is pruned.
fn pruner(lib: PathBuf, bytes: Vec<u8>) -> Racer {
    Box::new(move |s, log, round| {
        let f: PathBuf = lib.join(format!("gone-{round}.mp4"));
        std::fs::write(&f, &bytes).unwrap();
        let r = s.post_json("/api/index", &json!({ "path": f.display().to_string() }));
        let mut l = log.lock().unwrap();
        l.saw("pruner", "POST /api/index (file)", &r);
        let job = if r.status == 202 {
            let id = r.json()["id"].as_i64().unwrap();
            l.jobs.push(id);
            Some(id)
        } else {
            l.server_errors
                .push(format!("pruner: unexpected {} {}", r.status, r.text()));
            None
        };
        drop(l);
        // The file goes once its job has ended (a fixed pause lost the race to a busy
        // queue: the file was gone before it was indexed, and there was nothing to prune).
        let until = Instant::now() + Duration::from_secs(20);
        while let Some(id) = job {
            let state = s.get(&format!("/api/jobs/{id}")).json()["state"].clone();
            if !(state == "enqueued" || state == "processing") || Instant::now() > until {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::remove_file(&f).unwrap();
        let r = s.req("POST", "/api/prune", None);
        let mut l = log.lock().unwrap();
        l.saw("pruner", "POST /api/prune", &r);
        if r.status == 200 {
            for v in r.json()["removed"].as_array().unwrap() {
                l.pruned.push(v["id"].as_i64().unwrap());
            }
        } else {
            l.server_errors
                .push(format!("pruner: prune -> {} {}", r.status, r.text()));
        }
    })
}

/// Uploads the spare video once a second.
fn uploader(spare_bytes: Vec<u8>) -> Racer {
    Box::new(move |s, log, round| {
        let (ct, body) = multipart("file", &format!("up-{round}.mp4"), &spare_bytes);
        let r = s.req("POST", "/api/upload", Some((&ct, &body)));
        let mut l = log.lock().unwrap();
        l.saw("uploader", "POST /api/upload", &r);
        if r.status == 202 {
            let v = r.json();
            let id = v["id"].as_i64().unwrap();
            l.jobs.push(id);
            l.uploaded
                .push((id, v["uploaded"]["path"].as_str().unwrap().to_string()));
        } else {
            l.server_errors
                .push(format!("uploader: unexpected {} {}", r.status, r.text()));
        }
        drop(l);
        std::thread::sleep(Duration::from_millis(1000));
    })
}

/// Searches, round after round.
fn searcher() -> Racer {
    Box::new(|s, log, round| {
        let q = [
            "a%20red%20circle",
            "a%20green%20star",
            "an%20empty%20black%20background",
        ][round % 3];
        let r = s.get(&format!("/api/search?q={q}&k=5"));
        let mut l = log.lock().unwrap();
        l.saw("searcher", "GET /api/search", &r);
        if r.status == 200 {
            l.searches += 1;
        } else {
            l.server_errors.push(format!("searcher: {} {}", r.status, r.text()));
        }
    })
}

/// Runs each racer in a loop on a thread of its own for `RACE`, then stops them all.
fn race(s: &Arc<Server>, log: &Arc<Mutex<Log>>, racers: Vec<(&'static str, Racer)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = racers
        .into_iter()
        .map(|(name, f)| {
            let (s, log, stop) = (s.clone(), log.clone(), stop.clone());
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let mut round = 0;
                    while !stop.load(Ordering::Relaxed) {
                        f(&s, &log, round);
                        round += 1;
                    }
                })
                .unwrap()
        })
        .collect();
    let t0 = Instant::now();
    while t0.elapsed() < RACE {
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}

/// During the race: no request got a server error, and the race did enough to prove it.
fn assert_no_server_error_in_a_real_race(log: &Log) {
    assert!(
        log.server_errors.is_empty(),
        "{} of {} requests failed on the server's side:\n{}",
        log.server_errors.len(),
        log.requests,
        log.server_errors.join("\n")
    );
    assert!(
        log.requests > 100
            && !log.deleted.is_empty()
            && !log.pruned.is_empty()
            && log.searches > 10
            && !log.uploaded.is_empty(),
        "the race was too tame to prove anything: {} requests, {} deletes, {} pruned, {} searches, {} uploads",
        log.requests,
        log.deleted.len(),
        log.pruned.len(),
        log.searches,
        log.uploaded.len()
    );
}

/// Afterwards: every effect a request was told of holds, and the store and both indexes
/// agree.
fn assert_every_answer_took_effect(s: &Server, log: &Log, lib: &str) {
    // Every job that was accepted ends (none stuck, none lost).
    s.wait_for(240, "every accepted job to end", |s| {
        log.jobs.iter().all(|id| {
            let j = s.get(&format!("/api/jobs/{id}")).json();
            matches!(j["state"].as_str(), Some("succeeded" | "failed" | "canceled"))
        })
    });
    // Ids are never reused: what a DELETE or a prune removed stays gone.
    for id in log.deleted.iter().chain(&log.pruned) {
        let r = s.get(&format!("/api/videos/{id}"));
        assert_eq!(r.status, 404, "video {id} was removed but is there: {}", r.text());
    }
    // Every upload's own job indexed its file (or found it indexed already by a job of
    // the whole library): judged before anything else indexes the library again.
    let videos: Vec<Value> = s.get("/api/videos").json()["videos"].as_array().unwrap().clone();
    for (job, up) in &log.uploaded {
        let j = s.get(&format!("/api/jobs/{job}")).json();
        assert_eq!(j["state"], "succeeded", "upload {up}: {j}");
        assert!(
            j["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["path"] == up.as_str() && (f["state"] == "indexed" || f["state"] == "unchanged")),
            "the upload's job did not index {up}: {j}"
        );
        assert!(
            log.deleted_paths.contains(up)
                || videos
                    .iter()
                    .any(|v| v["path"] == up.as_str() && v["status"] == "indexed"),
            "upload {up} is neither indexed nor deleted: {videos:?}"
        );
    }
    // One last index of the library: every uploaded file is in it and searchable.
    let r = s.post_json("/api/index", &json!({ "path": lib }));
    assert_eq!(r.status, 202, "{}", r.text());
    let last = r.json()["id"].as_i64().unwrap();
    s.wait_for(240, "the last job", |s| {
        s.get(&format!("/api/jobs/{last}")).json()["state"] == "succeeded"
    });
    let videos: Vec<Value> = s.get("/api/videos").json()["videos"].as_array().unwrap().clone();
    for (_, up) in &log.uploaded {
        assert!(
            videos
                .iter()
                .any(|v| v["path"] == up.as_str() && v["status"] == "indexed"),
            "upload {up} is not indexed: {videos:?}"
        );
    }
    assert!(video_ids(s).len() >= 4 + log.uploaded.len());
    // The store and both indexes agree.
    let h = s.get("/api/health?deep=true");
    assert_eq!(h.status, 200, "{}", h.text());
    let c = &h.json()["consistency"];
    assert_eq!(c["agree"], true, "store and indexes disagree: {c}");
    assert!(c["frames_checked"].as_u64().unwrap() > 0, "{c}");
    eprintln!(
        "race: {} requests ({} deletes, {} pruned, {} jobs, {} uploads, {} searches), no server error",
        log.requests,
        log.deleted.len(),
        log.pruned.len(),
        log.jobs.len(),
        log.uploaded.len(),
        log.searches
    );
}

#[test]
fn writers_racing_through_the_api_never_get_a_server_error_and_the_indexes_agree_afterwards() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let spare_bytes = race_library(&lib, &tmp.path().join("spare.mp4"));
    let s = Arc::new(Server::start(&tmp.path().join("data"), &[&lib], &[], None));
    let log = Arc::new(Mutex::new(Log::default()));
    let lib_s = lib.display().to_string();
    race(
        &s,
        &log,
        vec![
            ("indexer", indexer(lib_s.clone())),
            ("deleter-1", deleter("deleter-1")),
            ("deleter-2", deleter("deleter-2")),
            ("pruner", pruner(lib.clone(), spare_bytes.clone())),
            ("uploader", uploader(spare_bytes)),
            ("searcher", searcher()),
        ],
    );
    let log = log.lock().unwrap();
    assert_no_server_error_in_a_real_race(&log);
    assert_every_answer_took_effect(&s, &log, &lib_s);
}

/// A small tmpfs mounted for one test (needs root, as on CI; elsewhere the test says
/// why it cannot run and fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill a disk and needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }

    fn remount(&self, opts: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn writes_that_cannot_proceed_for_lack_of_disk_or_permission_get_503_naming_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    for (i, c) in [Colour::Red, Colour::Green, Colour::Blue].iter().enumerate() {
        render(
            &lib.join(format!("v{i}.mp4")),
            vec![(Scene::new(*c, Shape::Circle, Colour::White), 2.0)],
            i as u64 + 1,
        );
    }
    let data = tmp.path().join("data");
    let disk = Tmpfs::mount(&data, "16m");
    let s = Server::start(&data, &[&lib], &[], None);
    let r = s.post_json("/api/index", &json!({ "path": lib.display().to_string() }));
    assert_eq!(r.status, 202, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();
    s.wait_for(120, "the job", |s| {
        s.get(&format!("/api/jobs/{job}")).json()["state"] == "succeeded"
    });
    let ids = video_ids(&s);
    assert_eq!(ids.len(), 3);

    // The disk fills up: writes are refused with 503 and the fix; reads still work.
    let filler = data.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let mut refused = 0;
    let mut first = Vec::new();
    for id in &ids[..2] {
        let r = s.req("DELETE", &format!("/api/videos/{id}"), None);
        assert!(r.status == 503 || r.status == 204, "{} {}", r.status, r.text());
        first.push(r.status);
        if r.status == 503 {
            refused += 1;
            let v = r.json();
            assert_eq!(v["code"], "unavailable", "{v}");
            assert!(v["message"].as_str().unwrap().contains("full"), "{v}");
        }
    }
    assert!(refused > 0, "no write was refused on a full disk");
    assert_eq!(s.get("/api/videos").status, 200);
    assert_eq!(s.get("/api/search?q=a%20red%20circle").status, 200);
    // A refused delete did not happen: the video is still there. Space again: the same
    // request succeeds (and one that had succeeded finds nothing left to delete).
    for (id, status) in ids[..2].iter().zip(&first) {
        let there = s.get(&format!("/api/videos/{id}")).status;
        assert_eq!(
            there,
            if *status == 503 { 200 } else { 404 },
            "video {id} after DELETE {status}"
        );
    }
    std::fs::remove_file(&filler).unwrap();
    for (id, status) in ids[..2].iter().zip(&first) {
        let r = s.req("DELETE", &format!("/api/videos/{id}"), None);
        let want = if *status == 503 { 204 } else { 404 };
        assert_eq!(r.status, want, "DELETE {id} again after {status}: {}", r.text());
    }

    // A read-only data folder (remounted once the server has stopped: a mount with
    // files open for writing cannot be made read-only): searching still works,
    // changing the library is refused with the reason and the fix.
    drop(s);
    disk.remount("ro");
    let model = models::tiny_model_dir();
    let base = [
        "--data",
        data.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--device",
        "cpu",
    ];
    let out = cli::vidseek(&[&base[..], &["search", "a red circle", "--json"]].concat(), &[], None);
    assert!(
        out.status.success(),
        "search on a read-only folder: {}",
        cli::stderr(&out)
    );
    let out = cli::vidseek(&[&base[..], &["remove", &ids[2].to_string()]].concat(), &[], None);
    assert!(!out.status.success());
    let err = cli::stderr(&out);
    assert!(err.contains("read-only"), "{err}");
    disk.remount("rw");
}
