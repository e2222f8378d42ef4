//! A span of a video cut into a file: the request checked against the video and the
//! limits ([`Plan::new`]), then the `ffmpeg` CLI run to completion ([`Plan::run`]) or
//! as a child that is killed when its owner is dropped ([`Plan::start`], the server's
//! way: a client that goes away stops the cut).
//!
//! By default a frame-accurate re-encode (H.264 + AAC in MP4, VP9 + Opus in WebM): the
//! first picture is the one shown at START, the clip lasts END - START. `fast` copies
//! the streams from the keyframe at or before START instead (no quality loss, no
//! encoding; the cut starts earlier by [`Plan::widened`]). Audio is kept, and text
//! subtitles where the container holds them (converted to `mov_text` in MP4, WebVTT in
//! WebM). A GIF or an animated WebP is a small preview: 10 pictures a second, at most
//! `gif_width` wide, at most `gif_seconds` long (WebP through FFmpeg's libwebp encoder:
//! full colour where GIF has 256, and smaller files).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::ExportError;
use crate::decode::{self, CutFacts};

/// The container and codecs of a clip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClipFormat {
    /// H.264 + AAC (+ mov_text) in MP4.
    Mp4,
    /// VP9 + Opus (+ WebVTT) in WebM.
    Webm,
    /// An animated GIF preview (no sound).
    Gif,
    /// An animated WebP preview (no sound).
    Webp,
}

impl ClipFormat {
    /// The file extension and FFmpeg muxer name.
    pub fn extension(self) -> &'static str {
        match self {
            ClipFormat::Mp4 => "mp4",
            ClipFormat::Webm => "webm",
            ClipFormat::Gif => "gif",
            ClipFormat::Webp => "webp",
        }
    }

    /// The media type of the file.
    pub fn mime(self) -> &'static str {
        match self {
            ClipFormat::Mp4 => "video/mp4",
            ClipFormat::Webm => "video/webm",
            ClipFormat::Gif => "image/gif",
            ClipFormat::Webp => "image/webp",
        }
    }

    /// A short, small preview (GIF, WebP): no sound, limited by `gif_seconds`.
    pub fn is_preview(self) -> bool {
        matches!(self, ClipFormat::Gif | ClipFormat::Webp)
    }

    /// The format a file name's extension asks for, if it is one of these.
    pub fn of_path(path: &Path) -> Option<Self> {
        path.extension()?.to_str()?.parse().ok()
    }
}

impl std::str::FromStr for ClipFormat {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, ExportError> {
        match s.to_ascii_lowercase().as_str() {
            "mp4" => Ok(ClipFormat::Mp4),
            "webm" => Ok(ClipFormat::Webm),
            "gif" => Ok(ClipFormat::Gif),
            "webp" => Ok(ClipFormat::Webp),
            _ => Err(ExportError::Format(s.to_string())),
        }
    }
}

/// What to cut: seconds from the video stream's start (the times vidseek shows).
#[derive(Clone, Debug)]
pub struct ClipRequest {
    pub start: f64,
    pub end: f64,
    pub format: ClipFormat,
    /// Copy the streams from the keyframe at or before `start` instead of re-encoding.
    pub fast: bool,
}

/// The limits a clip must keep (settings of `serve`; the CLI's defaults).
#[derive(Clone, Debug)]
pub struct Limits {
    /// The longest clip, seconds.
    pub max_seconds: f64,
    /// The longest GIF preview, seconds.
    pub gif_seconds: f64,
    /// A GIF preview's largest width, pixels.
    pub gif_width: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_seconds: 600.0,
            gif_seconds: 10.0,
            gif_width: 320,
        }
    }
}

/// A checked cut of one file, ready to run.
#[derive(Clone, Debug)]
pub struct Plan {
    source: PathBuf,
    format: ClipFormat,
    fast: bool,
    facts: CutFacts,
    gif_width: u32,
    /// Seconds from the video stream's start: where the clip really starts (START, or
    /// the keyframe before it with `fast`).
    pub from: f64,
    /// Seconds: where it ends.
    pub to: f64,
}

/// Text subtitle codecs that can be converted to a container's own text format.
const TEXT_SUBTITLES: &[&str] = &["subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"];
/// Video codecs a WebM file holds.
const WEBM_VIDEO: &[&str] = &["vp8", "vp9", "av1"];

