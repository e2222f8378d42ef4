//! The library's store on PostgreSQL (`--database URL`) beside the embedded SQLite:
//! the same tests pass on both, a PostgreSQL server that cannot be used is refused with
//! the server and the fix named (never the password) before anything is written, and
//! several machines share one library.
//!
//! `the_feature_tests_pass_with_the_store_in_postgresql` runs this very test binary
//! again, filtered to the modules that exercise the store (indexing, re-indexing and
//! removal, the query language, subtitles, tags and probes, eval, the API, jobs, model
//! switch, the browser UI), with `VIDSEEK_TEST_PG_URL` naming a real server: each data
//! folder those tests make gets its own database there (common::pg::database_for).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::json;
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::cli::{self, stderr, stdout, vidseek};
use crate::common::models::{replicas, tiny_model_dir};
use crate::common::pg::{PASSWORD, Pg};
use crate::common::server::{Server, request};

/// Test modules run again with the store in PostgreSQL (the filters also take in
/// `openapi::` and `ocr_search::`), and the tests among them that are about the SQLite
/// file itself (skipped there: a PostgreSQL library has no file).
const SUITE: &[&str] = &[
    "library::",
    "search::",
    "subtitles::",
    "jobs::",
    "keys::",
    "api::",
    "switch::",
    "transfer::",
    "browser::",
];
const SQLITE_ONLY: &[&str] = &[];

fn in_child_run() -> bool {
    std::env::var_os("VIDSEEK_TEST_PG_URL").is_some()
}

#[test]
fn the_feature_tests_pass_with_the_store_in_postgresql() {
    if in_child_run() {
        return;
    }
    let server = Pg::start();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(&exe);
    cmd.args(SUITE).arg("--test-threads=2");
    for skip in SQLITE_ONLY {
        cmd.args(["--skip", skip]);
    }
    let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}", server.port);
    let out = cmd.env("VIDSEEK_TEST_PG_URL", &url).output().unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let summary: Vec<&str> = text.lines().filter(|l| l.starts_with("test result:")).collect();
    eprintln!("{summary:?}");
    assert!(out.status.success(), "the store tests failed on PostgreSQL:\n{text}");
    // The run really ran the modules against the server: one database per data folder.
    let dbs: usize = server
        .sql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 't%'")
        .parse()
        .unwrap();
    assert!(dbs >= 20, "only {dbs} databases were made on the server: {summary:?}");
    let passed: usize = summary
        .iter()
        .filter_map(|l| l.split(';').next()?.split_whitespace().nth(3)?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 30, "only {passed} tests ran on PostgreSQL: {summary:?}");
}

/// One 3 s video of a red circle on blue in `dir`.
fn one_video(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("circle.mp4");
    VideoSpec::new(vec![(Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 3.0)])
        .write(&p)
        .unwrap();
    p
}

/// `vidseek --database URL ARGS` against `data`.
fn db_run(data: &Path, url: &str, args: &[&str]) -> std::process::Output {
    let model = tiny_model_dir();
    let mut full = vec!["--data", data.to_str().unwrap(), "--device", "cpu", "--database", url];
    full.extend_from_slice(args);
    vidseek(&full, &[("VIDSEEK_MODEL", model.to_str().unwrap())], None)
}

/// [`db_run`]: (success, stdout + stderr).
fn with_db(data: &Path, url: &str, args: &[&str]) -> (bool, String) {
    let out = db_run(data, url, args);
    (out.status.success(), format!("{}{}", stdout(&out), stderr(&out)))
}

