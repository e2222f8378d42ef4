//! Encoding a sequence of scenes into a real video file through the `ffmpeg` CLI (raw RGB
//! frames on its standard input), and the exact time span of each scene in the result.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::render::{Frame, shape_mask};
use super::{Rng, Scene};

/// Encodings the tests and benchmarks use (all through the ffmpeg CLI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// H.264 yuv420p in MP4 (the default of the spec).
    H264,
    /// VP9 in WebM.
    Vp9,
    /// HEVC in Matroska.
    Hevc,
}

impl Codec {
    /// The file extension of its container.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::H264 => "mp4",
            Codec::Vp9 => "webm",
            Codec::Hevc => "mkv",
        }
    }

    fn args(self) -> Vec<&'static str> {
        match self {
            Codec::H264 => vec!["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"],
            Codec::Vp9 => vec![
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "0",
                "-crf",
                "36",
            ],
            Codec::Hevc => vec![
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-crf",
                "26",
                "-x265-params",
                "log-level=none",
            ],
        }
    }
}

/// A video to render: scenes played one after another.
#[derive(Clone, Debug)]
pub struct VideoSpec {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frame rate as a fraction (25/1, 30000/1001, ...).
    pub fps: (u32, u32),
    /// Codec and container.
    pub codec: Codec,
    /// Scenes and their durations in seconds.
    pub scenes: Vec<(Scene, f64)>,
    /// Seed of the noise.
    pub seed: u64,
    /// Extra ffmpeg output arguments (e.g. a GOP length, metadata).
    pub extra_args: Vec<String>,
}

/// Where a scene landed in the encoded video, in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneSpan {
    /// What the scene shows.
    pub scene: Scene,
    /// Seconds, first frame.
    pub start: f64,
    /// Seconds, past the last frame.
    pub end: f64,
}

/// Errors of writing a video.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The ffmpeg command-line tool is missing or failed.
    #[error("encoding {path} with the ffmpeg CLI failed: {reason} (install it: apt-get install ffmpeg)")]
    Encode { path: String, reason: String },
}

impl crate::error::Classified for SynthError {
    fn fault(&self) -> crate::error::Fault {
        crate::error::Fault::Unavailable
    }
}

impl VideoSpec {
    /// A 640x360 H.264 video at 25 fps of the given scenes.
    pub fn new(scenes: Vec<(Scene, f64)>) -> Self {
        Self {
            width: 640,
            height: 360,
            fps: (25, 1),
            codec: Codec::H264,
            scenes,
            seed: 1,
            extra_args: Vec::new(),
        }
    }

    /// Seconds in all.
    pub fn duration(&self) -> f64 {
        self.scenes.iter().map(|(_, d)| d).sum()
    }

    /// The frame count each scene gets: frame i shows the scene covering i / fps.
    fn frame_plan(&self) -> (Vec<usize>, Vec<SceneSpan>) {
        let fps = self.fps.0 as f64 / self.fps.1 as f64;
        let total = (self.duration() * fps).round() as usize;
        let mut bounds = Vec::new();
        let mut t = 0.0;
        for (s, d) in &self.scenes {
            bounds.push((s, t, t + d));
            t += d;
        }
        let mut plan = Vec::with_capacity(total);
        for i in 0..total {
            let time = i as f64 / fps;
            let k = bounds
                .iter()
                .position(|(_, _, e)| time < *e)
                .unwrap_or(bounds.len() - 1);
            plan.push(k);
        }
        // Exact spans in presentation time: from the first to past the last frame.
        let mut spans = Vec::new();
        for (k, (s, _, _)) in bounds.iter().enumerate() {
            let first = plan.iter().position(|&p| p == k);
            let last = plan.iter().rposition(|&p| p == k);
            if let (Some(f), Some(l)) = (first, last) {
                spans.push(SceneSpan {
                    scene: (*s).clone(),
                    start: f as f64 / fps,
                    end: (l + 1) as f64 / fps,
                });
            }
        }
        (plan, spans)
    }

    /// Renders and encodes the video to `path`; returns where each scene is.
    pub fn write(&self, path: &Path) -> Result<Vec<SceneSpan>, SynthError> {
        let (plan, spans) = self.frame_plan();
        let fail = |reason: String| SynthError::Encode {
            path: path.display().to_string(),
            reason,
        };
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s"])
            .arg(format!("{}x{}", self.width, self.height))
            .arg("-framerate")
            .arg(format!("{}/{}", self.fps.0, self.fps.1))
            .args(["-i", "-"])
            .args(self.codec.args())
            .args(["-pix_fmt", "yuv420p"])
            .args(&self.extra_args)
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
        let mut stdin = child.stdin.take().ok_or_else(|| fail("no stdin".into()))?;
        let mut rng = Rng::new(self.seed);
        let masks: Vec<Vec<bool>> = self
            .scenes
            .iter()
            .map(|(s, _)| shape_mask(s, self.width, self.height))
            .collect();
        let mut write_err = None;
        for &k in &plan {
            let mut frame = Frame::new(&self.scenes[k].0, &masks[k]);
            let img = frame.draw(&mut rng, self.width, self.height);
            if let Err(e) = stdin.write_all(&img.data) {
                write_err = Some(e);
                break;
            }
        }
        drop(stdin);
        let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
        if !out.status.success() || write_err.is_some() {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(fail(if msg.is_empty() {
                format!("{:?} {:?}", out.status, write_err)
            } else {
                msg
            }));
        }
        Ok(spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Colour, Scene};

    #[test]
    fn frame_plan_spans_follow_the_frame_grid() {
        let spec = VideoSpec {
            fps: (30000, 1001),
            ..VideoSpec::new(vec![
                (Scene::empty(Colour::Red), 2.0),
                (Scene::empty(Colour::Blue), 3.0),
            ])
        };
        let (plan, spans) = spec.frame_plan();
        assert_eq!(plan.len(), 150);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].start, 0.0);
        // 60 frames (0..=59) at 29.97 fps: the first scene ends after frame 59.
        assert!((spans[0].end - 60.0 * 1001.0 / 30000.0).abs() < 1e-9);
        assert_eq!(spans[1].start, spans[0].end);
    }
}