impl Plan {
    /// Checks `req` against the video at `source` and the limits.
    pub fn new(source: &Path, req: &ClipRequest, limits: &Limits) -> Result<Self, ExportError> {
        let (start, end) = (req.start, req.end);
        if !start.is_finite() || !end.is_finite() || start < 0.0 {
            return Err(ExportError::Span(format!(
                "start {start} and end {end} must be seconds from 0 (e.g. 12.5 or 1:02.5)"
            )));
        }
        if start >= end {
            return Err(ExportError::Span(format!(
                "start {start} s is not before end {end} s: give the earlier time first"
            )));
        }
        let facts = decode::cut_facts(source)?;
        let frame = 1.0 / facts.fps().max(1.0);
        if facts.duration > 0.0 && end > facts.duration + frame {
            return Err(ExportError::Span(format!(
                "end {end} s is past the end of {} ({:.3} s long)",
                source.display(),
                facts.duration
            )));
        }
        if end - start < frame - 1e-6 {
            return Err(ExportError::Span(format!(
                "{start}-{end} s is shorter than one picture of {} ({frame:.3} s): ask for a longer span",
                source.display()
            )));
        }
        check_length(req, limits)?;
        let from = if req.fast {
            check_copy(source, req.format, &facts)?;
            decode::keyframe_at_or_before(source, start)?
        } else {
            start
        };
        Ok(Plan {
            source: source.to_path_buf(),
            format: req.format,
            fast: req.fast,
            facts,
            gif_width: limits.gif_width,
            from,
            to: end,
        })
    }

    /// Seconds the cut starts before START (a stream copy starts at a keyframe).
    pub fn widened(&self, start: f64) -> f64 {
        (start - self.from).max(0.0)
    }

    /// The `ffmpeg` command writing the clip to `out`.
    fn command(&self, out: &Path) -> Command {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(self.args(out))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    fn args(&self, out: &Path) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
        // -ss counts from the container's start; vidseek's times from the video stream's.
        // A hair later, so a seek to a keyframe's own time finds that keyframe.
        let ss = self.facts.stream_start + self.from - self.facts.format_start + if self.fast { 5e-4 } else { 0.0 };
        push(&["-nostdin", "-v", "error", "-y", "-ss", &format!("{:.6}", ss.max(0.0))]);
        push(&["-i"]);
        a.push(self.source.clone().into_os_string());
        let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
        push(&["-t", &format!("{:.6}", self.to - self.from), "-map", "0:v:0"]);
        let scale = format!("fps=10,scale='min({},iw)':-2:flags=lanczos", self.gif_width);
        if self.format == ClipFormat::Gif {
            let graph = format!("{scale},split[a][b];[a]palettegen[p];[b][p]paletteuse");
            push(&["-an", "-sn", "-filter_complex", &graph, "-f", "gif"]);
        } else if self.format == ClipFormat::Webp {
            push(&["-an", "-sn", "-vf", &scale, "-c:v", "libwebp_anim", "-lossless", "0"]);
            push(&["-q:v", "75", "-loop", "0", "-pix_fmt", "yuv420p", "-f", "webp"]);
        } else {
            push(&["-map", "0:a?"]);
            for (i, c) in self.facts.subtitle_codecs.iter().enumerate() {
                if TEXT_SUBTITLES.contains(&c.as_str()) {
                    push(&["-map", &format!("0:s:{i}")]);
                }
            }
            push(&self.codec_args());
            push(&["-map_chapters", "-1", "-f", self.format.extension()]);
        }
        a.push(out.as_os_str().to_owned());
        a
    }

