//! `vidseek worker` and `vidseek index --enqueue-only [--wait]` on a library in
//! PostgreSQL: jobs queued without a model are taken by worker processes, woken by the
//! announcement (their poll is set to a minute, so only `LISTEN` explains a job taken
//! within seconds), two workers share the jobs, every file is indexed once, and Ctrl-C
//! stops a worker cleanly. Both refuse a library in a data folder, saying why.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::cli::{stderr, stdout, vidseek};
use crate::common::models::tiny_model_dir;
use crate::common::pg::Pg;

/// Videos of `scenes` in `dir`, each a different length (from `base` seconds): no two
/// files alike.
fn videos(dir: &Path, base: f64, scenes: &[(Colour, Shape, Colour)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, (c, s, bg)) in scenes.iter().enumerate() {
        VideoSpec::new(vec![(Scene::new(*c, *s, *bg), base + i as f64)])
            .write(&dir.join(format!("v{i}.mp4")))
            .unwrap();
    }
}

fn start_worker(data: &Path, url: &str, log: &Path) -> Child {
    Command::new(crate::common::bin())
        .args(["--data", data.to_str().unwrap(), "--device", "cpu", "--database", url])
        .args(["--model", tiny_model_dir().to_str().unwrap(), "worker", "--poll", "60"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// `vidseek index --enqueue-only ARGS` from a data folder of its own, with a model path
/// that does not exist (none is loaded).
fn enqueue(data: &Path, url: &str, args: &[&str]) -> std::process::Output {
    let mut full = vec![
        "--data",
        data.to_str().unwrap(),
        "--database",
        url,
        "--model",
        "/nonexistent/model",
        "index",
        "--enqueue-only",
        "--json",
    ];
    full.extend_from_slice(args);
    vidseek(&full, &[], None)
}

fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    t0.elapsed()
}

#[test]
fn workers_take_queued_jobs_as_they_are_announced_share_them_and_index_every_file_once() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let red = (Colour::Red, Shape::Circle, Colour::Blue);
    let star = (Colour::Yellow, Shape::Star, Colour::Purple);
    let square = (Colour::White, Shape::Square, Colour::Green);
    videos(&lib.join("a"), 4.0, &[red, star]);
    videos(&lib.join("b"), 7.0, &[square, red]);
    videos(&lib.join("c"), 10.0, &[star, square, red]);
    videos(&lib.join("d"), 14.0, &[square, star, red]);

    // A library in a data folder: refused, naming what is needed.
    let cli = tmp.path().join("cli");
    let out = vidseek(&["--data", cli.to_str().unwrap(), "worker"], &[], None);
    assert!(
        !out.status.success() && stderr(&out).contains("give --database URL"),
        "{}",
        stderr(&out)
    );
    let out = vidseek(
        &[
            "--data",
            cli.to_str().unwrap(),
            "index",
            "--enqueue-only",
            lib.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(
        !out.status.success() && stderr(&out).contains("give --database URL"),
        "{}",
        stderr(&out)
    );

    let server = Pg::start();
    let url = server.database("workers");
    // Queued without a model (none exists at that path): nothing is indexed yet.
    let out = enqueue(&cli, &url, &[lib.join("a").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(first["state"], "enqueued");
    let first = first["job_id"].as_i64().unwrap();
    let state = |id: i64| server.sql("workers", &format!("SELECT state FROM jobs WHERE id = {id}"));
    assert_eq!(state(first), "enqueued");

    let (a_log, b_log) = (tmp.path().join("a.log"), tmp.path().join("b.log"));
    let mut a = start_worker(&tmp.path().join("worker-a"), &url, &a_log);
    let mut b = start_worker(&tmp.path().join("worker-b"), &url, &b_log);
    // The job queued before they started: taken on their first look.
    wait_until(120, "the first job", || state(first) == "succeeded");
    // Both idle now (each lists the queue and waits): a job queued now is taken within
    // seconds, far inside their 60 s poll.
    std::thread::sleep(Duration::from_secs(2));
    let out = enqueue(&cli, &url, &[lib.join("b").to_str().unwrap()]);
    let second: i64 = serde_json::from_str::<Value>(&stdout(&out)).unwrap()["job_id"]
        .as_i64()
        .unwrap();
    let woke = wait_until(20, "a worker to take the announced job", || state(second) != "enqueued");
    eprintln!(
        "an idle worker took the announced job after {:.2} s",
        woke.as_secs_f64()
    );

    // Two jobs at once, one waited for: both workers work, and `--wait` reports the end.
    let out = enqueue(&cli, &url, &[lib.join("c").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = enqueue(&cli, &url, &["--wait", lib.join("d").to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let waited: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(waited["job"]["state"], "succeeded", "{waited}");
    assert_eq!(waited["files"].as_array().unwrap().len(), 3, "{waited}");
    wait_until(120, "every job", || {
        server.sql("workers", "SELECT count(*) FROM jobs WHERE state <> 'succeeded'") == "0"
    });
    let owners = server.sql("workers", "SELECT string_agg(DISTINCT owner, ' ') FROM jobs");
    for w in [&a, &b] {
        assert!(
            owners.contains(&format!("/{}/", w.id())),
            "worker {} ran no job: {owners}",
            w.id()
        );
    }
    // Every file indexed once.
    assert_eq!(
        server.sql("workers", "SELECT count(*) FROM videos WHERE status = 'indexed'"),
        "10"
    );
    assert_eq!(
        server.sql(
            "workers",
            "SELECT count(*) FROM (SELECT path FROM videos GROUP BY path HAVING count(*) > 1) d"
        ),
        "0"
    );

    // Ctrl-C: the worker stops (after the job at hand) and says so.
    for w in [&mut a, &mut b] {
        unsafe { libc_kill(w.id() as i32, 2) };
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = w.try_wait().unwrap() {
                break s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "the worker did not stop on Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success());
    }
    let log = std::fs::read_to_string(&a_log).unwrap();
    assert!(
        log.contains("woken as jobs are queued") && log.contains("stopped"),
        "{log}"
    );
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
