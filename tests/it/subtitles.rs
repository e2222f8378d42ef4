//! Subtitles are searchable at their times: `.srt`, `.vtt` and `.ass` sidecar files and
//! subtitle streams muxed into the video, their markup stripped; the file name is
//! searchable too.

use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::cli::{index_json, search_json};
use crate::common::footage::{ffmpeg, render};

#[test]
fn sidecar_subtitles_are_found_by_a_word_at_their_time() {
    let tmp = tempfile::tempdir().unwrap();
    let video = tmp.path().join("harbour.mp4");
    VideoSpec::new(vec![
        (Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 3.0),
        (Scene::new(Colour::Green, Shape::Star, Colour::White), 5.0),
    ])
    .write(&video)
    .unwrap();
    std::fs::write(
        tmp.path().join("harbour.srt"),
        "1\n00:00:01,000 --> 00:00:02,500\nGood morning everyone\n\n2\n00:00:04,000 --> 00:00:06,500\nthe lighthouse keeper <i>waves</i>\n",
    )
    .unwrap();
    let data = tmp.path().join("data");
    let (ok, report) = index_json(&data, &[&video]);
    assert!(ok, "{report}");
    let res = search_json(&data, "lighthouse", 5);
    let hit = res["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"] != "visual")
        .unwrap_or_else(|| panic!("no text hit: {res}"));
    assert!(hit["path"].as_str().unwrap().ends_with("harbour.mp4"));
    assert!((hit["start"].as_f64().unwrap() - 4.0).abs() < 0.05, "{hit}");
    assert!(
        (hit["end"].as_f64().unwrap() - 6.5).abs() < 0.05 || hit["source"] == "both",
        "{hit}"
    );
    assert!(hit["text"].as_str().unwrap().contains("lighthouse"));
    // The other cue does not answer for this word.
    assert!(
        !res["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["text"].as_str().is_some_and(|t| t.contains("morning")))
    );
    // The file name is searchable too.
    let res = search_json(&data, "harbour", 3);
    assert!(
        res["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["source"] != "visual"),
        "{res}"
    );
}

#[test]
fn vtt_sidecar_cues_are_found_at_their_time() {
    let tmp = tempfile::tempdir().unwrap();
    let video = tmp.path().join("talk.mp4");
    render(
        &video,
        vec![(Scene::empty(Colour::Black), 4.0), (Scene::empty(Colour::White), 4.0)],
    );
    std::fs::write(
        tmp.path().join("talk.vtt"),
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nwelcome aboard\n\n00:05.500 --> 00:07.250\n<v Ann>the lighthouse is ahead</v>\n",
    )
    .unwrap();
    let data = tmp.path().join("data");
    let (ok, report) = index_json(&data, &[&video]);
    assert!(ok, "{report}");
    let res = search_json(&data, "lighthouse source:text", 5);
    let hit = &res["results"][0];
    assert_eq!(
        hit["text"].as_str().map(|t| t.contains("lighthouse")),
        Some(true),
        "{res}"
    );
    assert!(
        (hit["start"].as_f64().unwrap() - 5.5).abs() < 0.01 && (hit["end"].as_f64().unwrap() - 7.25).abs() < 0.01,
        "{hit}"
    );
    assert!(
        !hit["text"].as_str().unwrap().contains("<v"),
        "voice tags are stripped: {hit}"
    );
}

#[test]
fn ass_sidecars_and_muxed_subtitle_streams_are_found_at_their_times() {
    let tmp = tempfile::tempdir().unwrap();
    let talk = tmp.path().join("talk.mp4");
    render(
        &talk,
        vec![(Scene::empty(Colour::Black), 3.0), (Scene::empty(Colour::White), 3.0)],
    );
    std::fs::write(
        tmp.path().join("talk.ass"),
        "[Script Info]\nScriptType: v4.00+\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n\
         Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\i1}the ferry leaves{\\i0}\n",
    )
    .unwrap();
    let srt = tmp.path().join("inner.srt");
    std::fs::write(&srt, "1\n00:00:03,500 --> 00:00:05,000\nmind the lantern\n").unwrap();
    let muxed = tmp.path().join("muxed.mkv");
    ffmpeg(&[
        "-i",
        talk.to_str().unwrap(),
        "-i",
        srt.to_str().unwrap(),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-c:s",
        "srt",
        muxed.to_str().unwrap(),
    ]);
    let data = tmp.path().join("data-subs");
    let (ok, report) = index_json(&data, &[&talk, &muxed]);
    assert!(ok, "{report}");
    let ferry = search_json(&data, "ferry source:text", 3);
    let hit = &ferry["results"][0];
    assert!(
        hit["path"].as_str().unwrap().ends_with("talk.mp4") && (hit["start"].as_f64().unwrap() - 1.0).abs() < 0.01,
        "{ferry}"
    );
    assert_eq!(hit["text"], "the ferry leaves", "override tags are stripped: {hit}");
    let lantern = search_json(&data, "lantern source:text", 3);
    let hit = &lantern["results"][0];
    assert!(
        hit["path"].as_str().unwrap().ends_with("muxed.mkv") && (hit["start"].as_f64().unwrap() - 3.5).abs() < 0.01,
        "{lantern}"
    );
}
