//! Moments as a timeline for editing tools: an OpenTimelineIO file (`.otio`, JSON:
//! `Timeline.1` > `Stack.1` > one video `Track.1` of `Clip.2`s with `ExternalReference`
//! media) and a CMX 3600 EDL. One clip per moment, in the order given (rank order),
//! cut end to end on the record side.
//!
//! Source times are the file's own: the video stream's start time plus the moment's
//! time (vidseek counts from the stream's start), in frames of the stream's rate. The
//! EDL has one rate, the first clip's: drop-frame timecode (`;`) at 29.97 and 59.94.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::ExportError;
use crate::decode;

/// A moment to put on the timeline (a search result or a picked moment).
#[derive(Clone, Debug)]
pub struct Moment {
    pub video_id: i64,
    pub path: String,
    /// Seconds from the video stream's start.
    pub start: f64,
    pub end: f64,
    pub score: f32,
}

/// A moment with the facts of its file.
#[derive(Clone, Debug)]
pub struct TimelineClip {
    pub moment: Moment,
    /// The absolute path of the file.
    pub path: PathBuf,
    /// The video stream's rate as a fraction.
    pub rate: (i32, i32),
    /// Seconds: the video stream's start time.
    pub stream_start: f64,
    /// Seconds: the file's length.
    pub duration: f64,
}

impl TimelineClip {
    fn fps(&self) -> f64 {
        self.rate.0 as f64 / self.rate.1.max(1) as f64
    }
    /// Source in and out, in frames at `fps` from the file's own time zero.
    fn source_frames(&self, fps: f64) -> (i64, i64) {
        let i = ((self.stream_start + self.moment.start) * fps).round() as i64;
        let o = ((self.stream_start + self.moment.end) * fps).round() as i64;
        (i, o.max(i + 1))
    }
}

/// Reads each file's rate and start time once (files are probed, not decoded).
pub fn timeline_clips(moments: &[Moment]) -> Result<Vec<TimelineClip>, ExportError> {
    let mut facts: HashMap<&str, decode::CutFacts> = HashMap::new();
    let mut out = Vec::with_capacity(moments.len());
    for m in moments {
        if !facts.contains_key(m.path.as_str()) {
            facts.insert(&m.path, decode::cut_facts(Path::new(&m.path))?);
        }
        let f = &facts[m.path.as_str()];
        out.push(TimelineClip {
            moment: m.clone(),
            path: std::path::absolute(&m.path).unwrap_or_else(|_| PathBuf::from(&m.path)),
            rate: f.rate,
            stream_start: f.stream_start,
            duration: f.duration,
        });
    }
    Ok(out)
}

fn rational_time(value: i64, rate: f64) -> Value {
    json!({"OTIO_SCHEMA": "RationalTime.1", "rate": rate, "value": value as f64})
}

fn time_range(start: i64, duration: i64, rate: f64) -> Value {
    json!({"OTIO_SCHEMA": "TimeRange.1", "start_time": rational_time(start, rate),
           "duration": rational_time(duration, rate)})
}

/// `file://` URL of an absolute path (bytes outside the unreserved set percent-encoded).
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            let _ = write!(url, "%{b:02X}");
        }
    }
    url
}

/// `12.50s`.
fn secs(t: f64) -> String {
    format!("{t:.2}s")
}

fn otio_clip(c: &TimelineClip, rank: usize) -> Value {
    let fps = c.fps();
    let (i, o) = c.source_frames(fps);
    let first = (c.stream_start * fps).round() as i64;
    let available = ((c.duration * fps).round() as i64).max(o - first);
    let name = format!(
        "{} {}-{}",
        c.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        secs(c.moment.start),
        secs(c.moment.end)
    );
    json!({
        "OTIO_SCHEMA": "Clip.2",
        "name": name,
        "metadata": {"vidseek": {"rank": rank, "video_id": c.moment.video_id, "score": c.moment.score,
                                 "start": c.moment.start, "end": c.moment.end}},
        "source_range": time_range(i, o - i, fps),
        "effects": [], "markers": [], "enabled": true,
        "media_references": {"DEFAULT_MEDIA": {
            "OTIO_SCHEMA": "ExternalReference.1", "name": "", "metadata": {},
            "target_url": file_url(&c.path),
            "available_range": time_range(first, available, fps),
            "available_image_bounds": null,
        }},
        "active_media_reference_key": "DEFAULT_MEDIA",
    })
}

