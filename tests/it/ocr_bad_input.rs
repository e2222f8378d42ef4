//! On-screen text with bad input, with the real PP-OCRv5 models: frames of noise and of
//! foliage-like texture (bounded work, no junk stored), vertical and rotated text (what
//! the engine reads of each), a database made before migration 0005 upgraded with its
//! texts intact, and indexing started through the API with OCR on (the phrase found,
//! also by a query word one character off).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use vidseek::{RgbImage, Rng};

use crate::common::cli::{stderr, vs, vs_json};
use crate::common::footage::ffmpeg;
use crate::common::server::Server;
use crate::ocr::{model_dir, ocr};
use crate::ocr_footage::read_ppm;
use crate::ocr_pull::clip_with;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

/// Uniform noise, every pixel its own colour.
fn noise(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = Rng::new(seed);
    let data = (0..w * h * 3).map(|_| (rng.next_u64() >> 56) as u8).collect();
    RgbImage::from_raw(w, h, data).unwrap()
}

/// Foliage-like texture: greens and browns in blobs of several sizes, with thin dark
/// stems (thousands of small high-contrast edges).
fn foliage(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = Rng::new(seed);
    let mut img = RgbImage::filled(w, h, [40, 70, 30]);
    for scale in [24u32, 10, 4] {
        for _ in 0..(w * h / (scale * scale)) {
            let (cx, cy) = ((rng.next_u64() % w as u64) as u32, (rng.next_u64() % h as u64) as u32);
            let g = (rng.next_u64() % 160) as u8;
            let colour = [g / 3, 60 + g, (g / 4) + 10];
            for y in cy.saturating_sub(scale / 2)..(cy + scale / 2).min(h) {
                for x in cx.saturating_sub(scale / 2)..(cx + scale / 2).min(w) {
                    let i = ((y * w + x) * 3) as usize;
                    img.data[i..i + 3].copy_from_slice(&colour);
                }
            }
        }
    }
    for _ in 0..400 {
        let (x, y0) = ((rng.next_u64() % w as u64) as u32, (rng.next_u64() % h as u64) as u32);
        for y in y0..(y0 + 20).min(h) {
            let i = ((y * w + x) * 3) as usize;
            img.data[i..i + 3].copy_from_slice(&[15, 20, 10]);
        }
    }
    img
}

fn twigs(w: u32, h: u32, seed: u64, n: usize) -> RgbImage {
    let mut rng = Rng::new(seed);
    let mut img = foliage(w, h, seed);
    for _ in 0..n {
        let (x0, y0) = ((rng.next_u64() % w as u64) as f32, (rng.next_u64() % h as u64) as f32);
        let a = (rng.next_u64() % 628) as f32 / 100.0;
        let len = 6.0 + (rng.next_u64() % 16) as f32;
        let c = if rng.next_u64() % 2 == 0 {
            [10u8, 15, 5]
        } else {
            [200, 220, 150]
        };
        for k in 0..len as i32 {
            let (x, y) = ((x0 + a.cos() * k as f32) as i64, (y0 + a.sin() * k as f32) as i64);
            if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                let i = ((y as u32 * w + x as u32) * 3) as usize;
                img.data[i..i + 3].copy_from_slice(&c);
            }
        }
    }
    img
}

/// A wall of tiny words: about 200 separate boxes, more than a frame may read.
fn wall(dir: &Path) -> RgbImage {
    let mut rng = Rng::new(9);
    let rows: Vec<String> = (0..26)
        .map(|_| {
            let words: Vec<String> = (0..8)
                .map(|_| (0..5).map(|_| (b'a' + (rng.next_u64() % 26) as u8) as char).collect())
                .collect();
            words.join("     ")
        })
        .collect();
    frame_sized(dir, "wall", &rows.join("\n"), 12, "854x480", "")
}

