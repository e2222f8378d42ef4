//! Speech end to end with the real tiny.en: the footage of tests/it/speech_footage.rs
//! indexed with `--speech on --speech-model DIR` (the faster-whisper folder as
//! published, converted once into the data folder), then every planted sentence found by
//! a query for three of its words, `source:speech`, at its time, in the CLI and the API;
//! `vidseek transcript` (JSON with word times, SRT) and `GET /api/videos/{id}/transcript`
//! (JSON, WebVTT); `model import` of the folder. Bad input: a file without audio, a
//! damaged audio track, a folder that is not a speech model: each named, the frames
//! still indexed, nothing already indexed lost.

use std::path::Path;

use serde_json::Value;

use crate::common::cli::{report_files, stderr, stdout, vs, vs_json};
use crate::common::footage::ffmpeg;
use crate::common::server::Server;
use crate::speech::model_dir;
use crate::speech_footage::{SENTENCES, speech_footage, words};

/// Three words of sentence `k` that a user would type: its three longest.
fn three_words(k: usize) -> String {
    let mut w = words(SENTENCES[k].text);
    w.sort_by_key(|w| std::cmp::Reverse(w.len()));
    w[..3].join(" ")
}

/// Whether a result is sentence `k`: speech text whose time range holds the sentence's
/// first sound (0.3 s of slack at the start).
fn is_sentence(k: usize, onset: f64, r: &Value) -> Result<(), String> {
    let (s, e) = (r["start"].as_f64().unwrap(), r["end"].as_f64().unwrap());
    if s > onset + 0.3 || e < onset || (s - onset).abs() > 1.0 {
        return Err(format!(
            "sentence {k} starts at {onset:.2} s, the hit is {s:.2}-{e:.2} s"
        ));
    }
    Ok(())
}

