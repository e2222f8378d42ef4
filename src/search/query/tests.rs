//! The query language's tests: parsing, filters, sequences, errors, values and globs.

use super::filters::{PathPattern, glob_match};
use super::time::{parse_date, parse_duration};
use super::*;

fn term(text: &str, phrase: bool, weight: Option<f32>) -> Term {
    Term {
        text: text.into(),
        phrase,
        weight,
    }
}

#[test]
fn words_phrases_negatives_and_weights() {
    let q = parse(r#"a dog "on the beach"^2 -rain -"a cat" sunset^0.5"#).unwrap();
    let c = q.clause();
    assert_eq!(
        c.terms,
        vec![
            term("a", false, None),
            term("dog", false, None),
            term("on the beach", true, Some(2.0)),
            term("sunset", false, Some(0.5))
        ]
    );
    assert_eq!(c.negatives, vec![term("rain", false, None), term("a cat", true, None)]);
    assert_eq!(
        c.visual_parts(),
        vec![
            ("a dog".into(), 1.0),
            ("on the beach".into(), 2.0),
            ("sunset".into(), 0.5)
        ]
    );
    let lex = c.lexical();
    assert_eq!(lex.words, vec![("dog".into(), 1.0), ("sunset".into(), 0.5)]);
    assert_eq!(lex.phrases, vec!["on the beach".to_string()]);
    assert_eq!(lex.not, vec!["rain".to_string(), "a cat".to_string()]);
}

#[test]
fn an_unweighted_query_is_one_sentence() {
    let q = parse("  a red circle  on a blue background ").unwrap();
    assert_eq!(
        q.clause().visual_parts(),
        vec![("a red circle on a blue background".into(), 1.0)]
    );
    assert!(q.filters.is_empty());
}

#[test]
fn filters() {
    let q = parse(r#"a star path:holiday path:"*/2024/*.MP4" ext:.MP4,webm -ext:gif after:2024-05 before:2024-06-01T12:30 longer:1m30s shorter:1:02:03 video:3,4 -video:5 source:visual"#).unwrap();
    let f = &q.filters;
    assert_eq!(
        f.paths,
        vec![
            PathPattern::Contains("holiday".into()),
            PathPattern::Glob("*/2024/*.MP4".into())
        ]
    );
    assert_eq!(f.exts, vec!["mp4".to_string(), "webm".to_string()]);
    assert_eq!(f.not_exts, vec!["gif".to_string()]);
    assert_eq!(f.after, Some(1_714_521_600)); // 2024-05-01T00:00Z
    assert_eq!(f.before, Some(1_717_245_000)); // 2024-06-01T12:30Z
    assert_eq!((f.longer, f.shorter), (Some(90.0), Some(3723.0)));
    assert_eq!((f.videos.clone(), f.not_videos.clone()), (vec![3, 4], vec![5]));
    assert_eq!(f.source, Some(SourceFilter::Visual));
    assert_eq!(
        q.clause().terms,
        vec![term("a", false, None), term("star", false, None)]
    );
    fn v(path: &str, id: i64, mtime_s: i64, d: f64) -> VideoFacts<'_> {
        VideoFacts {
            id,
            path,
            mtime_ns: mtime_s * 1_000_000_000,
            duration: Some(d),
        }
    }
    assert!(f.accepts(v("/v/holiday/2024/a.mp4", 3, 1_715_000_000, 100.0)));
    assert!(
        !f.accepts(v("/v/holiday/2024/a.mp4", 5, 1_715_000_000, 100.0)),
        "excluded id"
    );
    assert!(
        !f.accepts(v("/v/holiday/2024/a.mp4", 3, 1_714_000_000, 100.0)),
        "too early"
    );
    assert!(
        !f.accepts(v("/v/holiday/2024/a.mp4", 3, 1_715_000_000, 60.0)),
        "too short"
    );
    assert!(
        !f.accepts(v("/v/holiday/2024/a.gif", 3, 1_715_000_000, 100.0)),
        "excluded extension"
    );
    assert!(!f.accepts(v("/v/work/a.mp4", 4, 1_715_000_000, 100.0)), "path");
}

#[test]
fn sequences() {
    let q = parse("a red circle >> a blue star >>30s a green square").unwrap();
    assert_eq!(q.steps.len(), 3);
    assert_eq!(q.gaps, vec![DEFAULT_GAP, 30.0]);
    assert_eq!(q.steps[1].sentence(), "a blue star");
    assert!(parse(">> a star").is_err());
    assert!(parse("a star >>").is_err());
    assert!(parse("a star >>xx a circle").is_err());
}

#[test]
fn errors_name_the_position_and_the_forms() {
    let e = parse(r#"a red "circle"#).unwrap_err();
    assert_eq!(e.pos, 7);
    assert!(e.message.contains("never closed"), "{e}");
    let e = parse("a star colour:red").unwrap_err();
    assert_eq!(e.pos, 8);
    assert!(
        e.message.contains("unknown filter `colour:`") && e.message.contains("path:"),
        "{e}"
    );
    let e = parse("after:2024-13").unwrap_err();
    assert_eq!(e.pos, 7);
    assert!(e.message.contains("YYYY-MM-DD"), "{e}");
    let e = parse("x longer:soon").unwrap_err();
    assert!(e.message.contains("1h") && e.pos == 10, "{e}");
    assert!(parse("x ^0").is_err() || parse("x^0").is_err());
    assert!(parse("beach^11").is_err());
    assert!(parse("x -after:2024").is_err());
    assert!(parse("x path:").is_err());
    assert!(parse("x source:audio").is_err());
    // Quoted, a colon is just text; a time of day is a word.
    assert_eq!(parse(r#""note: red" 12:30"#).unwrap().clause().terms.len(), 2);
}

#[test]
fn stop_words() {
    assert!(is_stop_word("a") && is_stop_word("The") && is_stop_word("on the"));
    assert!(!is_stop_word("beach") && !is_stop_word("a beach"));
    let q = parse("a the of").unwrap();
    assert!(q.clause().lexical().is_empty());
    assert!(q.has_terms());
}

#[test]
fn durations_dates_and_globs() {
    assert_eq!(parse_duration("90"), Some(90.0));
    assert_eq!(parse_duration("2m30s"), Some(150.0));
    assert_eq!(parse_duration("1.5h"), Some(5400.0));
    assert_eq!(parse_duration("1:30"), Some(90.0));
    assert_eq!(parse_duration("1:60"), None);
    assert_eq!(parse_duration("m"), None);
    assert_eq!(parse_date("1970"), Some(0));
    assert_eq!(parse_date("2000-03-01"), Some(951_868_800));
    assert_eq!(parse_date("2023-02-29"), None);
    assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800));
    assert!(glob_match(b"*/holiday/*.mp4", b"/videos/holiday/beach.MP4"));
    assert!(!glob_match(b"*/holiday/*.mp4", b"/videos/work/beach.mp4"));
    assert!(glob_match(b"*clip[0-9].webm", b"/a/clip7.webm"));
    assert!(!glob_match(b"*clip[!0-9].webm", b"/a/clip7.webm"));
    assert!(glob_match(b"?.mp4", b"a.mp4"));
    assert!(
        PathPattern::new("holiday/*.webm").matches("/tmp/lib/holiday/beach.webm"),
        "relative to any folder"
    );
    assert!(
        !PathPattern::new("/holiday/*.webm").matches("/tmp/lib/holiday/beach.webm"),
        "rooted"
    );
    assert!(
        !PathPattern::new("oliday/*.webm").matches("/tmp/lib/holiday/beach.webm"),
        "tails start at a folder"
    );
}