#[test]
fn a_server_that_cannot_be_used_is_refused_naming_it_and_the_fix_before_anything_is_written() {
    if in_child_run() {
        return;
    }
    let server = Pg::start();
    let tmp = tempfile::tempdir().unwrap();
    let video = one_video(&tmp.path().join("lib"));
    let v = video.to_str().unwrap();
    let data = tmp.path().join("data");
    let port = server.port;

    // Nothing listens on this port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, msg) = with_db(
        &data,
        &format!("postgres://postgres:{PASSWORD}@127.0.0.1:{dead}/lib"),
        &["index", v],
    );
    assert!(
        !ok && msg.contains(&format!("127.0.0.1:{dead}/lib")) && msg.contains("check that the server runs"),
        "{msg}"
    );
    assert!(!msg.contains(PASSWORD), "the password leaked: {msg}");

    // A refused password: the role is named, the wrong password is not.
    let (ok, msg) = with_db(
        &data,
        &format!("postgres://postgres:wrong-secret@127.0.0.1:{port}/postgres"),
        &["videos"],
    );
    assert!(!ok && msg.contains("refused the login of role \"postgres\""), "{msg}");
    assert!(!msg.contains("wrong-secret"), "the password leaked: {msg}");

    // A database that does not exist.
    let (ok, msg) = with_db(&data, &server.url("nosuchlib"), &["index", v]);
    assert!(!ok && msg.contains("\"nosuchlib\" does not exist: create it"), "{msg}");

    // A role that may log in but not create tables.
    server.database("locked");
    server.sql("postgres", "CREATE ROLE reader LOGIN PASSWORD 'reader-pw'");
    let (ok, msg) = with_db(
        &data,
        &format!("postgres://reader:reader-pw@127.0.0.1:{port}/locked"),
        &["index", v],
    );
    assert!(
        !ok && msg.contains("may not create vidseek's tables") && msg.contains("GRANT CREATE"),
        "{msg}"
    );
    assert!(!msg.contains("reader-pw"), "the password leaked: {msg}");

    // Not a PostgreSQL URL: refused, the folder's SQLite library untouched.
    let (ok, msg) = with_db(&data, "mysql://somewhere/lib", &["index", v]);
    assert!(!ok && msg.contains("--database takes a PostgreSQL URL"), "{msg}");

    // None of these wrote anything: no SQLite database appeared in the data folder and
    // the refused database holds no vidseek table.
    assert!(
        !data.join("vidseek.db").exists(),
        "a SQLite database was made in the data folder"
    );
    let tables = server.sql("locked", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
    assert_eq!(tables, "0");

    // A schema newer than this binary (a later vidseek migrated the library).
    let url = server.database("newer");
    let (ok, msg) = with_db(&data, &url, &["index", v, "--json"]);
    assert!(ok, "{msg}");
    server.sql(
        "newer",
        "INSERT INTO _sqlx_migrations(version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', true, '\\x00', 0)",
    );
    let (ok, msg) = with_db(&tmp.path().join("data2"), &url, &["videos"]);
    assert!(!ok && msg.contains("schema is newer than this vidseek"), "{msg}");
}