/// Encodes `img` as a 3-second clip and indexes it with OCR on: the texts stored.
fn index_still(dir: &Path, name: &str, img: &RgbImage) -> Vec<Value> {
    let ppm = dir.join(format!("{name}.ppm"));
    let mut bytes = format!("P6\n{} {}\n255\n", img.width, img.height).into_bytes();
    bytes.extend_from_slice(&img.data);
    std::fs::write(&ppm, bytes).unwrap();
    let clip = dir.join(format!("{name}.mp4"));
    let (i, o) = (ppm.to_str().unwrap(), clip.to_str().unwrap());
    let enc = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "12", o];
    ffmpeg(&[&["-loop", "1", "-i", i, "-t", "3", "-r", "25"][..], &enc[..]].concat());
    let data = dir.join(format!("data-{name}"));
    let model = model_dir();
    let out = vs(
        &data,
        &[
            "index",
            "--json",
            "--ocr",
            "on",
            "--ocr-model",
            model.to_str().unwrap(),
            o,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    vs_json(&data, &["text", o, "--json"])["texts"]
        .as_array()
        .unwrap()
        .clone()
}

/// Noise and foliage-like texture: the detector finds no text in them, nothing is
/// stored. A wall of about 200 tiny words: the frame's work stops at `max_lines` (64)
/// lines, the boxes with the best detector scores; no more are stored.
#[test]
fn noise_foliage_and_a_wall_of_tiny_words_are_read_with_bounded_work() {
    let max_lines = ocr().params().max_lines;
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("noise", noise(854, 480, 7), 0),
        ("foliage", twigs(854, 480, 4, 12_000), 0),
        ("wall", wall(tmp.path()), max_lines),
    ];
    for (name, img, want) in cases {
        let t0 = Instant::now();
        let lines = ocr().read(&img).unwrap();
        let took = t0.elapsed();
        let kept = lines.iter().filter(|l| l.confidence >= 0.75).count();
        eprintln!(
            "{name}: {} lines read in {took:.1?}, {kept} at confidence >= 0.75",
            lines.len()
        );
        assert_eq!(
            lines.len(),
            want,
            "{name}: {:?}",
            lines.iter().map(|l| &l.text).collect::<Vec<_>>()
        );
        let stored = index_still(tmp.path(), name, &img);
        eprintln!("{name}: {} texts stored", stored.len());
        assert!(stored.len() <= want, "{name}: {stored:?}");
    }
}

/// One frame with `text` drawn (from a file: it may have line breaks) at `size` px,
/// then `vf` applied.
fn frame_sized(dir: &Path, name: &str, text: &str, size: u32, geometry: &str, vf: &str) -> RgbImage {
    let file = dir.join(format!("{name}.txt"));
    std::fs::write(&file, text).unwrap();
    let draw = format!(
        "drawtext=fontfile={FONT}:textfile={}:fontsize={size}:fontcolor=white:x=(w-text_w)/2:y=(h-text_h)/2:\
         line_spacing=4",
        file.display()
    );
    let chain = if vf.is_empty() { draw } else { format!("{draw},{vf}") };
    let out = dir.join(format!("{name}.ppm"));
    let src = format!("color=c=0x203040:s={geometry}:d=1");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src,
        "-vf",
        &chain,
        "-frames:v",
        "1",
        out.to_str().unwrap(),
    ]);
    read_ppm(&out)
}

fn frame(dir: &Path, name: &str, text: &str, vf: &str) -> RgbImage {
    frame_sized(dir, name, text, 36, "640x640", vf)
}

/// Text turned a quarter either way or half a turn is read: a crop at least 1.5 times
/// taller than wide is turned a quarter counter-clockwise (as the reference does), and
/// the orientation classifier turns upside-down lines. Vertical text (letters stacked)
/// is not: its crop turned sideways reads as a low-confidence guess, which is dropped
/// (nothing stored).
#[test]
fn rotated_text_is_read_and_vertical_text_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let phrase = "SPRING SALE";
    for (name, vf) in [
        ("upright", ""),
        ("cw90", "transpose=clock"),
        ("ccw90", "transpose=cclock"),
        ("r180", "hflip,vflip"),
    ] {
        let lines = ocr().read(&frame(tmp.path(), name, phrase, vf)).unwrap();
        let read: Vec<_> = lines.iter().map(|l| (l.text.as_str(), l.confidence)).collect();
        eprintln!("{name}: {read:?}");
        assert!(
            read.len() == 1 && read[0].0 == phrase && read[0].1 >= 0.75,
            "{name}: {read:?}"
        );
    }
    let stacked = frame(tmp.path(), "stacked", "S\nA\nL\nE", "");
    let lines = ocr().read(&stacked).unwrap();
    let read: Vec<_> = lines.iter().map(|l| (l.text.as_str(), l.confidence)).collect();
    eprintln!("stacked: {read:?}");
    assert!(read.iter().all(|(t, c)| *t != "SALE" && *c < 0.75), "{read:?}");
    let stored = index_still(tmp.path(), "stacked", &stacked);
    assert!(stored.is_empty(), "{stored:?}");
}

