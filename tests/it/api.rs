//! The HTTP API against a real server process on a loopback port, a real SQLite file
//! and a rendered video. The library is indexed once through the API while its event
//! stream is read; each test then runs a server of its own on a copy of it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vidseek::{Colour, Scene, Shape};

use crate::common::assert::{assert_error, assert_provider};
use crate::common::footage::render;
use crate::common::server::{Server, request};

/// One video of three scenes (a red circle on blue 0-3 s, a green star on white 3-6 s,
/// an empty black background), indexed through the API.
struct Indexed {
    _tmp: tempfile::TempDir,
    lib: PathBuf,
    video: PathBuf,
    data: PathBuf,
    /// The index job: its id, and the job as it ended.
    job_id: i64,
    job: Value,
    /// The `data:` lines of the event stream, opened before the job was posted.
    events: Vec<String>,
}

fn indexed() -> &'static Indexed {
    static LIB: OnceLock<Indexed> = OnceLock::new();
    LIB.get_or_init(|| {
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
        let data = tmp.path().join("data");
        let s = Server::start(&data, &[&lib], &[], None);
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
        let job_id = r.json()["id"].as_i64().unwrap();
        let job = s.wait_job(job_id);
        let events = data_lines_until_finished(events);
        Indexed {
            _tmp: tmp,
            lib,
            video,
            data,
            job_id,
            job,
            events,
        }
    })
}

/// The `data:` lines of an event stream, up to the job's `finished` event (30 s at most).
fn data_lines_until_finished(events: TcpStream) -> Vec<String> {
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
    saw
}

/// A server of its own on a copy of the indexed library.
fn serve() -> Server {
    let lib = indexed();
    Server::start_on_copy(&lib.data, &[&lib.lib])
}

/// The id of the library's one video.
fn video_id(s: &Server) -> i64 {
    s.get("/api/videos").json()["videos"][0]["id"].as_i64().unwrap()
}

#[test]
fn health_names_the_model_and_the_provider_it_runs_on() {
    let s = serve();
    let h = s.get("/api/health");
    assert_eq!(h.status, 200);
    let h = h.json();
    assert_eq!(h["model"], "tiny-clip-synthetic");
    assert_provider(h["provider"].as_str().unwrap());
}

#[test]
fn an_index_job_reports_its_files_and_progress_live_on_the_event_stream() {
    let Indexed { job, events: saw, .. } = indexed();
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["files"][0]["state"], "indexed");
    assert!(job["progress"]["frames_done"].as_i64().unwrap() >= 3);
    assert!(saw.iter().any(|l| l.contains("\"planned\"")), "{saw:?}");
    assert!(saw.iter().any(|l| l.contains("\"frames\"")), "{saw:?}");
    assert!(
        saw.iter()
            .any(|l| l.contains("\"finished\"") && l.contains("succeeded")),
        "{saw:?}"
    );
}

#[test]
fn search_answers_with_the_clis_objects_and_their_thumbnails() {
    let s = serve();
    let video = &indexed().video;
    // The same objects as the CLI's JSON.
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
}

#[test]
fn search_groups_by_video_and_applies_a_cosine_floor() {
    let s = serve();
    let vid = video_id(&s);
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
}

#[test]
fn videos_are_listed_and_detailed_with_each_frames_score() {
    let s = serve();
    let vid = video_id(&s);
    let list = s.get("/api/videos").json();
    assert_eq!(list["videos"].as_array().unwrap().len(), 1);
    let detail = s.get(&format!("/api/videos/{vid}?q=a%20green%20star")).json();
    let frames = detail["frames"].as_array().unwrap();
    assert!(frames.len() >= 3);
    assert!(frames.iter().all(|f| f["score"].is_number()));
}

#[test]
fn media_is_served_whole_or_by_http_range() {
    let s = serve();
    let (video, vid) = (&indexed().video, video_id(&s));
    let bytes = std::fs::read(video).unwrap();
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
}

#[test]
fn bad_requests_get_an_error_with_a_code_and_a_message() {
    let s = serve();
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
}

#[test]
fn paths_to_index_outside_the_library_are_refused() {
    let s = serve();
    let lib = &indexed().lib;
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
}

#[test]
fn traversal_and_absolute_paths_in_urls_never_reach_the_filesystem() {
    let s = serve();
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
}

#[test]
fn metrics_count_queries_jobs_and_indexed_frames() {
    let s = serve();
    let vid = video_id(&s);
    // Four searches for the query counter.
    for q in [
        "/api/search?q=a%20red%20circle&k=5".to_string(),
        "/api/search?q=a%20green%20star&group=video".to_string(),
        format!("/api/search?q=a%20green%20star&video={vid}&min_score=0.5"),
        format!("/api/search?q=a%20green%20star&video={vid}&min_score=0.99"),
    ] {
        assert_eq!(s.get(&q).status, 200, "{q}");
    }
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
}

#[test]
fn canceling_a_finished_job_changes_nothing() {
    let s = serve();
    let id = indexed().job_id;
    let r = s.req("DELETE", &format!("/api/jobs/{id}"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["state"], "succeeded");
}

#[test]
fn a_deleted_video_leaves_the_api_and_search_but_not_the_disk() {
    let s = serve();
    let (video, vid) = (&indexed().video, video_id(&s));
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
