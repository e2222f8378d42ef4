//! A sample library: several videos of random scenes in the encodings and geometries the
//! spec names, with `truth.json` (where each scene is) and `eval.json` (the same truth as
//! `vidseek eval` queries). The demo and the CLI's `sample-footage` make one.

use std::path::Path;

use super::{Codec, Rng, Scene, SynthError, VideoSpec};

/// One video of a sample library and where its scenes are.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SampleVideo {
    pub path: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub codec: String,
    pub scenes: Vec<SampleScene>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SampleScene {
    pub caption: String,
    pub start: f64,
    pub end: f64,
}

/// Renders `videos` sample videos of `scenes` random scenes each (2..8 s) into `dir`,
/// cycling through the encodings and frame geometries the spec names, and writes
/// `truth.json` beside them (and `eval.json`, the same truth for `vidseek eval`).
pub fn sample_library(dir: &Path, videos: usize, scenes: usize, seed: u64) -> Result<Vec<SampleVideo>, SynthError> {
    std::fs::create_dir_all(dir).map_err(|e| SynthError::Encode {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let formats = [
        (Codec::H264, 640, 360, (25, 1)),
        (Codec::Vp9, 480, 480, (25, 1)),
        (Codec::Hevc, 360, 640, (25, 1)),
        (Codec::H264, 640, 480, (30000, 1001)),
    ];
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for v in 0..videos {
        let (codec, w, h, fps) = formats[v % formats.len()];
        let mut list: Vec<(Scene, f64)> = Vec::new();
        while list.len() < scenes {
            let s = Scene::random(&mut rng, 0.1);
            // Neighbouring scenes differ in content, so every cut is a real change.
            if list.last().is_some_and(|(p, _)| p.same_content(&s)) {
                continue;
            }
            list.push((s, 2.0 + rng.below(7) as f64));
        }
        let spec = VideoSpec {
            width: w,
            height: h,
            fps,
            codec,
            scenes: list,
            seed: seed * 1000 + v as u64,
            extra_args: Vec::new(),
        };
        let path = dir.join(format!("sample-{:02}.{}", v + 1, codec.extension()));
        let spans = spec.write(&path)?;
        out.push(SampleVideo {
            path: path.display().to_string(),
            width: w,
            height: h,
            fps: fps.0 as f64 / fps.1 as f64,
            codec: format!("{codec:?}"),
            scenes: spans
                .into_iter()
                .map(|s| SampleScene {
                    caption: s.scene.caption(),
                    start: s.start,
                    end: s.end,
                })
                .collect(),
        });
    }
    let truth = dir.join("truth.json");
    std::fs::write(&truth, serde_json::to_string_pretty(&out).unwrap_or_default()).map_err(|e| SynthError::Encode {
        path: truth.display().to_string(),
        reason: e.to_string(),
    })?;
    // The same truth in `vidseek eval`'s form: each scene's caption is a query.
    let eval: Vec<serde_json::Value> = out
        .iter()
        .flat_map(|v| {
            let name = Path::new(&v.path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            v.scenes
                .iter()
                .map(move |s| serde_json::json!({"query": s.caption, "path": name, "start": s.start, "end": s.end}))
        })
        .collect();
    let eval_file = dir.join("eval.json");
    std::fs::write(&eval_file, serde_json::to_string_pretty(&eval).unwrap_or_default()).map_err(|e| {
        SynthError::Encode {
            path: eval_file.display().to_string(),
            reason: e.to_string(),
        }
    })?;
    Ok(out)
}