/// Runs SQL on the store of `data` with the tests' Python (its sqlite3 module).
fn sql(data: &Path, script: &str) -> String {
    let code = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\n\
                out = []\n\
                for s in sys.argv[2].split(';\\n'):\n    out += [repr(r) for r in c.execute(s)]\n\
                c.commit()\nprint('\\n'.join(out))";
    let db = data.join("vidseek.db");
    let out = std::process::Command::new(crate::common::python())
        .args(["-c", code, db.to_str().unwrap(), script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_database_from_before_migration_0005_is_upgraded_with_its_texts_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let old = clip_with("OLD", tmp.path());
    let old_mp4 = tmp.path().join("old.mp4");
    std::fs::rename(&old, &old_mp4).unwrap();
    std::fs::write(
        tmp.path().join("old.srt"),
        "1\n00:00:01,000 --> 00:00:02,500\nthe lighthouse keeper waves\n",
    )
    .unwrap();
    let out = vs(&data, &["index", "--json", "--ocr", "off", old_mp4.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Back to the schema 0001-0004 made: the texts table without `quad` and without
    // the 'ocr' kind, and no record of 0005 (nor of 0008, speech, which rebuilds the
    // table again after it).
    sql(
        &data,
        "CREATE TABLE texts_old (id INTEGER PRIMARY KEY, video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE, \
         kind TEXT NOT NULL CHECK (kind IN ('subtitle', 'title', 'filename')), start REAL, \"end\" REAL, text TEXT NOT NULL);\n\
         INSERT INTO texts_old SELECT id, video_id, kind, start, \"end\", text FROM texts;\n\
         DROP TABLE texts;\n\
         ALTER TABLE texts_old RENAME TO texts;\n\
         CREATE INDEX texts_by_video ON texts(video_id);\n\
         DELETE FROM _sqlx_migrations WHERE version IN (5, 8)",
    );
    let before = sql(&data, "SELECT id, kind, start, \"end\", text FROM texts ORDER BY id");
    assert!(before.contains("the lighthouse keeper waves"), "{before}");
    let refused = std::process::Command::new(crate::common::python())
        .args([
            "-c",
            "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute(\"INSERT INTO texts(video_id, kind, text) VALUES (1, 'ocr', 'x')\")",
            data.join("vidseek.db").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "the old schema refuses on-screen text");
    // The current binary upgrades it: the old texts intact and searchable, and
    // on-screen text can now be stored.
    let hits = vs_json(&data, &["search", "lighthouse keeper", "--json"]);
    let found = hits["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["text"] == "the lighthouse keeper waves");
    assert!(found, "{hits}");
    assert_eq!(
        sql(&data, "SELECT id, kind, start, \"end\", text FROM texts ORDER BY id"),
        before
    );
    assert_eq!(
        sql(
            &data,
            "SELECT count(*) FROM _sqlx_migrations WHERE version = 5 AND success"
        )
        .trim(),
        "(1,)"
    );
    let new = clip_with("HARBOUR LIGHTS", tmp.path());
    let out = vs(
        &data,
        &[
            "index",
            "--json",
            "--ocr",
            "on",
            "--ocr-model",
            model_dir().to_str().unwrap(),
            new.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = vs_json(&data, &["text", new.to_str().unwrap(), "--json"]);
    assert!(listed["texts"].as_array().is_some_and(|t| !t.is_empty()), "{listed}");
    let after = sql(
        &data,
        "SELECT id, kind, start, \"end\", text FROM texts WHERE kind != 'ocr' ORDER BY id",
    );
    assert!(after.starts_with(before.trim_end()), "{before}\n---\n{after}");
}

#[test]
fn indexing_started_through_the_api_with_ocr_on_finds_a_planted_phrase() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let clip = clip_with("HARBOUR LIGHTS TONIGHT", tmp.path());
    std::fs::rename(&clip, lib.join("sign.mp4")).unwrap();
    let data = tmp.path().join("data");
    let model: PathBuf = model_dir();
    let extra = ["--ocr", "on", "--ocr-model", model.to_str().unwrap()];
    let server = Server::start(&data, &[&lib], &extra, None);
    let r = server.post_json("/api/index", &json!({"path": lib}));
    assert!(r.status < 300, "{}", r.text());
    let job = server.wait_job(r.json()["id"].as_i64().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    let hits = server.get("/api/search?q=harbour%20tonight%20source%3Aocr&k=5").json();
    let results: &Vec<Value> = hits["results"].as_array().unwrap();
    let hit = results
        .iter()
        .find(|r| {
            r["text"]
                .as_str()
                .is_some_and(|t| t.contains("HARBOUR") || t.contains("TONIGHT"))
        })
        .unwrap_or_else(|| panic!("{hits}"));
    assert!(hit["quad"].is_array(), "{hit}");
    // A query word one character off what is on screen ("tomight" for TONIGHT) still
    // finds it: only the misread-tolerant match can.
    let hits = server.get("/api/search?q=tomight%20source%3Aocr&k=5").json();
    let misread = hits["results"].as_array().unwrap();
    assert!(
        misread
            .iter()
            .any(|r| r["text"].as_str().is_some_and(|t| t.contains("TONIGHT"))),
        "{hits}"
    );
}
