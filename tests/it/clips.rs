//! Clips (`vidseek clip`, `GET /api/videos/{id}/clip`): real FFmpeg cuts of rendered
//! footage with scene changes at known frames, checked with ffprobe and by decoding
//! pixels. Re-encodes start at the picture shown at START and last END - START within a
//! frame; `--fast` starts at the keyframe before START and says how much earlier; audio
//! and subtitles are kept; bad spans, formats, limits, busy servers, gone files and
//! clients that leave are each answered clearly, with nothing left behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::assert::assert_error;
use crate::common::cli::{index_json, stderr, stdout, vs};
use crate::common::footage::ffmpeg;
use crate::common::server::Server;

/// 25 fps, a keyframe every 2 s and none at scene changes; scenes change at 3 s
/// (frame 75), 6 s and 8 s; a 440 Hz tone and two subtitle cues.
struct Footage {
    _dir: tempfile::TempDir,
    data: PathBuf,
    lib: PathBuf,
    src: PathBuf,
}

fn footage() -> &'static Footage {
    static F: OnceLock<Footage> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        std::fs::create_dir_all(&lib).unwrap();
        let video = dir.path().join("video.mp4");
        VideoSpec {
            extra_args: ["-g", "50", "-keyint_min", "50", "-sc_threshold", "0"]
                .map(String::from)
                .to_vec(),
            ..VideoSpec::new(vec![
                (Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 3.0),
                (Scene::new(Colour::Green, Shape::Square, Colour::White), 3.0),
                (Scene::empty(Colour::Yellow), 2.0),
                (Scene::new(Colour::White, Shape::Star, Colour::Black), 4.0),
            ])
        }
        .write(&video)
        .unwrap();
        let srt = dir.path().join("subs.srt");
        std::fs::write(
            &srt,
            "1\n00:00:01,000 --> 00:00:04,000\nfirst cue\n\n2\n00:00:05,000 --> 00:00:09,000\nsecond cue\n",
        )
        .unwrap();
        let src = lib.join("scenes.mp4");
        let (v, s) = (video.to_str().unwrap(), srt.to_str().unwrap());
        ffmpeg(&[
            "-i",
            v,
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=12",
            "-i",
            s,
            "-map",
            "0",
            "-map",
            "1",
            "-map",
            "2",
            "-c:v",
            "copy",
            "-c:a",
            "aac",
            "-c:s",
            "mov_text",
            src.to_str().unwrap(),
        ]);
        let long = lib.join("long.mp4");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=120",
            "-t",
            "120",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            long.to_str().unwrap(),
        ]);
        let data = dir.path().join("data");
        let (ok, report) = index_json(&data, &[&src, &long]);
        assert!(ok, "{report}");
        Footage {
            data,
            lib,
            src,
            _dir: dir,
        }
    })
}

/// ffprobe's streams and format of `path`.
pub fn probe(path: &Path) -> Value {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-count_frames",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe (installed with ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stream<'a>(probe: &'a Value, kind: &str) -> Option<&'a Value> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
}

fn num(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or(v.as_f64())
        .unwrap_or(f64::NAN)
}

/// Picture `n` (counted from 0) of `path`, decoded by the ffmpeg CLI from the start.
fn picture(path: &Path, n: usize) -> Vec<u8> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vf", &format!("select=eq(n\\,{n})"), "-vsync", "0", "-frames:v", "1"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Mean absolute difference of two RGB pictures of one size.
fn diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum::<f64>() / a.len() as f64
}

/// Asserts that the first picture of `clip` is picture `n` of `src` and not its neighbour `other`.
fn starts_with_picture(clip: &Path, src: &Path, n: usize, other: usize) {
    let first = picture(clip, 0);
    let (want, not) = (diff(&first, &picture(src, n)), diff(&first, &picture(src, other)));
    assert!(
        want < 4.0 && not > 4.0 * want.max(1.0),
        "{}: first picture differs from source picture {n} by {want:.2}, from {other} by {not:.2}",
        clip.display()
    );
}

fn clip_cli(args: &[&str]) -> std::process::Output {
    let f = footage();
    let mut full = vec!["clip"];
    full.extend_from_slice(args);
    vs(&f.data, &full)
}

