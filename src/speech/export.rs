//! A transcript written out as subtitles: SubRip (`.srt`) and WebVTT (`.vtt`, what a
//! browser's `<track>` reads), from timed lines.

/// A time as SRT (`00:01:02,345`) or WebVTT (`00:01:02.345`) writes it.
pub fn cue_time(t: f64, sep: char) -> String {
    let ms = (t.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// One line of text a cue may not break (a blank line ends a cue; `-->` starts one).
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("-->", "->")
}

/// Timed lines `(start, end, text)` as SubRip.
pub fn srt(lines: &[(f64, f64, &str)]) -> String {
    let mut out = String::new();
    for (k, (s, e, t)) in lines.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            k + 1,
            cue_time(*s, ','),
            cue_time(*e, ','),
            one_line(t)
        ));
    }
    out
}

/// Timed lines `(start, end, text)` as WebVTT.
pub fn vtt(lines: &[(f64, f64, &str)]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for (s, e, t) in lines {
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            cue_time(*s, '.'),
            cue_time(*e, '.'),
            one_line(t)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_are_written_as_srt_and_webvtt() {
        let lines = [(1.5, 3661.25, "hello\n\nthere --> here")];
        assert_eq!(srt(&lines), "1\n00:00:01,500 --> 01:01:01,250\nhello there -> here\n\n");
        assert_eq!(
            vtt(&lines),
            "WEBVTT\n\n00:00:01.500 --> 01:01:01.250\nhello there -> here\n\n"
        );
    }
}
