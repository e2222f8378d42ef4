//! The HTTP API against a real server process on a loopback port, a real SQLite file
//! and rendered videos.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::http::{Server, multipart, request};

fn render(path: &Path, scenes: Vec<(Scene, f64)>) {
    VideoSpec::new(scenes).write(path).unwrap();
}

fn wait_job(s: &Server, id: i64) -> Value {
    let mut last = Value::Null;
    s.wait_for(120, &format!("job {id}"), |s| {
        last = s.get(&format!("/api/jobs/{id}")).json();
        matches!(last["state"].as_str(), Some("succeeded" | "failed" | "canceled"))
    });
    last
}

fn assert_error(r: &crate::http::Response, status: u16, code_part: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(v["code"].as_str().unwrap().contains(code_part), "{v}");
}

#[test]
fn search_videos_jobs_media_events_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let video = lib.join("shapes.mp4");
    render(
        &video,
        vec![
            (Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 3.0),
            (Scene::new(Colour::Green, Shape::Star, Colour::White), 3.0),
            (Scene::empty(Colour::Black), 2.0),
        ],
    );
    let s = Server::start(&tmp.path().join("data"), &[&lib], &[], None);

    let h = s.get("/api/health");
    assert_eq!(h.status, 200);
    let h = h.json();
    assert_eq!(h["model"], "tiny-clip-synthetic");
    crate::common::assert_provider(h["provider"].as_str().unwrap());

    // Live events while a job runs.
    let mut events = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    write!(
        events,
        "GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    events.set_read_timeout(Some(Duration::from_secs(60))).unwrap();

    let r = s.post_json("/api/index", &json!({"path": lib}));
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let job = wait_job(&s, id);
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["files"][0]["state"], "indexed");
    assert!(job["progress"]["frames_done"].as_i64().unwrap() >= 3);

    let mut reader = BufReader::new(events);
    let mut saw = Vec::new();
    let t0 = Instant::now();
    let mut line = String::new();
    while t0.elapsed() < Duration::from_secs(30) {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.starts_with("data:") {
            saw.push(line.clone());
            if line.contains("\"finished\"") {
                break;
            }
        }
    }
    assert!(saw.iter().any(|l| l.contains("\"planned\"")), "{saw:?}");
    assert!(saw.iter().any(|l| l.contains("\"frames\"")), "{saw:?}");
    assert!(
        saw.iter()
            .any(|l| l.contains("\"finished\"") && l.contains("succeeded")),
        "{saw:?}"
    );

    // Search: the same objects as the CLI's JSON.
    let r = s.get("/api/search?q=a%20red%20circle&k=5");
    assert_eq!(r.status, 200);
    let top = r.json()["results"][0].clone();
    for key in [
        "video_id",
        "path",
        "start",
        "end",
        "peak",
        "score",
        "source",
        "thumbnail",
    ] {
        assert!(top.get(key).is_some(), "{key} missing in {top}");
    }
    assert_eq!(top["path"], video.display().to_string());
    assert!(
        top["start"].as_f64().unwrap() <= 1.0 && (top["end"].as_f64().unwrap() - 3.0).abs() <= 1.0,
        "{top}"
    );
    let thumb = s.get(top["thumbnail"].as_str().unwrap());
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type"), Some("image/jpeg"));
    assert_eq!(&thumb.body[..2], &[0xFF, 0xD8]);
    let vid = top["video_id"].as_i64().unwrap();

    let g = s.get("/api/search?q=a%20green%20star&group=video").json();
    assert_eq!(g["groups"][0]["video_id"].as_i64(), Some(vid));
    assert!(g["groups"][0]["segments"][0]["start"].as_f64().unwrap() >= 2.0);
    // A cosine floor: the green star (about 0.64) passes 0.5, nothing reaches 0.99.
    let filtered = s
        .get(&format!("/api/search?q=a%20green%20star&video={vid}&min_score=0.5"))
        .json();
    let list = filtered["results"].as_array().unwrap();
    assert!(
        !list.is_empty() && list.iter().all(|r| r["score"].as_f64().unwrap() >= 0.5),
        "{filtered}"
    );
    let none = s
        .get(&format!("/api/search?q=a%20green%20star&video={vid}&min_score=0.99"))
        .json();
    assert!(none["results"].as_array().unwrap().is_empty(), "{none}");
    assert_eq!(none["cutoff"], "0.99");

    // Videos.
    let list = s.get("/api/videos").json();
    assert_eq!(list["videos"].as_array().unwrap().len(), 1);
    let detail = s.get(&format!("/api/videos/{vid}?q=a%20green%20star")).json();
    let frames = detail["frames"].as_array().unwrap();
    assert!(frames.len() >= 3);
    assert!(frames.iter().all(|f| f["score"].is_number()));

    // Media with HTTP Range.
    let bytes = std::fs::read(&video).unwrap();
    let r = request(
        s.port,
        "GET",
        &format!("/media/{vid}"),
        &[("Range", "bytes=0-99")],
        None,
    );
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 0-99/{}", bytes.len()).as_str())
    );
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert_eq!(r.body, bytes[..100]);
    let r = request(
        s.port,
        "GET",
        &format!("/media/{vid}"),
        &[("Range", "bytes=1000-")],
        None,
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, bytes[1000..]);
    let r = s.get(&format!("/media/{vid}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), bytes.len());
    assert_eq!(r.header("accept-ranges"), Some("bytes"));

    // Bad input.
    assert_error(&s.get("/api/search?q="), 400, "empty");
    assert_error(&s.get("/api/search"), 400, "empty");
    assert_error(&s.get(&format!("/api/search?q={}", "a".repeat(1001))), 400, "too_long");
    assert_error(&s.get("/api/search?q=x&k=0"), 400, "bad_k");
    assert_error(&s.get("/api/search?q=x&k=-3"), 400, "bad_k");
    assert_error(&s.get("/api/search?q=x&k=1001"), 400, "bad_k");
    assert_error(&s.get("/api/search?q=x&k=abc"), 400, "malformed");
    assert_error(&s.get("/api/search?q=x&group=nope"), 400, "malformed");
    assert_error(
        &s.req("POST", "/api/index", Some(("application/json", b"{\"path\": "))),
        400,
        "malformed",
    );
    assert_error(
        &s.req("POST", "/api/index", Some(("application/json", b"[1, 2]"))),
        400,
        "malformed",
    );
    assert_error(&s.get("/api/videos/999999"), 404, "not_found");
    assert_error(&s.get("/api/jobs/999999"), 404, "not_found");
    assert_error(&s.req("DELETE", "/api/jobs/999999", None), 404, "not_found");
    assert_error(&s.req("DELETE", "/api/videos/999999", None), 404, "not_found");
    assert_error(&s.get("/media/999999"), 404, "not_found");
    assert_error(&s.get("/thumbs/999999"), 404, "not_found");
    assert_error(&s.get("/api/videos/abc"), 404, "not_found");
    assert_error(&s.get("/api/nothing-here"), 404, "not_found");
    assert_error(
        &s.post_json("/api/index", &json!({"path": "/etc"})),
        403,
        "outside_library",
    );
    let sneaky = lib.join("..").join("..");
    assert_error(
        &s.post_json("/api/index", &json!({"path": sneaky})),
        403,
        "outside_library",
    );
    std::os::unix::fs::symlink("/etc", lib.join("etc-link")).unwrap();
    assert_error(
        &s.post_json("/api/index", &json!({"path": lib.join("etc-link")})),
        403,
        "outside_library",
    );
    assert_error(
        &s.post_json("/api/index", &json!({"path": lib.join("missing.mp4")})),
        404,
        "not_found",
    );
    // Traversal and absolute paths in URLs never reach the filesystem.
    for p in [
        "/media/..%2F..%2Fetc%2Fpasswd",
        "/thumbs/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/../../etc/passwd",
        "/media//etc/passwd",
        "/etc%2Fpasswd",
        "/..%2F..%2Fetc%2Fpasswd",
    ] {
        let r = s.get(p);
        assert!(r.status == 404 || r.status == 400, "{p}: {}", r.status);
        assert!(!r.text().contains("root:"), "{p} leaked a file");
    }

    // OpenAPI describes exactly the routes there are.
    let spec = s.get("/api/openapi.json").json();
    let mut described: Vec<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    described.sort();
    let mut routes = vec![
        "/api/docs",
        "/api/eval",
        "/api/events",
        "/api/health",
        "/api/index",
        "/api/jobs",
        "/api/jobs/{id}",
        "/api/labels",
        "/api/model",
        "/api/openapi.json",
        "/api/probes",
        "/api/probes/{name}",
        "/api/prune",
        "/api/search",
        "/api/tags",
        "/api/upload",
        "/api/videos",
        "/api/videos/{id}",
        "/media/{id}",
        "/metrics",
        "/thumbs/{id}",
    ];
    routes.sort();
    assert_eq!(described, routes);

    // Metrics.
    let m = s.get("/metrics").text();
    let queries: u64 = m
        .lines()
        .find(|l| l.starts_with("vidseek_queries_total"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(queries >= 4, "{m}");
    assert!(m.contains("vidseek_query_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(m.contains("vidseek_jobs{state=\"succeeded\"} 1"), "{m}");
    assert!(
        m.lines()
            .any(|l| l.starts_with("vidseek_indexed_frames ") && !l.ends_with(" 0"))
    );

    // Cancel an already finished job: 200, nothing changes.
    let r = s.req("DELETE", &format!("/api/jobs/{id}"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["state"], "succeeded");

    // Delete the video: gone from the API and from search.
    assert_eq!(s.req("DELETE", &format!("/api/videos/{vid}"), None).status, 204);
    assert_error(&s.get(&format!("/api/videos/{vid}")), 404, "not_found");
    assert_error(&s.get(&format!("/media/{vid}")), 404, "not_found");
    assert!(
        s.get("/api/search?q=a%20red%20circle").json()["results"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(video.exists(), "the file itself is never deleted");
}

#[test]
fn uploads_are_indexed_non_videos_fail_alone_and_big_ones_get_413() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let s = Server::start(&tmp.path().join("data"), &[&lib], &["--max-upload-mb", "1"], None);

    let clip = tmp.path().join("clip.mp4");
    VideoSpec {
        width: 320,
        height: 180,
        ..VideoSpec::new(vec![(Scene::new(Colour::Orange, Shape::Square, Colour::Purple), 2.0)])
    }
    .write(&clip)
    .unwrap();
    let content = std::fs::read(&clip).unwrap();
    assert!(content.len() < 1024 * 1024);
    let (ct, body) = multipart("file", "../../my clip.mp4", &content);
    let r = s.req("POST", "/api/upload", Some((&ct, &body)));
    assert_eq!(r.status, 202, "{}", r.text());
    let up = r.json();
    let saved = up["uploaded"]["path"].as_str().unwrap().to_string();
    assert!(
        saved.starts_with(&lib.canonicalize().unwrap().display().to_string()),
        "{saved}"
    );
    assert!(saved.ends_with("uploads/my clip.mp4"), "{saved}");
    assert_eq!(std::fs::read(&saved).unwrap(), content);
    let job = wait_job(&s, up["id"].as_i64().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    let top = &s.get("/api/search?q=a%20orange%20square").json()["results"][0];
    assert_eq!(top["path"], saved);

    // A non-video upload: accepted, its job fails with the reason, nothing else changes.
    let (ct, body) = multipart("file", "notes.mp4", b"these are not video frames\n");
    let r = s.req("POST", "/api/upload", Some((&ct, &body)));
    assert_eq!(r.status, 202);
    let job = wait_job(&s, r.json()["id"].as_i64().unwrap());
    assert_eq!(job["state"], "failed");
    assert!(
        job["files"][0]["error"].as_str().unwrap().contains("not a readable"),
        "{job}"
    );
    let videos = s.get("/api/videos").json();
    let indexed = videos["videos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["status"] == "indexed")
        .count();
    assert_eq!(indexed, 1);
    assert_eq!(
        s.get("/api/search?q=a%20orange%20square").json()["results"][0]["path"],
        saved
    );

    // Over the limit: 413, and no partial file left behind.
    let big = vec![0u8; 1024 * 1024 + 300_000];
    let (ct, body) = multipart("file", "big.mp4", &big);
    let r = s.req("POST", "/api/upload", Some((&ct, &body)));
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["code"], "too_large");
    let left: Vec<_> = std::fs::read_dir(lib.join("uploads"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!left.iter().any(|n| n.contains("big")), "{left:?}");

    // No file field at all.
    let r = s.req(
        "POST",
        "/api/upload",
        Some(("multipart/form-data; boundary=x", b"--x--\r\n")),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn token_is_required_off_loopback_and_checked_on_every_call() {
    let tmp = tempfile::tempdir().unwrap();
    // Non-loopback without a token: refuses to start.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vidseek"))
        .args([
            "--data",
            tmp.path().join("d0").to_str().unwrap(),
            "--device",
            "cpu",
            "--model",
            crate::common::tiny_model_dir().to_str().unwrap(),
            "serve",
            "--bind",
            "0.0.0.0:0",
        ])
        .env_remove("VIDSEEK_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("without a token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let s = Server::start(&tmp.path().join("data"), &[], &[], Some("s3cret-token"));
    let no = request(s.port, "GET", "/api/health", &[], None);
    assert_error(&no, 401, "missing_token");
    let wrong = request(s.port, "GET", "/api/health", &[("Authorization", "Bearer nope")], None);
    assert_error(&wrong, 401, "bad_token");
    for p in [
        "/api/videos",
        "/api/search?q=x",
        "/media/1",
        "/thumbs/1",
        "/metrics",
        "/api/jobs",
    ] {
        assert_eq!(request(s.port, "GET", p, &[], None).status, 401, "{p}");
    }
    assert_eq!(s.get("/api/health").status, 200);
    // The UI itself loads; its API calls need the token.
    assert_eq!(request(s.port, "GET", "/", &[], None).status, 200);
    // The login page sets a cookie that works in place of the header.
    let r = request(
        s.port,
        "POST",
        "/login",
        &[],
        Some(("application/x-www-form-urlencoded", b"token=s3cret-token")),
    );
    assert_eq!(r.status, 303);
    let cookie = r.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("vidseek_token="));
    assert_eq!(
        request(s.port, "GET", "/api/health", &[("Cookie", &cookie)], None).status,
        200
    );
    let bad = request(
        s.port,
        "POST",
        "/login",
        &[],
        Some(("application/x-www-form-urlencoded", b"token=guess")),
    );
    assert_eq!(bad.status, 401);
}

#[test]
fn a_file_dropped_into_the_watched_folder_becomes_searchable_without_any_request() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let s = Server::start(&tmp.path().join("data"), &[&lib], &["--watch"], None);
    // Written elsewhere, then moved in (as a finished download would be); a copy that
    // is still growing is covered by the settle time.
    let staged = tmp.path().join("staged.mp4");
    render(
        &staged,
        vec![
            (Scene::new(Colour::White, Shape::Triangle, Colour::Red), 3.0),
            (Scene::empty(Colour::Green), 2.0),
        ],
    );
    let target = lib.join("dropped.mp4");
    std::fs::copy(&staged, &target).unwrap();
    s.wait_for(90, "the watched file to be indexed", |s| {
        s.get("/api/videos").json()["videos"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["status"] == "indexed")
    });
    // The store lists the video as indexed a moment before the catalog has added its
    // vectors and directory entry (seen once under a loaded machine): allow that moment.
    s.wait_for(10, "the indexed file to be searchable", |s| {
        !s.get("/api/search?q=a%20white%20triangle").json()["results"][0].is_null()
    });
    let top = &s.get("/api/search?q=a%20white%20triangle").json()["results"][0];
    assert_eq!(top["path"], target.canonicalize().unwrap().display().to_string());
    assert!(
        top["start"].as_f64().unwrap() < 1.0 && top["end"].as_f64().unwrap() > 2.0,
        "{top}"
    );
    // Removing the file removes the video.
    std::fs::remove_file(&target).unwrap();
    s.wait_for(60, "the removed file to leave the library", |s| {
        s.get("/api/videos").json()["videos"].as_array().unwrap().is_empty()
    });
}
