//! Footage with text at known times and places, for the OCR tests: the synthetic scenes
//! with FFmpeg `drawtext` phrases over them (Debian's DejaVu fonts; several sizes,
//! colours and backgrounds; static and scrolling; a slide) and a subtitle burned in
//! through libass. Where each phrase is, frame by frame, comes from rendering it alone,
//! white on black, and taking the bounds of its pixels.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use vidseek::{Colour, RgbImage, Scene, Shape, VideoSpec};

use crate::common::footage::ffmpeg;

pub const W: u32 = 854;
pub const H: u32 = 480;
const FONTS: &str = "/usr/share/fonts/truetype/dejavu";

/// A phrase drawn into the footage.
pub struct Phrase {
    pub text: &'static str,
    /// Font file, size in px, colour, extra drawtext options.
    font: &'static str,
    pub size: u32,
    style: &'static str,
    /// drawtext's x and y expressions.
    x: &'static str,
    y: &'static str,
    pub start: f64,
    pub end: f64,
}

/// The planted phrases; the burned-in subtitle is [`SUBTITLE`].
pub const PHRASES: [Phrase; 6] = [
    Phrase {
        text: "Quarterly revenue forecast",
        font: "DejaVuSans.ttf",
        size: 36,
        style: "fontcolor=white",
        x: "60",
        y: "60",
        start: 0.0,
        end: 4.0,
    },
    Phrase {
        text: "Lighthouse keeper schedule",
        font: "DejaVuSerif-Bold.ttf",
        size: 22,
        style: "fontcolor=yellow:box=1:boxcolor=black:boxborderw=6",
        x: "300",
        y: "250",
        start: 0.0,
        end: 4.0,
    },
    Phrase {
        text: "small print fourteen pixels",
        font: "DejaVuSansMono.ttf",
        size: 14,
        style: "fontcolor=black:box=1:boxcolor=white:boxborderw=4",
        x: "480",
        y: "400",
        start: 0.0,
        end: 4.0,
    },
    Phrase {
        text: "Harbour crossing tonight",
        font: "DejaVuSans-Bold.ttf",
        size: 30,
        style: "fontcolor=white:borderw=2:bordercolor=black",
        x: "100",
        y: "120",
        start: 4.0,
        end: 8.0,
    },
    Phrase {
        text: "Breaking news from the coast",
        font: "DejaVuSans.ttf",
        size: 26,
        style: "fontcolor=black",
        x: "440-(t-8)*60",
        y: "380",
        start: 8.0,
        end: 12.0,
    },
    Phrase {
        text: "Slide three tidal charts",
        font: "DejaVuSerif.ttf",
        size: 24,
        style: "fontcolor=0x333333",
        x: "40",
        y: "40",
        start: 8.0,
        end: 12.0,
    },
];

/// The subtitle burned in through libass, and when.
pub const SUBTITLE: (&str, f64, f64) = ("the ferry leaves at noon", 4.5, 7.5);

/// The footage: the video, its frames at 1 fps as PPM files (what both pipelines read)
/// and, per phrase (the subtitle last), its bounds in each of those frames.
pub struct Footage {
    _dir: tempfile::TempDir,
    pub video: PathBuf,
    pub frames: Vec<PathBuf>,
    /// bounds[p][f]: the phrase's pixel bounds (x0, y0, x1, y1) in frame f, None when absent.
    pub bounds: Vec<Vec<Option<[f32; 4]>>>,
}

impl Footage {
    /// The text of phrase `p` (the subtitle after the drawn ones).
    pub fn text(p: usize) -> &'static str {
        PHRASES.get(p).map_or(SUBTITLE.0, |x| x.text)
    }
}

fn drawtext(p: &Phrase, mask: bool) -> String {
    let style = if mask { "fontcolor=white" } else { p.style };
    format!(
        "drawtext=fontfile={FONTS}/{}:text='{}':fontsize={}:{style}:x='{}':y={}:enable='between(t,{},{})'",
        p.font,
        p.text,
        p.size,
        p.x,
        p.y,
        p.start,
        p.end - 0.001
    )
}

fn subtitles(srt: &Path) -> String {
    format!(
        "subtitles={}:force_style='FontName=DejaVu Sans,FontSize=18'",
        srt.display()
    )
}

/// The footage, rendered once per test process.
pub fn footage() -> &'static Footage {
    static F: OnceLock<Footage> = OnceLock::new();
    F.get_or_init(build)
}

fn build() -> Footage {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = d.join("base.mp4");
    let mut spec = VideoSpec::new(vec![
        (Scene::empty(Colour::Blue), 4.0),
        (Scene::new(Colour::Red, Shape::Circle, Colour::Green), 4.0),
        (Scene::empty(Colour::White), 4.0),
    ]);
    (spec.width, spec.height) = (W, H);
    spec.write(&base).unwrap();
    let srt = d.join("burned.srt");
    std::fs::write(&srt, "1\n00:00:04,500 --> 00:00:07,500\nthe ferry leaves at noon\n").unwrap();
    let mut chain: Vec<String> = PHRASES.iter().map(|p| drawtext(p, false)).collect();
    chain.push(subtitles(&srt));
    let video = d.join("onscreen.mp4");
    ffmpeg(&[
        "-i",
        base.to_str().unwrap(),
        "-vf",
        &chain.join(","),
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        video.to_str().unwrap(),
    ]);
    let frames = frames_of(&video, &d.join("frames"));
    let mut bounds = Vec::new();
    let black = format!("color=c=black:s={W}x{H}:d=12:r=25");
    for (k, filter) in PHRASES
        .iter()
        .map(|p| drawtext(p, true))
        .chain([subtitles(&srt)])
        .enumerate()
    {
        let mask = d.join(format!("mask{k}.mp4"));
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &black,
            "-vf",
            &filter,
            "-c:v",
            "libx264",
            "-qp",
            "0",
            mask.to_str().unwrap(),
        ]);
        let masks = frames_of(&mask, &d.join(format!("mask{k}")));
        bounds.push(masks.iter().map(|m| bright_bounds(&read_ppm(m))).collect());
    }
    Footage {
        _dir: dir,
        video,
        frames,
        bounds,
    }
}

/// The frames of `video` at 1 fps (t = 0, 1, 2, ...) as PPM files in `dir`.
fn frames_of(video: &Path, dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let pattern = dir.join("f%03d.ppm");
    ffmpeg(&[
        "-i",
        video.to_str().unwrap(),
        "-vf",
        "fps=1:round=down",
        pattern.to_str().unwrap(),
    ]);
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    v.sort();
    v
}

/// A binary PPM (P6, 8 bits).
pub fn read_ppm(path: &Path) -> RgbImage {
    let bytes = std::fs::read(path).unwrap();
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let s = i;
        while !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[s..i]).to_string());
    }
    assert_eq!(fields[0], "P6", "{}", path.display());
    let (w, h): (u32, u32) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let data = bytes[i + 1..].to_vec();
    RgbImage::from_raw(w, h, data).unwrap()
}

/// Bounds of the pixels brighter than 100 (None: none).
fn bright_bounds(img: &RgbImage) -> Option<[f32; 4]> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for y in 0..img.height {
        for x in 0..img.width {
            if img.pixel(x, y)[1] > 100 {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            }
        }
    }
    (x0 != u32::MAX).then(|| [x0 as f32, y0 as f32, x1 as f32, y1 as f32])
}
