//! `synth`: the synthetic scene domain (coloured shapes on coloured backgrounds,
//! specified in docs/testing.md), rendered to frames and encoded to real video files by
//! the ffmpeg command-line tool.
//!
//! It feeds the tests, the benchmarks and the offline demo, so that the whole pipeline
//! (decode -> preprocess -> embed -> index -> search -> timestamps) is checked against
//! known answers with the bundled tiny model, which was trained on the same spec
//! (models/tiny-clip/scenes.py is the Python twin used for training). No outside
//! library; the encoder is a child process.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::image::RgbImage;

/// A palette colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Colour {
    /// Red (220, 30, 30).
    Red,
    /// Green (30, 160, 50).
    Green,
    /// Blue (30, 70, 220).
    Blue,
    /// Yellow (245, 215, 30).
    Yellow,
    /// Orange (250, 135, 20).
    Orange,
    /// Purple (135, 50, 175).
    Purple,
    /// White (245, 245, 245).
    White,
    /// Black (15, 15, 15).
    Black,
}

impl Colour {
    /// Every colour of the palette.
    pub const ALL: [Colour; 8] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Orange,
        Colour::Purple,
        Colour::White,
        Colour::Black,
    ];

    /// Its name in captions.
    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::Orange => "orange",
            Colour::Purple => "purple",
            Colour::White => "white",
            Colour::Black => "black",
        }
    }

    /// Its RGB value.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 30, 30],
            Colour::Green => [30, 160, 50],
            Colour::Blue => [30, 70, 220],
            Colour::Yellow => [245, 215, 30],
            Colour::Orange => [250, 135, 20],
            Colour::Purple => [135, 50, 175],
            Colour::White => [245, 245, 245],
            Colour::Black => [15, 15, 15],
        }
    }
}

/// A shape kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    /// A disc.
    Circle,
    /// A filled square.
    Square,
    /// An equilateral triangle, apex up.
    Triangle,
    /// A five-pointed star, one point up.
    Star,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 4] = [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Star];

    /// Its name in captions.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Star => "star",
        }
    }
}

/// One scene: a background and at most one shape, sizes relative to S = min(W, H).
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    /// Background colour.
    pub bg: Colour,
    /// (shape, colour); `None` for an empty frame.
    pub shape: Option<(Shape, Colour)>,
    /// Longer side of the unrotated bounding box / S, 0.35..0.60.
    pub size: f64,
    /// Centre offset from the centre of the central square / S, within +-0.15.
    pub dx: f64,
    /// Vertical offset of the shape's centre / S.
    pub dy: f64,
    /// Degrees, clockwise on screen; 0 for circles, within +-15 otherwise.
    pub rot: f64,
    /// Standard deviation of the Gaussian background noise (0..255 scale), 0..6.
    pub noise: f64,
}

impl Scene {
    /// A shape scene with the default geometry (centred, 0.45 S, no rotation).
    pub fn new(colour: Colour, shape: Shape, bg: Colour) -> Self {
        Self {
            bg,
            shape: Some((shape, colour)),
            size: 0.45,
            dx: 0.0,
            dy: 0.0,
            rot: 0.0,
            noise: 2.0,
        }
    }

    /// A frame of background only.
    pub fn empty(bg: Colour) -> Self {
        Self {
            bg,
            shape: None,
            size: 0.0,
            dx: 0.0,
            dy: 0.0,
            rot: 0.0,
            noise: 2.0,
        }
    }

    /// The canonical caption of the spec.
    pub fn caption(&self) -> String {
        match self.shape {
            Some((s, c)) => format!("a {} {} on a {} background", c.name(), s.name(), self.bg.name()),
            None => format!("an empty {} background", self.bg.name()),
        }
    }

