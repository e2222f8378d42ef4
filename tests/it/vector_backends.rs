//! The vector backends (`--vectors hnsw|pgvector`): one backend suite run against each,
//! the same moments from both on the same library, and the bad input pgvector refuses.
//!
//! `the_feature_tests_pass_with_vectors_in_pgvector` runs this very test binary again,
//! filtered to the modules whose searches, tags, probes and model switch go through the
//! vector backend, with the store in PostgreSQL (`VIDSEEK_TEST_PG_URL`, as
//! `store_backends` does for the embedded HNSW) and `VIDSEEK_VECTORS=pgvector`, on a
//! server whose `template1` has `CREATE EXTENSION vector` (every database the tests make
//! inherits it). The same modules run with the embedded backend in the plain run and in
//! `store_backends`' PostgreSQL run.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::cli::{self, stderr, stdout};
use crate::common::models::tiny_model_dir;
use crate::common::pg::{PASSWORD, Pg};

/// Modules run again with the vectors in pgvector, and the tests among them that name
/// no `--data` folder (the data folder from `VIDSEEK_DATA`, never given a database:
/// pgvector refuses a SQLite library, as it should).
const SUITE: &[&str] = &["search::", "switch::", "library::", "subtitles::"];
const NO_DATABASE: &[&str] = &["library::vidseek_data_names_the_data_folder_in_place_of_the_option"];

fn in_child_run() -> bool {
    std::env::var_os("VIDSEEK_TEST_PG_URL").is_some()
}

#[test]
fn the_feature_tests_pass_with_vectors_in_pgvector() {
    if in_child_run() {
        return;
    }
    let server = Pg::start();
    server.sql("template1", "CREATE EXTENSION vector");
    let exe = std::env::current_exe().unwrap();
    let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}", server.port);
    let mut cmd = Command::new(&exe);
    cmd.args(SUITE).arg("--test-threads=2");
    for skip in NO_DATABASE {
        cmd.args(["--skip", skip]);
    }
    let out = cmd
        .env("VIDSEEK_TEST_PG_URL", &url)
        .env("VIDSEEK_VECTORS", "pgvector")
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let summary: Vec<&str> = text.lines().filter(|l| l.starts_with("test result:")).collect();
    eprintln!("{summary:?}");
    assert!(out.status.success(), "the backend suite failed on pgvector:\n{text}");
    let passed: usize = summary
        .iter()
        .filter_map(|l| l.split(';').next()?.split_whitespace().nth(3)?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 15, "only {passed} tests ran on pgvector: {summary:?}");
    // They really ran on pgvector: libraries that chose it, each with exactly one
    // vector table (a switch drops the old model's), whose rows are its frames.
    let dbs = server.sql("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 't%'");
    let mut on_pgvector = 0;
    for db in dbs.lines() {
        let Some(choice) = server.try_sql(db, "SELECT value FROM meta WHERE key = 'vectors'") else {
            continue;
        };
        if choice != "pgvector" {
            continue;
        }
        on_pgvector += 1;
        let tables = server.sql(
            db,
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'frame\\_vectors\\_%'",
        );
        let tables: Vec<&str> = tables.lines().collect();
        assert_eq!(tables.len(), 1, "{db}: {tables:?}");
        let (rows, frames) = (
            server.sql(db, &format!("SELECT count(*) FROM {}", tables[0])),
            server.sql(db, "SELECT count(*) FROM frames"),
        );
        assert_eq!(rows, frames, "{db}: the vector table and the frames disagree");
    }
    assert!(on_pgvector >= 10, "only {on_pgvector} libraries used pgvector");
}

/// Runs the binary on a library in `db` of `server` with its data folder `data`.
fn run(server: &Pg, db: &str, data: &Path, extra: &[&str], args: &[&str]) -> Output {
    let url = server.url(db);
    let model = tiny_model_dir();
    let mut full: Vec<&str> = vec!["--data", data.to_str().unwrap(), "--database", &url, "--device", "cpu"];
    full.extend_from_slice(extra);
    full.extend_from_slice(args);
    cli::vidseek(&full, &[("VIDSEEK_MODEL", model.to_str().unwrap())], None)
}

fn ok_json(o: Output) -> Value {
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)))
}

/// The moments of a search, as (file name, start in ms).
fn moments(v: &Value) -> Vec<(String, i64)> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let p = r["path"].as_str().unwrap();
            let name = Path::new(p).file_name().unwrap().to_string_lossy().into_owned();
            (name, (r["start"].as_f64().unwrap() * 1000.0).round() as i64)
        })
        .collect()
}