fn found(k: usize, onset: f64, results: &[Value]) -> Result<(), String> {
    let mut why = Vec::new();
    for r in results.iter().filter(|r| r.get("text").is_some_and(|t| !t.is_null())) {
        match is_sentence(k, onset, r) {
            Ok(()) => return Ok(()),
            Err(e) => why.push(format!("{:?}: {e}", r["text"])),
        }
    }
    Err(format!("{:?} not found: {why:?} in {results:?}", SENTENCES[k].text))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn every_spoken_sentence_is_found_by_three_words_at_its_time_in_the_cli_and_the_api() {
    let f = speech_footage();
    let data = tempfile::tempdir().unwrap();
    let model = model_dir();
    let t0 = std::time::Instant::now();
    let video = f.video.to_str().unwrap();
    let args = [
        "index",
        "--json",
        "--speech",
        "on",
        "--speech-model",
        model.to_str().unwrap(),
        video,
    ];
    let report = vs_json(data.path(), &args);
    eprintln!("indexed with speech in {:.1?}: {report}", t0.elapsed());
    let listed = vs_json(data.path(), &["transcript", video, "--json"]);
    eprintln!("transcript: {listed:#}");
    let video_id = listed["video_id"].as_i64().unwrap();
    let segments = listed["segments"].as_array().unwrap();
    assert!(!segments.is_empty() && segments.iter().all(|s| !s["words"].as_array().unwrap().is_empty()));
    // The CLI reads the library before the server holds it.
    let srt = vs(data.path(), &["transcript", &video_id.to_string(), "--srt"]);
    let srt = stdout(&srt);
    assert!(
        srt.starts_with("1\n") && srt.matches(" --> ").count() == segments.len(),
        "{srt}"
    );
    let server = Server::start(data.path(), &[], &[], None);
    let mut failures = Vec::new();
    for (k, onset) in f.onsets.iter().enumerate() {
        let q = format!("{} source:speech", three_words(k));
        let cli = vs_json(data.path(), &["search", &q, "-k", "5", "--json"]);
        if let Err(e) = found(k, *onset, cli["results"].as_array().unwrap()) {
            failures.push(format!("CLI {q:?}: {e}"));
        }
        let api = server.get(&format!("/api/search?q={}&k=5", urlencode(&q))).json();
        if let Err(e) = found(k, *onset, api["results"].as_array().unwrap()) {
            failures.push(format!("API {q:?}: {e}"));
        }
    }
    // Speech is not subtitles: source:subtitle finds none of it.
    let q = format!("{} source:subtitle", three_words(0));
    let none = vs_json(data.path(), &["search", &q, "-k", "5", "--json"]);
    assert!(none["results"].as_array().unwrap().is_empty(), "{none}");
    // The transcript in the API as in the CLI, and as subtitles.
    let api = server.get(&format!("/api/videos/{video_id}/transcript")).json();
    assert_eq!(api["segments"], listed["segments"]);
    let vtt = server.get(&format!("/api/videos/{video_id}/transcript?format=vtt"));
    assert_eq!(vtt.status, 200);
    let vtt = vtt.text();
    assert!(
        vtt.starts_with("WEBVTT\n\n") && vtt.matches(" --> ").count() == segments.len(),
        "{vtt}"
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn bad_audio_and_bad_speech_models_are_named_and_the_frames_still_indexed() {
    let f = speech_footage();
    let data = tempfile::tempdir().unwrap();
    let d = tempfile::tempdir().unwrap();
    let model = model_dir();
    // A damaged audio track: the footage's AAC (ADTS) with the bytes from 40% to 60% (the second sentence)
    // overwritten, muxed into MPEG-TS (which keeps ADTS as it is) beside the pictures.
    let adts = d.path().join("track.aac");
    ffmpeg(&[
        "-i",
        f.video.to_str().unwrap(),
        "-vn",
        "-c:a",
        "copy",
        adts.to_str().unwrap(),
    ]);
    let mut bytes = std::fs::read(&adts).unwrap();
    let n = bytes.len();
    let mut x = 7u32;
    for b in &mut bytes[n * 40 / 100..n * 60 / 100] {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        *b = (x >> 16) as u8;
    }
    std::fs::write(&adts, bytes).unwrap();
    let broken = d.path().join("broken.ts");
    let (silent, track) = (f.silent.to_str().unwrap(), adts.to_str().unwrap());
    ffmpeg(&[
        "-i",
        silent,
        "-i",
        track,
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c",
        "copy",
        broken.to_str().unwrap(),
    ]);
    // A file with two audio streams, the second silent.
    let two = d.path().join("two.mkv");
    ffmpeg(&[
        "-i",
        f.video.to_str().unwrap(),
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=8000:cl=7.1",
        "-map",
        "0:v",
        "-map",
        "0:a",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        "-c:a",
        "flac",
        "-t",
        "20",
        two.to_str().unwrap(),
    ]);
    let files = [
        f.silent.to_str().unwrap(),
        broken.to_str().unwrap(),
        two.to_str().unwrap(),
    ];
    let mut args = vec![
        "index",
        "--json",
        "--speech",
        "on",
        "--speech-model",
        model.to_str().unwrap(),
        "-v",
    ];
    args.extend(files);
    let out = vs(data.path(), &args);
    let err = stderr(&out);
    eprintln!("{err}");
    assert!(out.status.success(), "{err}");
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let indexed: Vec<Value> = report_files(&report);
    for file in files {
        let r = indexed
            .iter()
            .find(|r| r["path"].as_str() == Some(file))
            .unwrap_or_else(|| panic!("{file}: {report}"));
        assert!(
            r["frames"].as_u64().unwrap_or(0) > 0,
            "{file}: its frames must be indexed: {r}"
        );
    }
    assert!(
        err.contains(&format!("{}: no audio stream", f.silent.display())),
        "{err}"
    );
    let damaged = format!("{}: the audio track is damaged", broken.display());
    assert!(err.contains(&damaged), "{err}");
    // The speech before the damage is kept, and the last sentence's after it.
    let t = vs_json(data.path(), &["transcript", broken.to_str().unwrap(), "--json"]);
    let said: Vec<String> = t["segments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| words(s["text"].as_str().unwrap()))
        .collect();
    assert!(
        said.contains(&"budget".to_string()) && said.contains(&"garden".to_string()),
        "{t}"
    );
    assert!(
        err.contains(&format!("{}: 2 audio streams; transcribing stream 0", two.display())),
        "{err}"
    );
    // The file with two streams still has its speech (stream 0 is the spoken one).
    let t = vs_json(data.path(), &["transcript", two.to_str().unwrap(), "--json"]);
    assert!(!t["segments"].as_array().unwrap().is_empty(), "{t}");

    // A folder that is not a speech model (a CLIP package), and one with a broken model.bin.
    let clip = crate::common::models::tiny_model_dir();
    let out = vs(
        data.path(),
        &["index", "--speech-model", clip.to_str().unwrap(), files[0]],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&clip.display().to_string()) && err.contains("not a speech model"),
        "{err}"
    );
    let cut = d.path().join("cut");
    std::fs::create_dir(&cut).unwrap();
    for name in ["config.json", "vocabulary.txt", "tokenizer.json"] {
        std::fs::copy(model.join(name), cut.join(name)).unwrap();
    }
    let bin = std::fs::read(model.join("model.bin")).unwrap();
    std::fs::write(cut.join("model.bin"), &bin[..bin.len() / 3]).unwrap();
    let out = vs(
        data.path(),
        &["index", "--speech-model", cut.to_str().unwrap(), files[0]],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&cut.join("model.bin").display().to_string()) && err.contains("ends too early"),
        "{err}"
    );
    // Nothing indexed was lost.
    let videos = vs_json(data.path(), &["videos", "--json"]);
    assert_eq!(videos["videos"].as_array().unwrap().len(), 3, "{videos}");
}

#[test]
fn model_import_converts_a_faster_whisper_folder_for_speech_model_by_name() {
    let data = tempfile::tempdir().unwrap();
    let out = vs(
        data.path(),
        &["model", "import", model_dir().to_str().unwrap(), "--name", "tiny-en"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let dest = data.path().join("models/tiny-en");
    assert!(stdout(&out).contains("--speech-model tiny-en"), "{}", stdout(&out));
    let info: Value = serde_json::from_str(&std::fs::read_to_string(dest.join("speech.json")).unwrap()).unwrap();
    assert_eq!(
        (info["kind"].as_str(), info["english_only"].as_bool()),
        (Some("speech"), Some(true)),
        "{info}"
    );
    let size = std::fs::metadata(dest.join("ggml-model.bin")).unwrap().len();
    assert!((70_000_000..80_000_000).contains(&size), "{size}");
    // Importing again over it is refused, naming the folder.
    let again = vs(
        data.path(),
        &["model", "import", model_dir().to_str().unwrap(), "--name", "tiny-en"],
    );
    assert!(!again.status.success() && stderr(&again).contains(&dest.display().to_string()));
    let _ = Path::new("");
}