    /// A random scene anywhere in the spec.
    pub fn random(rng: &mut Rng, p_empty: f64) -> Self {
        let bg = Colour::ALL[rng.below(8)];
        let noise = if rng.uniform() < 0.7 { rng.range(0.0, 6.0) } else { 0.0 };
        if rng.uniform() < p_empty {
            return Self {
                noise,
                ..Self::empty(bg)
            };
        }
        let mut colour = bg;
        while colour == bg {
            colour = Colour::ALL[rng.below(8)];
        }
        let shape = Shape::ALL[rng.below(4)];
        let rot = if shape != Shape::Circle && rng.uniform() < 0.6 {
            rng.range(-15.0, 15.0)
        } else {
            0.0
        };
        Self {
            bg,
            shape: Some((shape, colour)),
            size: rng.range(0.35, 0.60),
            dx: rng.range(-0.15, 0.15),
            dy: rng.range(-0.15, 0.15),
            rot,
            noise,
        }
    }

    /// Every scene the spec's canonical captions name: per background, the empty frame
    /// and each shape in each other colour (8 x (1 + 7 x 4) = 232), default geometry.
    pub fn canonical() -> Vec<Scene> {
        let mut out = Vec::with_capacity(232);
        for bg in Colour::ALL {
            out.push(Scene::empty(bg));
            for c in Colour::ALL.into_iter().filter(|c| *c != bg) {
                out.extend(Shape::ALL.map(|s| Scene::new(c, s, bg)));
            }
        }
        out
    }

    /// Whether `other` has the same colours and shape (geometry aside).
    pub fn same_content(&self, other: &Scene) -> bool {
        self.bg == other.bg && self.shape == other.shape
    }
}

/// Small deterministic generator (SplitMix64): reproducible fixtures without a crate.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// A uniform number in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    /// A uniform index below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

const STAR_INNER: f64 = 0.45;

/// Polygon vertices (pixels, relative to the shape centre, y down, unrotated).
fn polygon(shape: Shape, length: f64) -> Vec<(f64, f64)> {
    match shape {
        Shape::Square => {
            let h = length / 2.0;
            vec![(-h, -h), (h, -h), (h, h), (-h, h)]
        }
        Shape::Triangle => {
            // Equilateral, apex up, side = length, centred on its centroid.
            let height = length * 3f64.sqrt() / 2.0;
            vec![
                (0.0, -2.0 * height / 3.0),
                (length / 2.0, height / 3.0),
                (-length / 2.0, height / 3.0),
            ]
        }
        Shape::Star => {
            // The width (2 R sin 72) is the longer side of the bounding box.
            let r_out = length / (2.0 * 72f64.to_radians().sin());
            (0..10)
                .map(|i| {
                    let r = if i % 2 == 0 { r_out } else { r_out * STAR_INNER };
                    let a = (-90.0 + 36.0 * i as f64).to_radians();
                    (r * a.cos(), r * a.sin())
                })
                .collect()
        }
        Shape::Circle => Vec::new(),
    }
}

fn inside_polygon(x: f64, y: f64, poly: &[(f64, f64)]) -> bool {
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let (x1, y1) = poly[i];
        let (x2, y2) = poly[(i + 1) % n];
        if (y1 > y) != (y2 > y) && x < (x2 - x1) * (y - y1) / (y2 - y1) + x1 {
            inside = !inside;
        }
    }
    inside
}

/// Pixels (row-major indices) whose centre lies inside the scene's shape.
pub fn shape_mask(scene: &Scene, w: u32, h: u32) -> Vec<bool> {
    let mut mask = vec![false; w as usize * h as usize];
    let Some((shape, _)) = scene.shape else {
        return mask;
    };
    let s = w.min(h) as f64;
    let (cx, cy) = (w as f64 / 2.0 + scene.dx * s, h as f64 / 2.0 + scene.dy * s);
    let length = scene.size * s;
    let reach = length * 0.75 + 2.0;
    let x0 = (cx - reach).max(0.0) as u32;
    let x1 = ((cx + reach) as u32 + 1).min(w);
    let y0 = (cy - reach).max(0.0) as u32;
    let y1 = ((cy + reach) as u32 + 1).min(h);
    let (sin, cos) = scene.rot.to_radians().sin_cos();
    let poly = polygon(shape, length);
    let r2 = (length / 2.0) * (length / 2.0);
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            // Inverse rotation into the shape's frame.
            let (ux, uy) = (cos * px + sin * py, -sin * px + cos * py);
            let inside = match shape {
                Shape::Circle => ux * ux + uy * uy <= r2,
                _ => inside_polygon(ux, uy, &poly),
            };
            mask[(y * w + x) as usize] = inside;
        }
    }
    mask
}

