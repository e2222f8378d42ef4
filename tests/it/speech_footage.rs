//! Footage with speech at known times, for the speech tests: sentences spoken by
//! Debian's `espeak-ng` (several voices and speeds), placed with FFmpeg's `adelay` and
//! mixed (`amix`) into the audio track of a rendered video, with pink noise under one and
//! a chord of tones ("music") under another. Where each sentence starts is where it was
//! placed plus the silence `espeak-ng` puts before its first sound (measured on its WAV).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::footage::ffmpeg;

/// A sentence spoken into the footage.
pub struct Sentence {
    pub text: &'static str,
    /// espeak-ng's voice and words per minute.
    voice: &'static str,
    speed: u32,
    /// Where it is placed (seconds).
    pub at: f64,
    /// What is under it: "", "noise" or "music".
    pub under: &'static str,
}

pub const SENTENCES: [Sentence; 3] = [
    Sentence {
        text: "The budget meeting starts early tomorrow morning in the library.",
        voice: "en-us",
        speed: 150,
        at: 1.0,
        under: "",
    },
    Sentence {
        text: "Please bring the quarterly sales report to the harbour office.",
        voice: "en-gb",
        speed: 140,
        at: 7.5,
        under: "noise",
    },
    Sentence {
        text: "Our garden needs more water during the long summer.",
        voice: "en-us+f3",
        speed: 165,
        at: 14.0,
        under: "music",
    },
];

/// Seconds of footage.
pub const DURATION: f64 = 20.0;

/// The footage: the video and each sentence's first sound (seconds).
pub struct SpeechFootage {
    _dir: tempfile::TempDir,
    pub video: PathBuf,
    /// The same video without an audio stream.
    pub silent: PathBuf,
    pub onsets: Vec<f64>,
}

/// The footage, made once per test process.
pub fn speech_footage() -> &'static SpeechFootage {
    static F: OnceLock<SpeechFootage> = OnceLock::new();
    F.get_or_init(build)
}

/// The first sample of a 16-bit PCM WAV louder than 1/50 of full scale, in seconds.
fn first_sound(wav: &Path) -> f64 {
    let b = std::fs::read(wav).unwrap();
    let rate = u32::from_le_bytes(b[24..28].try_into().unwrap()) as f64;
    let data = b.windows(4).position(|w| w == b"data").unwrap() + 8;
    let first = b[data..]
        .chunks_exact(2)
        .position(|c| i16::from_le_bytes([c[0], c[1]]).unsigned_abs() > 655)
        .unwrap();
    first as f64 / rate
}

fn build() -> SpeechFootage {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let silent = d.join("silent.mp4");
    VideoSpec::new(vec![
        (Scene::empty(Colour::Blue), 7.0),
        (Scene::new(Colour::Red, Shape::Circle, Colour::Green), 7.0),
        (Scene::empty(Colour::White), DURATION - 14.0),
    ])
    .write(&silent)
    .unwrap();
    let mut inputs: Vec<String> = vec!["-i".into(), silent.display().to_string()];
    let mut chains = Vec::new();
    let mut onsets = Vec::new();
    for (k, s) in SENTENCES.iter().enumerate() {
        let wav = d.join(format!("s{k}.wav"));
        let out = std::process::Command::new("espeak-ng")
            .args([
                "-v",
                s.voice,
                "-s",
                &s.speed.to_string(),
                "-w",
                wav.to_str().unwrap(),
                s.text,
            ])
            .output()
            .expect("espeak-ng (.ci/setup --test installs it)");
        assert!(
            out.status.success(),
            "espeak-ng: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        onsets.push(s.at + first_sound(&wav));
        inputs.extend(["-i".into(), wav.display().to_string()]);
        let ms = (s.at * 1000.0).round() as u64;
        chains.push(format!(
            "[{}:a]aresample=48000,adelay={ms}|{ms},apad=whole_dur={DURATION}[v{k}]",
            k + 1
        ));
    }
    // What is under the second and third sentence, 4 s long.
    let bed = |k: usize, src: &str| {
        let s = &SENTENCES[k];
        let ms = (s.at * 1000.0 - 500.0).round() as u64;
        format!("{src}:d=5,aresample=48000,adelay={ms}|{ms},apad=whole_dur={DURATION}[b{k}]")
    };
    let mut beds = Vec::new();
    for (k, s) in SENTENCES.iter().enumerate() {
        let src = match s.under {
            "noise" => "anoisesrc=c=pink:a=0.06:r=48000:seed=7",
            "music" => "aevalsrc='0.05*sin(2*PI*220*t)+0.04*sin(2*PI*277*t)+0.04*sin(2*PI*330*t)':s=48000",
            _ => continue,
        };
        chains.push(bed(k, src));
        beds.push(format!("[b{k}]"));
    }
    let n = SENTENCES.len() + beds.len();
    let labels: String = (0..SENTENCES.len()).map(|k| format!("[v{k}]")).chain(beds).collect();
    chains.push(format!("{labels}amix=inputs={n}:normalize=0:duration=longest[a]"));
    let video = d.join("spoken.mp4");
    let mut args: Vec<String> = inputs;
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
            "-b:a",
            "128k",
            "-t",
            &DURATION.to_string(),
            video.to_str().unwrap(),
        ]
        .map(String::from),
    );
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
    SpeechFootage {
        _dir: dir,
        video,
        silent,
        onsets,
    }
}

/// Lower-case words without punctuation.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate of `hyp` against `truth` (substitutions, insertions and deletions
/// over the truth's words).
pub fn wer(truth: &[String], hyp: &[String]) -> f64 {
    let mut row: Vec<usize> = (0..=hyp.len()).collect();
    for (i, t) in truth.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, h) in hyp.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(t != h)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[hyp.len()] as f64 / truth.len().max(1) as f64
}
