//! Subtitle cues with their times, from embedded text subtitle streams and from sidecar
//! files (`.srt`, `.vtt`, `.ass` next to the video), both read by FFmpeg's demuxers and
//! text subtitle decoders.

use std::path::{Path, PathBuf};

use ffmpeg::media::Type;
use ffmpeg_next as ffmpeg;

use super::{DecodeError, init};

/// One subtitle line and when it is shown (seconds).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// Cues of every text subtitle stream in `path` (bitmap subtitles are skipped).
pub fn embedded_subtitles(path: &Path) -> Result<Vec<Cue>, DecodeError> {
    read_cues(path, false)
}

/// Cues of a subtitle file (`.srt`, `.vtt`, `.ass`, ...).
pub fn subtitle_file(path: &Path) -> Result<Vec<Cue>, DecodeError> {
    read_cues(path, true)
}

/// Subtitle files next to `video`: `name.srt`, `name.vtt`, `name.ass` and language
/// variants such as `name.en.srt`.
pub fn sidecar_files(video: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(stem)) = (video.parent(), video.file_stem().and_then(|s| s.to_str())) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let ext_ok = p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "srt" | "vtt" | "ass" | "ssa"));
            let rest = name.strip_prefix(stem);
            ext_ok && rest.is_some_and(|r| r.starts_with('.'))
        })
        .collect();
    out.sort();
    out
}

fn read_cues(path: &Path, whole_file: bool) -> Result<Vec<Cue>, DecodeError> {
    init();
    let mut input = ffmpeg::format::input(path).map_err(|e| DecodeError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut decoders = Vec::new();
    for s in input.streams() {
        if s.parameters().medium() != Type::Subtitle {
            continue;
        }
        let Ok(ctx) = ffmpeg::codec::context::Context::from_parameters(s.parameters()) else {
            continue;
        };
        let Ok(dec) = ctx.decoder().subtitle() else {
            continue;
        };
        let tb = s.time_base();
        decoders.push((s.index(), dec, tb.numerator() as f64 / tb.denominator().max(1) as f64));
    }
    if decoders.is_empty() && whole_file {
        return Err(DecodeError::Format {
            path: path.to_path_buf(),
            reason: "no subtitle stream".into(),
        });
    }
    let mut cues = Vec::new();
    for (stream, packet) in input.packets() {
        let Some((_, dec, tb)) = decoders.iter_mut().find(|(i, _, _)| *i == stream.index()) else {
            continue;
        };
        let mut sub = ffmpeg::Subtitle::new();
        if !matches!(dec.decode(&packet, &mut sub), Ok(true)) {
            continue;
        }
        let Some(pts) = packet.pts() else { continue };
        let base = pts as f64 * *tb;
        let start = base + sub.start() as f64 / 1000.0;
        let end = if sub.end() > sub.start() && sub.end() != u32::MAX {
            base + sub.end() as f64 / 1000.0
        } else {
            base + packet.duration() as f64 * *tb
        };
        let text: Vec<String> = sub
            .rects()
            .filter_map(|r| match r {
                ffmpeg::codec::subtitle::Rect::Text(t) => Some(t.get().to_string()),
                ffmpeg::codec::subtitle::Rect::Ass(a) => Some(ass_text(a.get())),
                _ => None,
            })
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|t| !t.is_empty())
            .collect();
        if !text.is_empty() {
            cues.push(Cue {
                start,
                end: end.max(start),
                text: text.join(" "),
            });
        }
    }
    cues.sort_by(|a, b| a.start.total_cmp(&b.start));
    Ok(cues)
}

/// The text of an ASS dialogue event ("ReadOrder,Layer,Style,Name,MarginL,MarginR,
/// MarginV,Effect,Text", as FFmpeg's text decoders produce), without override tags.
fn ass_text(event: &str) -> String {
    let body = event.strip_prefix("Dialogue:").unwrap_or(event);
    let text = body.splitn(9, ',').nth(8).unwrap_or(body);
    let mut out = String::with_capacity(text.len());
    let mut depth = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            '\\' if depth == 0 && matches!(chars.peek(), Some('N') | Some('n') | Some('h')) => {
                chars.next();
                out.push(' ');
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ass_events_lose_their_fields_and_tags() {
        assert_eq!(
            ass_text("0,0,Default,,0,0,0,,Hello {\\i1}world{\\i0}\\Nnext"),
            "Hello world next"
        );
        assert_eq!(ass_text("plain, with comma"), "plain, with comma");
    }
}