/// An OpenTimelineIO timeline (`.otio` JSON) named `name`, one clip per moment.
pub fn otio(name: &str, clips: &[TimelineClip]) -> Value {
    let children: Vec<Value> = clips.iter().enumerate().map(|(k, c)| otio_clip(c, k + 1)).collect();
    let track = json!({"OTIO_SCHEMA": "Track.1", "name": "V1", "kind": "Video", "metadata": {},
                       "source_range": null, "effects": [], "markers": [], "enabled": true,
                       "children": children});
    json!({
        "OTIO_SCHEMA": "Timeline.1",
        "name": name,
        "metadata": {"vidseek": {"moments": clips.len()}},
        "global_start_time": null,
        "tracks": {"OTIO_SCHEMA": "Stack.1", "name": "tracks", "metadata": {}, "source_range": null,
                   "effects": [], "markers": [], "enabled": true, "children": [track]},
    })
}

/// Whether a rate is NTSC's 29.97 or 59.94, counted in drop-frame timecode.
fn is_drop_frame(rate: (i32, i32)) -> bool {
    rate.1 == 1001 && (rate.0 == 30000 || rate.0 == 60000)
}

/// SMPTE timecode of frame `n` at the nominal rate `base` (30 for 29.97), drop-frame
/// when `drop` (frame numbers 0 and 1 of each minute skipped, except every tenth).
fn timecode(n: i64, base: i64, drop: bool) -> String {
    let mut n = n.max(0);
    if drop {
        let skip = base / 15; // 2 at 29.97, 4 at 59.94
        let per_10min = base * 600 - skip * 9;
        let per_min = base * 60 - skip;
        let (d, m) = (n / per_10min, n % per_10min);
        n += skip * 9 * d + if m > skip { skip * ((m - skip) / per_min) } else { 0 };
    }
    let (ff, s) = (n % base, n / base);
    let sep = if drop { ';' } else { ':' };
    format!("{:02}:{:02}:{:02}{sep}{:02}", s / 3600, s / 60 % 60, s % 60, ff)
}

/// A CMX 3600 EDL titled `title`: one video event per moment, at the first clip's rate,
/// recorded end to end from 01:00:00:00.
pub fn edl(title: &str, clips: &[TimelineClip]) -> String {
    let rate = clips.first().map_or((25, 1), |c| c.rate);
    let fps = rate.0 as f64 / rate.1.max(1) as f64;
    let base = fps.round().max(1.0) as i64;
    let drop = is_drop_frame(rate);
    let title: String = title.chars().filter(|c| !c.is_control()).take(70).collect();
    let mut out = format!(
        "TITLE: {title}\nFCM: {}\n\n",
        if drop { "DROP FRAME" } else { "NON-DROP FRAME" }
    );
    // One hour of timecode, in frames of the (drop-frame) count.
    let mut record = if drop {
        base * 3600 - (base / 15) * 54
    } else {
        base * 3600
    };
    for (k, c) in clips.iter().enumerate() {
        let (i, o) = c.source_frames(fps);
        let tc = |n| timecode(n, base, drop);
        let _ = writeln!(
            out,
            "{:03}  AX       V     C        {} {} {} {}",
            k + 1,
            tc(i),
            tc(o),
            tc(record),
            tc(record + o - i)
        );
        let name = c.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        let _ = writeln!(out, "* FROM CLIP NAME: {name}");
        let _ = writeln!(out, "* FROM CLIP: {}\n", c.path.display());
        record += o - i;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_frame_timecode_skips_two_frames_a_minute_but_every_tenth() {
        assert_eq!(timecode(1799, 30, true), "00:00:59;29");
        assert_eq!(timecode(1800, 30, true), "00:01:00;02");
        assert_eq!(timecode(17982, 30, true), "00:10:00;00");
        assert_eq!(timecode(107892, 30, true), "01:00:00;00");
        assert_eq!(timecode(90, 25, false), "00:00:03:15");
    }

    #[test]
    fn urls_escape_what_is_not_plain() {
        assert_eq!(file_url(Path::new("/a b/ü.mp4")), "file:///a%20b/%C3%BC.mp4");
    }
}