#[test]
fn pgvector_answers_the_same_moments_as_the_embedded_graph() {
    if in_child_run() {
        return;
    }
    let server = Pg::start();
    server.sql("postgres", "CREATE DATABASE graph");
    server.sql("postgres", "CREATE DATABASE shared");
    server.sql("shared", "CREATE EXTENSION vector");
    let tmp = tempfile::tempdir().unwrap();
    let footage = tmp.path().join("footage");
    // The demo's library: six videos of six scenes.
    let out = cli::vidseek(
        &[
            "sample-footage",
            footage.to_str().unwrap(),
            "--videos",
            "6",
            "--scenes",
            "6",
            "--seed",
            "7",
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let f = footage.to_str().unwrap();
    ok_json(run(&server, "graph", &a, &[], &["index", "--json", f]));
    ok_json(run(
        &server,
        "shared",
        &b,
        &["--vectors", "pgvector"],
        &["index", "--json", f],
    ));
    // The pgvector node holds no graph: nothing in its data folder's vectors/.
    assert!(!b.join("vectors").exists(), "a pgvector node wrote a vector index");
    assert!(a.join("vectors/vectors.json").exists());
    let table = server.sql(
        "shared",
        "SELECT tablename FROM pg_tables WHERE tablename LIKE 'frame\\_vectors\\_%'",
    );
    let rows = server.sql("shared", &format!("SELECT count(*) FROM {table}"));
    assert_eq!(rows, server.sql("shared", "SELECT count(*) FROM frames"));
    // At least a frame per scene (36).
    assert!(rows.parse::<usize>().unwrap() >= 36, "{rows}");

    // `vidseek eval` within 0.02 on every measure (a node that follows the library:
    // no --vectors given).
    let file = footage.join("eval.json");
    let ea = ok_json(run(
        &server,
        "graph",
        &a,
        &[],
        &["eval", file.to_str().unwrap(), "--json"],
    ));
    let eb = ok_json(run(
        &server,
        "shared",
        &b,
        &[],
        &["eval", file.to_str().unwrap(), "--json"],
    ));
    for key in ["recall_at_1", "recall_at_5", "recall_at_10", "map"] {
        let (x, y) = (ea[key].as_f64().unwrap(), eb[key].as_f64().unwrap());
        assert!((x - y).abs() <= 0.02, "{key}: embedded {x}, pgvector {y}");
    }
    assert!(ea["recall_at_1"].as_f64().unwrap() >= 0.8, "{ea}");

    // The same top-10 moments for the eval queries (and a filtered one).
    let truth: Vec<Value> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let mut queries: Vec<String> = truth.iter().map(|t| t["query"].as_str().unwrap().to_string()).collect();
    queries.sort();
    queries.dedup();
    queries.truncate(8);
    queries.push("a red circle path:sample-02".into());
    let (mut same, mut total) = (0, 0);
    for q in &queries {
        let ra = moments(&ok_json(run(
            &server,
            "graph",
            &a,
            &[],
            &["search", q, "-k", "10", "--min-score", "off", "--json"],
        )));
        let rb = moments(&ok_json(run(
            &server,
            "shared",
            &b,
            &[],
            &["search", q, "-k", "10", "--min-score", "off", "--json"],
        )));
        let set: HashSet<&(String, i64)> = ra.iter().collect();
        same += rb.iter().filter(|m| set.contains(m)).count();
        total += ra.len().max(rb.len());
        assert!(!rb.is_empty(), "{q}: pgvector found nothing");
    }
    let overlap = same as f64 / total.max(1) as f64;
    assert!(overlap >= 0.9, "top-10 overlap {overlap:.3} ({same} of {total})");

    // A node started with the other backend is refused, naming both and the fix.
    let o = run(
        &server,
        "shared",
        &b,
        &["--vectors", "hnsw"],
        &["search", "a red circle", "--json"],
    );
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("pgvector") && err.contains("leave out"),
        "{err}"
    );
}

#[test]
fn pgvector_is_refused_without_the_extension_or_a_database() {
    if in_child_run() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model_dir();
    let video = tmp.path().join("v.mp4");
    vidseek::VideoSpec::new(vec![(
        vidseek::Scene::new(vidseek::Colour::Red, vidseek::Shape::Circle, vidseek::Colour::Blue),
        2.0,
    )])
    .write(&video)
    .unwrap();
    // A data folder (SQLite): refused, nothing indexed.
    let data = tmp.path().join("folder");
    let o = cli::vidseek(
        &[
            "--data",
            data.to_str().unwrap(),
            "--device",
            "cpu",
            "--vectors",
            "pgvector",
            "index",
            video.to_str().unwrap(),
        ],
        &[("VIDSEEK_MODEL", model.to_str().unwrap())],
        None,
    );
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("--database"), "{err}");

    let server = Pg::start();
    let v = video.to_str().unwrap();
    // No extension in the database: the error names it and the fix; nothing is written.
    server.sql("postgres", "CREATE DATABASE bare");
    let d = tmp.path().join("bare");
    let o = run(&server, "bare", &d, &["--vectors", "pgvector"], &["index", v]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("`vector` extension") && err.contains("CREATE EXTENSION vector"),
        "{err}"
    );
    assert_eq!(server.sql("bare", "SELECT count(*) FROM videos"), "0");
    assert_eq!(
        server.sql("bare", "SELECT count(*) FROM meta WHERE key IN ('model', 'vectors')"),
        "0"
    );
    // A pgvector older than 0.8 (no filtered iterative scans): named with its version.
    server.sql("postgres", "CREATE DATABASE old");
    server.sql("old", "CREATE EXTENSION vector");
    server.sql(
        "old",
        "UPDATE pg_extension SET extversion = '0.7.4' WHERE extname = 'vector'",
    );
    let d = tmp.path().join("old");
    let o = run(&server, "old", &d, &["--vectors", "pgvector"], &["index", v]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("0.7.4") && err.contains("ALTER EXTENSION vector UPDATE"),
        "{err}"
    );
    assert_eq!(server.sql("old", "SELECT count(*) FROM videos"), "0");
    // Fixed (`ALTER EXTENSION vector UPDATE`): the same command indexes.
    server.sql(
        "old",
        "UPDATE pg_extension SET extversion = '0.8.6' WHERE extname = 'vector'",
    );
    let o = run(&server, "old", &d, &["--vectors", "pgvector"], &["index", v]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(server.sql("old", "SELECT count(*) FROM videos"), "1");
}