#[test]
fn a_reencoded_clip_starts_at_start_and_lasts_the_span_with_audio_and_subtitles() {
    let f = footage();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cut.mp4");
    let src = f.src.to_str().unwrap();
    let o = clip_cli(&[src, "3", "5.0", "-o", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["widened"], 0.0, "{v}");
    let p = probe(&out);
    let video = stream(&p, "video").expect("a video stream");
    assert_eq!(video["codec_name"], "h264");
    let frames = num(&video["nb_read_frames"]);
    assert!((frames - 50.0).abs() <= 1.0, "{frames} pictures for 2 s at 25 fps");
    assert!((num(&video["duration"]) - 2.0).abs() <= 0.04 + 1e-6, "{video}");
    assert_eq!(stream(&p, "audio").expect("the audio kept")["codec_name"], "aac");
    assert_eq!(
        stream(&p, "subtitle").expect("the subtitles kept")["codec_name"],
        "mov_text"
    );
    // The scene changes at picture 75 (3.0 s): the clip starts with it, not the one before.
    starts_with_picture(&out, &f.src, 75, 74);
    // ... and a clip ending there ends with picture 74: not a picture late, not one early.
    let before = dir.path().join("before.mp4");
    let o = clip_cli(&[src, "1", "3", "-o", before.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let n = num(&stream(&probe(&before), "video").unwrap()["nb_read_frames"]) as usize;
    assert_eq!(n, 50, "1 s to 3 s at 25 fps");
    let last = picture(&before, n - 1);
    let (want, not) = (diff(&last, &picture(&f.src, 74)), diff(&last, &picture(&f.src, 75)));
    assert!(
        want < 4.0 && not > 4.0 * want.max(1.0),
        "last picture: {want:.2} from picture 74, {not:.2} from 75"
    );

    // By id and in clock form, as WebM: VP9 and Opus; the cut at 6.0 s.
    let id = crate::common::cli::videos(&f.data)
        .iter()
        .find(|v| v["path"].as_str().unwrap().ends_with("scenes.mp4"))
        .unwrap()["id"]
        .to_string();
    let webm = dir.path().join("cut.webm");
    let o = clip_cli(&[&id, "0:06", "0:07.5", "-o", webm.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = probe(&webm);
    assert_eq!(stream(&p, "video").unwrap()["codec_name"], "vp9");
    assert_eq!(stream(&p, "audio").unwrap()["codec_name"], "opus");
    assert_eq!(stream(&p, "subtitle").unwrap()["codec_name"], "webvtt");
    let frames = num(&stream(&p, "video").unwrap()["nb_read_frames"]);
    assert!((frames - 37.5).abs() <= 1.0, "{frames} pictures for 1.5 s at 25 fps");
    starts_with_picture(&webm, &f.src, 150, 149);
}

#[test]
fn a_fast_clip_copies_from_the_keyframe_before_start_and_says_how_much_earlier() {
    let f = footage();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fast.mp4");
    let o = clip_cli(&[
        f.src.to_str().unwrap(),
        "3.0",
        "5.0",
        "--fast",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Keyframes every 2 s: the one at or before 3.0 s is at 2.0 s.
    let text = stdout(&o);
    assert!(
        text.contains("starts 1.000 s before 3.000 s") && text.contains("keyframe at 2.000 s"),
        "{text}"
    );
    let p = probe(&out);
    let video = stream(&p, "video").unwrap();
    // 2.0 s to 5.0 s: 75 pictures, and a copy may run a few past END (B-frame order).
    let frames = num(&video["nb_read_frames"]);
    assert!((75.0..=79.0).contains(&frames), "{frames} pictures: {video}");
    assert!(stream(&p, "audio").is_some() && stream(&p, "subtitle").is_some(), "{p}");
    // The copy's first picture is the keyframe's (picture 50, the first scene), not START's.
    starts_with_picture(&out, &f.src, 50, 75);

    // H.264 cannot be copied into WebM; a GIF is always encoded.
    let o = clip_cli(&[f.src.to_str().unwrap(), "3", "5", "--fast", "-o", "/tmp/x.webm"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("h264 video, which WebM cannot hold"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_gif_is_a_small_short_preview() {
    let f = footage();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.gif");
    let o = clip_cli(&[f.src.to_str().unwrap(), "2", "4", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = probe(&out);
    let v = stream(&p, "video").unwrap();
    assert_eq!(v["codec_name"], "gif");
    assert_eq!(v["width"], 320, "{v}");
    assert!(
        (num(&v["nb_read_frames"]) - 20.0).abs() <= 1.0,
        "10 pictures a second: {v}"
    );
    let o = clip_cli(&[f.src.to_str().unwrap(), "0", "11", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("a GIF preview (use mp4 or webm for longer clips) is at most 10.0 s"),
        "{}",
        stderr(&o)
    );
}

/// An animated WebP read by Pillow (FFmpeg 5.1 cannot decode animated WebP): its format,
/// size, the duration of each picture, and the centre pixel of the first and last.
fn read_webp(path: &Path) -> Value {
    let script = "import sys, json\nfrom PIL import Image\nim = Image.open(sys.argv[1])\n\
        d = []\nfor i in range(im.n_frames):\n    im.seek(i); im.load(); d.append(im.info['duration'])\n\
        def mid(i):\n    im.seek(i); f = im.convert('RGB'); return f.getpixel((f.width // 2, f.height // 2))\n\
        print(json.dumps({'format': im.format, 'size': im.size, 'durations': d, 'first': mid(0), 'last': mid(im.n_frames - 1)}))";
    let out = std::process::Command::new(crate::common::python())
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_webp_is_the_same_small_short_preview_in_full_colour() {
    let f = footage();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.webp");
    let src = f.src.to_str().unwrap();
    // 2-4 s: the red circle on blue (to 3 s), then the green square on white.
    let o = clip_cli(&[src, "2", "4", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let w = read_webp(&out);
    assert_eq!(w["format"], "WEBP");
    assert_eq!(w["size"][0], 320, "{w}");
    let d: Vec<f64> = w["durations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    // 10 pictures a second; libwebp merges unchanged pictures into one longer one.
    assert!(
        d.iter().all(|ms| (ms % 100.0).abs() < 1e-9),
        "10 pictures a second: {w}"
    );
    assert!((d.iter().sum::<f64>() - 2000.0).abs() <= 100.0, "2 s: {w}");
    let px = |k: &str| -> Vec<i64> { w[k].as_array().unwrap().iter().map(|c| c.as_i64().unwrap()).collect() };
    let (first, last) = (px("first"), px("last"));
    assert!(
        first[0] > 180 && first[1] < 80 && first[2] < 80,
        "first picture not the red disc: {w}"
    );
    assert!(
        last[1] > 120 && last[0] < 80 && last[2] < 100,
        "last picture not the green square: {w}"
    );
    let o = clip_cli(&[src, "0", "11", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("a WebP preview (use mp4 or webm for longer clips) is at most 10.0 s"),
        "{}",
        stderr(&o)
    );
    let o = clip_cli(&[src, "2", "4", "-o", out.to_str().unwrap(), "--fast"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("a WEBP preview is always encoded"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_spans_formats_and_files_are_refused_naming_the_fix() {
    let f = footage();
    let src = f.src.to_str().unwrap();
    for (args, want) in [
        (vec![src, "5", "3"], "is not before end"),
        (vec![src, "4", "4"], "is not before end"),
        (vec![src, "4", "4.01"], "shorter than one picture"),
        (vec![src, "3", "30"], "is past the end of"),
        (vec![src, "abc", "3"], "is not a time"),
        (
            vec![src, "1", "2", "--format", "avi"],
            "unknown clip format \"avi\": use mp4, webm, gif or webp",
        ),
        (vec![src, "1", "3", "--max-seconds", "1"], "a clip is at most 1.0 s"),
        (
            vec!["/nonexistent/gone.mp4", "1", "2"],
            "/nonexistent/gone.mp4: cannot open",
        ),
        (vec!["999999", "1", "2"], "no video with this id"),
    ] {
        let mut a = args.clone();
        a.extend(["-o", "/tmp/vidseek-never-written.mp4"]);
        let o = clip_cli(&a);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    assert!(!Path::new("/tmp/vidseek-never-written.mp4").exists());
}

/// The clips waiting to be sent in a server's data folder.
fn leftovers(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data.join("tmp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn the_api_streams_a_clip_as_an_attachment_and_refuses_bad_requests() {
    let f = footage();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::common::copy_dir(&f.data, &data);
    let s = Server::start(&data, &[&f.lib], &[], None);
    let id = s.video_id("scenes.mp4");
    let r = s.get(&format!("/api/videos/{id}/clip?start=3&end=5"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    let cd = r.header("content-disposition").unwrap();
    assert!(
        cd.starts_with("attachment") && cd.contains("scenes_3.00-5.00.mp4"),
        "{cd}"
    );
    let got = dir.path().join("api.mp4");
    std::fs::write(&got, &r.body).unwrap();
    let p = probe(&got);
    assert!((num(&stream(&p, "video").unwrap()["duration"]) - 2.0).abs() <= 0.04 + 1e-6);
    starts_with_picture(&got, &f.src, 75, 74);

    let r = s.get(&format!("/api/videos/{id}/clip?start=3&end=5&fast=true"));
    assert_eq!(r.header("x-clip-start"), Some("2.000000"), "{:?}", r.headers);
    let r = s.get(&format!("/api/videos/{id}/clip?start=2&end=3.5&format=gif"));
    assert_eq!((r.status, r.header("content-type")), (200, Some("image/gif")));
    let r = s.get(&format!("/api/videos/{id}/clip?start=2&end=3.5&format=webp"));
    assert_eq!((r.status, r.header("content-type")), (200, Some("image/webp")));
    let got = dir.path().join("api.webp");
    std::fs::write(&got, &r.body).unwrap();
    let ms: f64 = read_webp(&got)["durations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .sum();
    assert!((ms - 1500.0).abs() <= 100.0, "1.5 s: {ms} ms");

    for (q, status, code) in [
        ("start=5&end=3", 400, "bad_span"),
        ("start=1&end=99", 400, "bad_span"),
        ("start=1&end=2&format=avi", 400, "malformed"),
        ("start=0&end=11&format=gif", 400, "span_too_long"),
        ("start=0&end=11&format=webp", 400, "span_too_long"),
        ("start=1&end=2&fast=true&format=webm", 400, "cannot_copy"),
    ] {
        assert_error(&s.get(&format!("/api/videos/{id}/clip?{q}")), status, code);
    }
    assert_error(&s.get("/api/videos/999999/clip?start=1&end=2"), 404, "not_found");
    assert!(leftovers(&data).is_empty());
}

#[test]
fn a_file_gone_is_404_naming_it() {
    let f = footage();
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let copy = lib.join("soon-gone.mp4");
    std::fs::copy(&f.src, &copy).unwrap();
    let data = dir.path().join("data");
    assert!(index_json(&data, &[&copy]).0);
    let s = Server::start(&data, &[&lib], &[], None);
    let id = s.video_id("soon-gone.mp4");
    std::fs::remove_file(&copy).unwrap();
    let r = s.get(&format!("/api/videos/{id}/clip?start=1&end=2"));
    assert_error(&r, 404, "");
    assert!(
        r.json()["message"].as_str().unwrap().contains("soon-gone.mp4"),
        "{}",
        r.text()
    );
}

/// Sends a clip request on a raw connection and leaves it open.
fn ask(s: &Server, path: &str) -> std::net::TcpStream {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    c
}

fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn past_the_export_limit_is_429_and_a_client_that_leaves_frees_its_slot_and_file() {
    let f = footage();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::common::copy_dir(&f.data, &data);
    let s = Server::start(
        &data,
        &[&f.lib],
        &["--clip-exports", "1", "--clip-max-seconds", "200"],
        None,
    );
    let id = s.video_id("long.mp4");
    let slow = format!("/api/videos/{id}/clip?start=0&end=119&format=webm");
    let c = ask(&s, &slow);
    wait_until(30, "the cut to start", || !leftovers(&data).is_empty());
    let r = s.get(&format!("/api/videos/{id}/clip?start=0&end=1"));
    assert_error(&r, 429, "busy");
    assert!(
        r.json()["message"].as_str().unwrap().contains("--clip-exports"),
        "{}",
        r.text()
    );
    // The client goes away mid-cut: the cut is stopped, its file removed, its slot freed.
    let t0 = Instant::now();
    drop(c);
    wait_until(20, "the clip's file to be removed", || leftovers(&data).is_empty());
    let gone_after = t0.elapsed();
    let r = s.get(&format!("/api/videos/{id}/clip?start=0&end=1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(leftovers(&data).is_empty(), "{:?}", leftovers(&data));
    eprintln!("the cut was stopped {gone_after:?} after the client left");
}

#[test]
fn the_ui_saves_clips_exports_the_list_and_keeps_its_state_in_links() {
    let root = crate::common::root();
    assert!(
        root.join("tests/browser/node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `.ci/setup --test`"
    );
    let f = footage();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::common::copy_dir(&f.data, &data);
    let s = Server::start(&data, &[&f.lib], &[], None);
    let out = dir.path().join("downloads");
    std::fs::create_dir_all(&out).unwrap();
    let run = std::process::Command::new("node")
        .arg(root.join("tests/browser/clips.mjs"))
        .args([
            &s.url("/"),
            "a green square on a white background",
            out.to_str().unwrap(),
        ])
        .output()
        .expect("node runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "browser test failed:\n{log}");
    // Each downloaded clip is a playable video of the span the page asked for.
    for (which, file) in [("card", "card-clip.mp4"), ("player", "player-clip.webm")] {
        let line = log.lines().find(|l| l.starts_with(&format!("span {which} "))).unwrap();
        let v: Vec<f64> = line.split_whitespace().skip(2).map(|x| x.parse().unwrap()).collect();
        let p = probe(&out.join(file));
        let video = stream(&p, "video").unwrap_or_else(|| panic!("{file}: no video stream: {p}"));
        assert!(num(&video["nb_read_frames"]) > 0.0, "{file}: {video}");
        let want = (v[1] * 100.0).round() / 100.0 - (v[0] * 100.0).round() / 100.0;
        let frames = num(&video["nb_read_frames"]);
        assert!(
            (frames / 25.0 - want).abs() <= 0.05,
            "{file}: {frames} pictures for {want} s"
        );
    }
    let edl = std::fs::read_to_string(out.join("hits.edl")).unwrap();
    assert!(edl.contains("* FROM CLIP: ") && edl.contains("scenes.mp4"), "{edl}");
    for step in [
        "a reload shows",
        "back goes to the search",
        "forward shows",
        "the pasted link shows",
    ] {
        assert!(log.contains(&format!("ok: {step}")), "{step}: {log}");
    }
}