    fn codec_args(&self) -> Vec<&'static str> {
        let mut v = match (self.format, self.fast) {
            (ClipFormat::Mp4, true) => vec!["-c:v", "copy", "-c:a", "copy"],
            (ClipFormat::Webm, true) => vec!["-c:v", "copy", "-c:a", "libopus", "-b:a", "128k"],
            (ClipFormat::Mp4, false) => vec![
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a",
                "160k",
            ],
            _ => vec![
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-row-mt",
                "1",
                "-b:v",
                "0",
                "-crf",
                "32",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "libopus",
                "-b:a",
                "128k",
            ],
        };
        match self.format {
            ClipFormat::Mp4 => v.extend(["-c:s", "mov_text", "-movflags", "+faststart"]),
            _ => v.extend(["-c:s", "webvtt"]),
        }
        if self.fast {
            v.extend(["-avoid_negative_ts", "make_zero"]);
        }
        v
    }

    /// Cuts the clip into `out` and waits for it.
    pub fn run(&self, out: &Path) -> Result<(), ExportError> {
        let mut running = self.start(out)?;
        loop {
            if let Some(r) = running.finished()? {
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts cutting into `out`; the cut is killed if the [`Running`] is dropped first.
    pub fn start(&self, out: &Path) -> Result<Running, ExportError> {
        let child = self.command(out).spawn().map_err(|e| ExportError::Ffmpeg {
            path: self.source.clone(),
            reason: format!("cannot run ffmpeg ({e}); install it: apt-get install ffmpeg"),
        })?;
        Ok(Running {
            child: Some(child),
            source: self.source.clone(),
        })
    }
}

/// A span longer than the limits allow.
fn check_length(req: &ClipRequest, limits: &Limits) -> Result<(), ExportError> {
    let seconds = req.end - req.start;
    if seconds > limits.max_seconds {
        return Err(ExportError::TooLong {
            seconds,
            limit: limits.max_seconds,
            what: "a clip",
        });
    }
    if req.format.is_preview() && seconds > limits.gif_seconds {
        return Err(ExportError::TooLong {
            seconds,
            limit: limits.gif_seconds,
            what: if req.format == ClipFormat::Gif {
                "a GIF preview (use mp4 or webm for longer clips)"
            } else {
                "a WebP preview (use mp4 or webm for longer clips)"
            },
        });
    }
    Ok(())
}

/// A stream copy keeps the source's codecs: refused where the container cannot hold them.
fn check_copy(source: &Path, format: ClipFormat, facts: &CutFacts) -> Result<(), ExportError> {
    match format {
        ClipFormat::Gif | ClipFormat::Webp => Err(ExportError::Copy(format!(
            "a {} preview is always encoded: leave out fast (--fast) for {}",
            format.extension().to_uppercase(),
            format.extension()
        ))),
        ClipFormat::Webm if !WEBM_VIDEO.contains(&facts.codec.as_str()) => Err(ExportError::Copy(format!(
            "{} holds {} video, which WebM cannot hold without re-encoding: use mp4 with fast, or leave out fast",
            source.display(),
            facts.codec
        ))),
        _ => Ok(()),
    }
}

/// A cut in progress. Dropping it kills the `ffmpeg` child (a client that went away).
pub struct Running {
    child: Option<Child>,
    source: PathBuf,
}

impl Running {
    /// `None` while the cut runs; its result once it ended.
    pub fn finished(&mut self) -> Result<Option<Result<(), ExportError>>, ExportError> {
        let Some(child) = self.child.as_mut() else {
            return Ok(Some(Ok(())));
        };
        let status = child.try_wait().map_err(|e| ExportError::Ffmpeg {
            path: self.source.clone(),
            reason: e.to_string(),
        })?;
        let Some(status) = status else { return Ok(None) };
        let mut child = self.child.take().expect("checked above");
        if status.success() {
            return Ok(Some(Ok(())));
        }
        let mut err = String::new();
        if let Some(mut s) = child.stderr.take() {
            use std::io::Read;
            let _ = s.read_to_string(&mut err);
        }
        Ok(Some(Err(ExportError::Ffmpeg {
            path: self.source.clone(),
            reason: format!("{status}: {}", err.trim()),
        })))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Seconds from `12.5`, `1:02.5` or `1:02:03.5`.
pub fn parse_time(s: &str) -> Result<f64, ExportError> {
    let bad = || {
        ExportError::Span(format!(
            "{s:?} is not a time: write seconds (12.5) or m:ss / h:mm:ss (1:02.5)"
        ))
    };
    let parts: Vec<&str> = s.trim().split(':').collect();
    if parts.len() > 3 {
        return Err(bad());
    }
    let mut secs = 0.0;
    for (i, p) in parts.iter().enumerate() {
        let v: f64 = p.parse().map_err(|_| bad())?;
        if !v.is_finite() || v < 0.0 || (i > 0 && v >= 60.0) {
            return Err(bad());
        }
        secs = secs * 60.0 + v;
    }
    Ok(secs)
}

/// A file name for a clip of `source` from `from` to `to` seconds: `beach_12.50-20.00.mp4`.
pub fn file_name(source: &Path, from: f64, to: f64, format: ClipFormat) -> String {
    let stem: String = source
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("clip")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}_{from:.2}-{to:.2}.{}", format.extension())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_seconds_or_clock() {
        assert_eq!(parse_time("12.5").unwrap(), 12.5);
        assert_eq!(parse_time("1:02.5").unwrap(), 62.5);
        assert_eq!(parse_time("1:00:03").unwrap(), 3603.0);
        for bad in ["", "x", "1:60", "-3", "1:2:3:4", "inf"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_names_are_plain() {
        let n = file_name(Path::new("/v/my holiday.mkv"), 1.0, 2.5, ClipFormat::Webm);
        assert_eq!(n, "my_holiday_1.00-2.50.webm");
    }
}