/// Renders one frame: background, shape, fresh Gaussian noise on the background.
pub fn render(scene: &Scene, w: u32, h: u32, rng: &mut Rng) -> RgbImage {
    let mask = shape_mask(scene, w, h);
    let mut frame = Frame::new(scene, &mask);
    frame.draw(rng, w, h)
}

/// A scene's pixels before noise, reused for every frame of a static scene.
struct Frame<'a> {
    bg: [u8; 3],
    fg: [u8; 3],
    noise: f64,
    mask: &'a [bool],
}

impl<'a> Frame<'a> {
    fn new(scene: &Scene, mask: &'a [bool]) -> Self {
        Self {
            bg: scene.bg.rgb(),
            fg: scene.shape.map(|(_, c)| c.rgb()).unwrap_or(scene.bg.rgb()),
            noise: scene.noise,
            mask,
        }
    }

    fn draw(&mut self, rng: &mut Rng, w: u32, h: u32) -> RgbImage {
        let n = w as usize * h as usize;
        let mut data = Vec::with_capacity(n * 3);
        let bank = noise_bank();
        let mut off = rng.below(bank.len());
        for &inside in self.mask.iter() {
            if inside {
                data.extend_from_slice(&self.fg);
            } else if self.noise > 0.0 {
                for c in 0..3 {
                    let v = self.bg[c] as f64 + bank[off] as f64 * self.noise;
                    off = if off + 1 == bank.len() { 0 } else { off + 1 };
                    data.push(v.round().clamp(0.0, 255.0) as u8);
                }
            } else {
                data.extend_from_slice(&self.bg);
            }
        }
        RgbImage {
            width: w,
            height: h,
            data,
        }
    }
}

/// Two million standard-normal samples, made once: fresh-looking noise per frame at the
/// cost of a copy (windows start at random offsets).
fn noise_bank() -> &'static [f32] {
    static BANK: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    BANK.get_or_init(|| {
        let mut rng = Rng::new(0x5EED);
        (0..2_000_000).map(|_| rng.normal() as f32).collect()
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_cover_the_expected_area() {
        let (w, h) = (400, 300);
        let s = 300.0;
        for shape in Shape::ALL {
            let scene = Scene {
                noise: 0.0,
                ..Scene::new(Colour::Red, shape, Colour::Blue)
            };
            let area = shape_mask(&scene, w, h).iter().filter(|b| **b).count() as f64;
            let l = 0.45 * s;
            let expected = match shape {
                Shape::Circle => std::f64::consts::PI * l * l / 4.0,
                Shape::Square => l * l,
                Shape::Triangle => l * l * 3f64.sqrt() / 4.0,
                // 10 triangles (centre, outer, inner) of the star.
                Shape::Star => {
                    let r = l / (2.0 * 72f64.to_radians().sin());
                    10.0 * 0.5 * r * (r * STAR_INNER) * 36f64.to_radians().sin()
                }
            };
            assert!((area / expected - 1.0).abs() < 0.03, "{shape:?}: {area} vs {expected}");
        }
    }

    #[test]
    fn render_uses_palette_colours() {
        let mut rng = Rng::new(3);
        let scene = Scene {
            noise: 0.0,
            ..Scene::new(Colour::Yellow, Shape::Square, Colour::Purple)
        };
        let img = render(&scene, 64, 48, &mut rng);
        assert_eq!(img.pixel(32, 24), Colour::Yellow.rgb());
        assert_eq!(img.pixel(0, 0), Colour::Purple.rgb());
    }

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
