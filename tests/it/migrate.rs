//! `vidseek migrate --to`: a library indexed in a data folder (SQLite) moves to a real
//! PostgreSQL server and back to a new folder with its vectors (no model is loaded by
//! the move), tags, saved probes, API keys and jobs; every copy answers the same
//! searches with the same moments and scores, and goes on growing (ids continue after
//! the copied ones). A copy into a library that is not empty, into the library itself,
//! or from a folder without a library is refused, naming it, and writes nothing.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::cli::{stderr, stdout, vidseek};
use crate::common::models::tiny_model_dir;
use crate::common::pg::{PASSWORD, Pg};

/// `vidseek --data DATA [--database URL] ARGS` with the tiny model on the CPU.
fn run(data: &Path, db: Option<&str>, args: &[&str]) -> std::process::Output {
    let model = tiny_model_dir();
    let mut full = vec!["--data", data.to_str().unwrap(), "--device", "cpu"];
    if let Some(url) = db {
        full.extend(["--database", url]);
    }
    full.extend_from_slice(args);
    vidseek(&full, &[("VIDSEEK_MODEL", model.to_str().unwrap())], None)
}

fn json_of(data: &Path, db: Option<&str>, args: &[&str]) -> Value {
    let out = run(data, db, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&out)))
}

/// `migrate --to TARGET` with a model path that does not exist (the move loads none):
/// (success, stdout, stdout + stderr).
fn migrate(data: &Path, db: Option<&str>, to: &str) -> (bool, String, String) {
    let mut full = vec!["--data", data.to_str().unwrap(), "--device", "cpu"];
    if let Some(url) = db {
        full.extend(["--database", url]);
    }
    full.extend(["migrate", "--to", to, "--json"]);
    let out = vidseek(&full, &[("VIDSEEK_MODEL", "/nonexistent/model")], None);
    (
        out.status.success(),
        stdout(&out),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

/// What a library answers, in a form two copies must agree on: searches (moments and
/// scores), a search through the saved probe, tags, videos and key names.
fn answers(data: &Path, db: Option<&str>) -> Value {
    let search = |q: &str| -> Value {
        let v = json_of(data, db, &["search", q, "--json", "-k", "6", "--min-score", "off"]);
        let hits: Vec<Value> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                json!([
                    r["path"],
                    r["start"],
                    r["end"],
                    (r["score"].as_f64().unwrap() * 1e4).round()
                ])
            })
            .collect();
        json!(hits)
    };
    let videos: Vec<Value> = json_of(data, db, &["videos", "--json"])["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| json!([v["id"], v["path"], v["frame_count"]]))
        .collect();
    let keys: Vec<Value> = json_of(data, db, &["keys", "list", "--json"])["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| json!([k["name"], k["scope"], k["prefix"]]))
        .collect();
    json!({
        "red circle": search("a red circle"),
        "green square": search("a green square"),
        "probe": search("tag:mine"),
        "tags": json_of(data, db, &["tags", "--json"]),
        "videos": videos,
        "keys": keys,
    })
}

fn footage(dir: &Path, scenes: &[(Colour, Shape, Colour)], first: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    scenes
        .iter()
        .enumerate()
        .map(|(i, (c, s, bg))| {
            let p = dir.join(format!("v{}.mp4", first + i));
            VideoSpec::new(vec![(Scene::new(*c, *s, *bg), 3.0 + (first + i) as f64)])
                .write(&p)
                .unwrap();
            p
        })
        .collect()
}

/// A folder library with two videos, a label vocabulary, a saved probe and a key.
fn folder_library(tmp: &Path) -> PathBuf {
    let lib = tmp.join("lib");
    let videos = footage(
        &lib,
        &[
            (Colour::Red, Shape::Circle, Colour::Blue),
            (Colour::Green, Shape::Square, Colour::Black),
        ],
        0,
    );
    let data = tmp.join("a");
    let out = run(&data, None, &["index", lib.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let labels = tmp.join("labels.txt");
    std::fs::write(&labels, "a red circle\na green square\na blue background\n").unwrap();
    let out = run(&data, None, &["labels", "set", labels.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hits = json_of(&data, None, &["search", "a red circle", "--json", "-k", "1"]);
    assert_eq!(
        hits["results"][0]["path"],
        json!(videos[0].display().to_string()),
        "{hits}"
    );
    let frame = hits["results"][0]["frame_id"].as_i64().unwrap().to_string();
    let out = run(
        &data,
        None,
        &[
            "search",
            "a red circle",
            "--like",
            &frame,
            "--save-tag",
            "mine",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&data, None, &["keys", "create", "reader", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    data
}

#[test]
fn a_library_moves_to_postgresql_and_back_with_its_vectors_tags_probes_and_keys() {
    let server = Pg::start();
    let tmp = tempfile::tempdir().unwrap();
    let a = folder_library(tmp.path());
    let before = answers(&a, None);
    assert!(!before["probe"].as_array().unwrap().is_empty(), "{before}");
    assert!(!before["tags"]["tags"].as_array().unwrap().is_empty(), "{before}");

    // Folder -> PostgreSQL, without a model: every table comes along.
    let url = server.database("moved");
    let (ok, out, msg) = migrate(&a, None, &url);
    assert!(ok, "{msg}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {msg}"));
    let rows = |t: &str| -> u64 {
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r[0] == t)
            .map(|r| r[1].as_u64().unwrap())
            .unwrap()
    };
    assert!(rows("frames") > 0 && rows("embeddings") == rows("frames"), "{report}");
    assert_eq!(rows("probes"), 1, "{report}");
    assert_eq!(rows("api_keys"), 1, "{report}");
    assert!(!msg.contains(PASSWORD), "the password leaked: {msg}");
    assert_eq!(
        server.sql("moved", "SELECT count(*) FROM embeddings"),
        rows("frames").to_string()
    );

    // A node on the server (its own empty data folder) answers as the folder did; the
    // folder itself is as it was.
    let node = tmp.path().join("node");
    assert_eq!(answers(&node, Some(&url)), before);
    assert_eq!(answers(&a, None), before);

    // The copy grows: a third video gets ids after the copied ones.
    let more = footage(
        &tmp.path().join("more"),
        &[(Colour::Yellow, Shape::Star, Colour::Purple)],
        2,
    );
    let out = run(&node, Some(&url), &["index", more[0].to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let grown = answers(&node, Some(&url));
    assert_eq!(grown["videos"].as_array().unwrap().len(), 3, "{grown}");

    // Back to a new folder: the same answers as the server, the new video included.
    let b = tmp.path().join("b");
    let (ok, _, msg) = migrate(&node, Some(&url), b.to_str().unwrap());
    assert!(ok, "{msg}");
    assert_eq!(answers(&b, None), grown);

    // Refused, writing nothing: into a library that is not empty, into itself, from a
    // folder without a library.
    let (ok, _, msg) = migrate(&a, None, &url);
    assert!(
        !ok && msg.contains("already holds a library (3 videos") && msg.contains("nothing was written"),
        "{msg}"
    );
    assert_eq!(server.sql("moved", "SELECT count(*) FROM videos"), "3");
    let (ok, _, msg) = migrate(&a, None, b.to_str().unwrap());
    assert!(!ok && msg.contains("already holds a library"), "{msg}");
    let (ok, _, msg) = migrate(&a, None, a.to_str().unwrap());
    assert!(!ok && msg.contains("--to names the library itself"), "{msg}");
    let empty = tmp.path().join("empty");
    let (ok, _, msg) = migrate(&empty, None, tmp.path().join("c").to_str().unwrap());
    assert!(!ok && msg.contains("there is no library at"), "{msg}");
    assert!(!empty.join("vidseek.db").exists() && !tmp.path().join("c").join("vidseek.db").exists());
}