#[test]
fn a_library_in_postgresql_is_indexed_searched_and_read_from_another_data_folder() {
    if in_child_run() {
        return;
    }
    let server = Pg::start();
    let url = server.database("shared");
    let tmp = tempfile::tempdir().unwrap();
    let video = one_video(&tmp.path().join("lib"));
    let (a, b) = (tmp.path().join("node-a"), tmp.path().join("node-b"));
    let (ok, msg) = with_db(&a, &url, &["index", video.to_str().unwrap(), "--json"]);
    assert!(ok, "{msg}");
    // Another machine's data folder (empty) searches the same library: its indexes
    // are derived from the shared store on open.
    let out = db_run(&b, &url, &["search", "a red circle", "--json", "-k", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["results"][0]["path"], video.display().to_string(), "{v}");
    // The store is the server's: neither folder holds a SQLite database.
    assert!(!a.join("vidseek.db").exists() && !b.join("vidseek.db").exists());
    let frames: i64 = server.sql("shared", "SELECT count(*) FROM frames").parse().unwrap();
    assert!(frames > 0);
    // The folder's own SQLite library is a different library.
    let local = cli::videos(&b);
    assert!(local.is_empty(), "{local:?}");
}

/// The hit of `query` on node `s` for the video `path`, if it is among the first 5.
fn finds(s: &Server, query: &str, path: &Path) -> bool {
    let r = s.get(&format!(
        "/api/search?q={}&k=5&min_score=off",
        query.replace(' ', "%20")
    ));
    r.status == 200
        && r.json()["results"]
            .as_array()
            .is_some_and(|hits| hits.iter().any(|h| h["path"] == path.display().to_string()))
}

#[test]
fn two_api_nodes_answer_the_same_library_and_see_each_others_changes_within_seconds() {
    if in_child_run() {
        return;
    }
    let server = Pg::start();
    let url = server.database("cluster");
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let star = lib.join("star.mp4");
    VideoSpec::new(vec![(Scene::new(Colour::Yellow, Shape::Star, Colour::Purple), 3.0)])
        .write(&star)
        .unwrap();
    let extra = ["--database", url.as_str()];
    let a = Server::start(&tmp.path().join("node-a"), &[&lib], &extra, None);
    let b = Server::start(&tmp.path().join("node-b"), &[&lib], &extra, None);
    assert!(!finds(&b, "a yellow star", &star));

    // Indexed through node A: node B finds it, from its own indexes, within seconds.
    let r = a.post_json("/api/index", &json!({"path": lib}));
    assert_eq!(r.status, 202, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();
    a.wait_for(120, "the job on node A", |s| {
        s.get(&format!("/api/jobs/{job}")).json()["state"] == "succeeded"
    });
    let t0 = Instant::now();
    b.wait_for(10, "node B to find the video node A indexed", |b| {
        finds(b, "a yellow star", &star)
    });
    eprintln!(
        "node B found node A's video {:.2} s after the job ended",
        t0.elapsed().as_secs_f64()
    );
    // The job is the library's: node B lists it too, succeeded.
    assert_eq!(b.get(&format!("/api/jobs/{job}")).json()["state"], "succeeded");

    // Deleted through node B: node A stops finding it within seconds.
    let id = b.video_id("star.mp4");
    let r = b.req("DELETE", &format!("/api/videos/{id}"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    a.wait_for(10, "node A to forget the video node B deleted", |a| {
        !finds(a, "a yellow star", &star)
    });

    // A node with another model refuses the library, naming the library's model.
    let dir = tmp.path().join("other-model");
    vidseek::import_model(
        &replicas().0.join("clip-vit-base-patch32"),
        &dir,
        &vidseek::ImportOptions::default(),
    )
    .unwrap();
    let out = vidseek(
        &[
            "--data",
            tmp.path().join("node-c").to_str().unwrap(),
            "--device",
            "cpu",
            "--database",
            &url,
            "--model",
            dir.to_str().unwrap(),
            "search",
            "a star",
        ],
        &[],
        None,
    );
    let msg = stderr(&out);
    assert!(
        !out.status.success() && msg.contains("this library was indexed with the model"),
        "{msg}"
    );

    // Keys live in the library: made once (from a third data folder), both nodes ask
    // for them; a search key reads on either node and changes nothing; revoked once, both
    // refuse it.
    let make = |name: &str, scope: &str| -> String {
        let (ok, out) = with_db(
            &tmp.path().join("admin"),
            &url,
            &["keys", "create", name, "--scope", scope],
        );
        assert!(ok, "{out}");
        out.lines().next().unwrap().trim().to_string()
    };
    let reader = make("reader", "search");
    let _admin = make("ops", "admin");
    let auth = format!("Bearer {reader}");
    let as_reader =
        |n: &Server, method: &str, path: &str| request(n.port, method, path, &[("Authorization", &auth)], None);
    for n in [&a, &b] {
        n.wait_for(8, "the node to ask for a key", |n| {
            request(n.port, "GET", "/api/videos", &[], None).status == 401
        });
        assert_eq!(as_reader(n, "GET", "/api/videos").status, 200);
        assert_eq!(as_reader(n, "POST", "/api/prune").status, 403);
    }
    let (ok, out) = with_db(&tmp.path().join("admin"), &url, &["keys", "revoke", "reader"]);
    assert!(ok, "{out}");
    for n in [&a, &b] {
        n.wait_for(8, "the node to refuse the revoked key", |n| {
            as_reader(n, "GET", "/api/videos").status == 401
        });
    }
}

#[test]
fn an_indexer_killed_mid_video_loses_its_job_to_another_node_and_every_file_is_indexed_once() {
    if in_child_run() {
        return;
    }
    let server = Pg::start();
    let url = server.database("killed");
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let scenes = [
        (Colour::Red, Shape::Circle, Colour::Blue),
        (Colour::Yellow, Shape::Star, Colour::Purple),
        (Colour::White, Shape::Square, Colour::Green),
        (Colour::Orange, Shape::Triangle, Colour::Black),
    ];
    for (i, (c, s, bg)) in scenes.iter().enumerate() {
        VideoSpec::new(vec![(Scene::new(*c, *s, *bg), 20.0)])
            .write(&lib.join(format!("v{i}.mp4")))
            .unwrap();
    }
    // A short lease: a node that stops renewing loses its job after 3 s.
    let lease = [("VIDSEEK_JOB_LEASE_SECONDS", "3")];
    let model = tiny_model_dir();
    let data = tmp.path().join("indexer");
    let mut indexer = Command::new(crate::common::bin())
        .args(["--data", data.to_str().unwrap(), "--device", "cpu", "--database", &url])
        .args([
            "--model",
            model.to_str().unwrap(),
            "--threads",
            "1",
            "index",
            lib.to_str().unwrap(),
        ])
        .envs(lease)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed (SIGKILL) once it has committed its first video, in the middle of the rest.
    let t0 = Instant::now();
    while server
        .try_sql("killed", "SELECT count(*) FROM videos")
        .is_none_or(|n| n == "0")
    {
        assert!(t0.elapsed().as_secs() < 120, "the indexer committed nothing");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    indexer.kill().unwrap();
    indexer.wait().unwrap();
    let committed: i64 = server.sql("killed", "SELECT count(*) FROM videos").parse().unwrap();
    assert!(committed < 4, "the indexer finished before it was killed: no test");
    let job = server.sql("killed", "SELECT id || ' ' || state FROM jobs");
    assert!(job.ends_with("processing"), "{job}");

    // A serve node takes the dead node's job once its lease expires and finishes it.
    let s = Server::start(&tmp.path().join("node"), &[&lib], &["--database", url.as_str()], None);
    let id: i64 = job.split(' ').next().unwrap().parse().unwrap();
    s.wait_for(120, "the other node to finish the killed node's job", |s| {
        s.get(&format!("/api/jobs/{id}")).json()["state"] == "succeeded"
    });
    // Every file once: four videos, each with the frames it has when indexed alone,
    // and no frame without its video.
    let videos = server.sql("killed", "SELECT count(*) FROM videos WHERE status = 'indexed'");
    assert_eq!(videos, "4");
    let per_video = server.sql(
        "killed",
        "SELECT string_agg(frame_count::text, ',' ORDER BY path) FROM videos",
    );
    let frames = server.sql("killed", "SELECT count(*) FROM frames");
    let sum: i64 = per_video.split(',').map(|n| n.parse::<i64>().unwrap()).sum();
    assert_eq!(frames, sum.to_string(), "frames {frames} vs per video {per_video}");
    let alone = tmp.path().join("alone");
    let (ok, _) = cli::index_json(&alone, &[&lib]);
    assert!(ok);
    let expected: Vec<String> = {
        let mut v: Vec<(String, i64)> = cli::videos(&alone)
            .iter()
            .map(|v| {
                (
                    v["path"].as_str().unwrap().to_string(),
                    v["frame_count"].as_i64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, n)| n.to_string()).collect()
    };
    assert_eq!(per_video, expected.join(","));
    // The job was finished by the node that took it over.
    let owner = server.sql("killed", &format!("SELECT owner FROM jobs WHERE id = {id}"));
    assert!(!owner.contains(&format!("/{}/", indexer.id())), "{owner}");
    assert!(finds(&s, "a red circle", &lib.join("v0.mp4")));
}

#[test]
fn a_database_outage_answers_503_with_retry_after_never_500_and_everything_resumes() {
    if in_child_run() {
        return;
    }
    let server = Pg::start();
    let url = server.database("outage");
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let first = one_video(&lib);
    let s = Server::start(&tmp.path().join("node"), &[&lib], &["--database", url.as_str()], None);
    let job = s.post_json("/api/index", &json!({"path": lib})).json()["id"]
        .as_i64()
        .unwrap();
    s.wait_for(120, "the first job", |s| {
        s.get(&format!("/api/jobs/{job}")).json()["state"] == "succeeded"
    });

    server.stop();
    // Reads of the store and new work: 503 with Retry-After and the server named, or
    // (a search answered from this node's own indexes) 200; never a 500.
    for path in [
        "/api/videos",
        "/api/jobs",
        "/api/search?q=a%20red%20circle&k=3",
        "/api/health?deep=true",
    ] {
        let r = s.get(path);
        assert!(r.status == 503 || r.status == 200, "{path}: {} {}", r.status, r.text());
        if r.status == 503 {
            assert!(r.header("retry-after").is_some(), "{path}: no Retry-After");
            assert!(
                r.text().contains(&format!("127.0.0.1:{}", server.port)),
                "{path}: {}",
                r.text()
            );
        }
    }
    let r = s.get("/api/videos");
    assert_eq!(r.status, 503, "{}", r.text());
    let r = s.post_json("/api/index", &json!({"path": lib}));
    assert!(r.status == 503, "{} {}", r.status, r.text());

    // Back: the same node serves and indexes again, nothing lost.
    server.resume();
    let second = lib.join("star.mp4");
    VideoSpec::new(vec![(Scene::new(Colour::Yellow, Shape::Star, Colour::Purple), 3.0)])
        .write(&second)
        .unwrap();
    s.wait_for(30, "the node to answer again", |s| s.get("/api/videos").status == 200);
    let r = s.post_json("/api/index", &json!({"path": lib}));
    assert_eq!(r.status, 202, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();
    s.wait_for(120, "the job after the outage", |s| {
        s.get(&format!("/api/jobs/{job}")).json()["state"] == "succeeded"
    });
    assert!(finds(&s, "a red circle", &first) && finds(&s, "a yellow star", &second));
}
