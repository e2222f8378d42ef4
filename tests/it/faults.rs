//! Faults on a cluster of real processes: hosts in Linux network namespaces on one
//! bridge (common::netns), a PostgreSQL server on one, two `vidseek worker`s and two
//! `vidseek serve` API nodes on four others, a client on the last (curl). With the job
//! lease at 6 s:
//! - a worker killed (-9) in the middle of a job: the other finishes it, and every
//!   file is committed exactly once (video ids stay contiguous: a second commit of a
//!   file would replace its row under a new id);
//! - the server stopped for 20 s while searches and indexing run: the API nodes answer
//!   503 with Retry-After, never 500; the workers wait and stay up; afterwards every
//!   file is indexed once and both nodes find the new videos;
//! - a worker's link cut in the middle of a job: its lease runs out, the other worker
//!   takes the job over, and the cut worker writes nothing once mended;
//! - a `search` key cannot index or delete (403); an `admin` key can.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::bin;
use crate::common::models::tiny_model_dir;
use crate::common::netns::Net;
use crate::common::pg::Pg;

const LEASE: &str = "6";
const PORT: u16 = 8080;

/// The cluster: the net, the server, the library's URL and the running nodes.
struct Cluster {
    net: Net,
    pg: Pg,
    url: String,
    tmp: tempfile::TempDir,
    nodes: Vec<(String, Child)>,
}

impl Cluster {
    fn start() -> Cluster {
        let net = Net::new(&["db", "w1", "w2", "a1", "a2", "c"]);
        let pg = Pg::start_at(Some(&net.ns("db")), &net.addr("db"), 5432, Some(&net.cidr()));
        pg.sql("postgres", "CREATE DATABASE lib");
        let url = pg.url("lib");
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("media")).unwrap();
        Cluster {
            net,
            pg,
            url,
            tmp,
            nodes: Vec::new(),
        }
    }

    /// `vidseek --data <host's folder> --database URL ARGS` on `host`.
    fn vidseek(&self, host: &str, args: &[&str]) -> Command {
        let mut c = self.net.command(host, &bin());
        let data = self.tmp.path().join(format!("data-{host}"));
        c.args([
            "--data",
            data.to_str().unwrap(),
            "--device",
            "cpu",
            "--database",
            &self.url,
        ])
        .args(["--model", tiny_model_dir().to_str().unwrap()])
        .args(args)
        .env("VIDSEEK_JOB_LEASE_SECONDS", LEASE)
        .env_remove("VIDSEEK_TOKEN");
        c
    }

    fn output(&self, host: &str, args: &[&str]) -> String {
        let out = self.vidseek(host, args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?} on {host}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    fn spawn(&mut self, host: &str, args: &[&str]) {
        let log = std::fs::File::create(self.tmp.path().join(format!("{host}.log"))).unwrap();
        let child = self
            .vidseek(host, args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes.push((host.to_string(), child));
    }

    fn worker(&mut self, host: &str) {
        // Three samples a second: jobs long enough to be caught in the middle.
        self.spawn(host, &["worker", "--poll", "1", "--fps", "3"]);
    }

    fn api_node(&mut self, host: &str) {
        let bind = format!("{}:{PORT}", self.net.addr(host));
        let media = self.tmp.path().join("media");
        self.spawn(host, &["serve", "--bind", &bind, "--library", media.to_str().unwrap()]);
    }

    fn node(&mut self, host: &str) -> &mut Child {
        &mut self.nodes.iter_mut().rev().find(|(h, _)| h == host).unwrap().1
    }

    fn log(&self, host: &str) -> String {
        std::fs::read_to_string(self.tmp.path().join(format!("{host}.log"))).unwrap_or_default()
    }

    /// An HTTP request from the client host: (status, Retry-After, body).
    fn http(&self, method: &str, node: &str, path: &str, key: &str) -> (u16, Option<String>, String) {
        let url = format!("http://{}:{PORT}{path}", self.net.addr(node));
        let mut curl = self.net.command("c", Path::new("curl"));
        curl.args(["-sS", "-m", "10", "-D", "-", "-X", method, "-H"])
            .arg(format!("Authorization: Bearer {key}"));
        if method != "GET" {
            curl.args(["-H", "Content-Type: application/json", "--data-binary", "{}"]);
        }
        let out = curl.arg(&url).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let status = text
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let retry = text.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_string())
        });
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, retry, body)
    }

    fn get(&self, node: &str, path: &str, key: &str) -> (u16, Option<String>, String) {
        self.http("GET", node, path, key)
    }

    /// Videos of `scenes` (each `secs` long) under media/NAME; their paths.
    fn footage(&self, name: &str, scenes: &[(Colour, Shape, Colour)], secs: f64) -> Vec<PathBuf> {
        let dir = self.tmp.path().join("media").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        scenes
            .iter()
            .enumerate()
            .map(|(i, (c, s, bg))| {
                let p = dir.join(format!("{name}-{i}.mp4"));
                let mut spec = VideoSpec::new(vec![(Scene::new(*c, *s, *bg), secs + i as f64)]);
                // Distinct content in every set (a file with another's content would be
                // taken for a moved file).
                spec.seed = 100 * name.len() as u64 + i as u64;
                spec.write(&p).unwrap();
                p
            })
            .collect()
    }

    /// Queues a job for `paths` from the client host; its id.
    fn enqueue(&self, paths: &[PathBuf]) -> i64 {
        let mut args = vec!["index", "--enqueue-only", "--json"];
        let strs: Vec<&str> = paths.iter().map(|p| p.to_str().unwrap()).collect();
        args.extend(strs);
        let v: Value = serde_json::from_str(&self.output("c", &args)).unwrap();
        v["job_id"].as_i64().unwrap()
    }

    fn sql(&self, q: &str) -> String {
        self.pg.sql("lib", q)
    }

    /// Waits (up to `secs`) until `f` holds.
    fn wait(&self, secs: u64, what: &str, mut f: impl FnMut(&Cluster) -> bool) {
        let t0 = Instant::now();
        while !f(self) {
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "{what} did not happen within {secs} s; jobs: {}; worker logs:\n{}\n{}",
                self.sql("SELECT id, state, files_done, files_total, owner, error FROM jobs ORDER BY id"),
                self.log("w1"),
                self.log("w2")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The job's (state, owner pid, files done).
    fn job(&self, id: i64) -> (String, Option<u32>, i64) {
        let row = self.sql(&format!(
            "SELECT state, COALESCE(owner, ''), files_done FROM jobs WHERE id = {id}"
        ));
        let mut f = row.split('|');
        let state = f.next().unwrap().to_string();
        // owner: host/pid/nonce
        let pid = f.next().unwrap().split('/').nth(1).and_then(|p| p.parse().ok());
        (state, pid, f.next().unwrap().parse().unwrap())
    }

    /// The worker host whose process owns the job.
    fn owner_host(&mut self, id: i64) -> Option<String> {
        let (_, pid, _) = self.job(id);
        let pid = pid?;
        self.nodes
            .iter()
            .find(|(h, c)| h.starts_with('w') && c.id() == pid)
            .map(|(h, _)| h.clone())
    }

    /// Every file committed once: as many videos as files, contiguous ids.
    fn assert_each_file_once(&self, files: usize) {
        let row = self.sql("SELECT count(*), COALESCE(max(id) - min(id) + 1, 0), count(DISTINCT path) FROM videos");
        assert_eq!(
            row,
            format!("{files}|{files}|{files}"),
            "videos (count | id span | paths)"
        );
        let bad = self.sql("SELECT count(*) FROM videos v WHERE frame_count <> (SELECT count(*) FROM frames f WHERE f.video_id = v.id) OR frame_count = 0");
        assert_eq!(bad, "0", "videos whose frames are not all there");
    }

    fn alive(&mut self, host: &str) -> bool {
        self.node(host).try_wait().unwrap().is_none()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, c) in &mut self.nodes {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn key(c: &Cluster, name: &str, scope: &str) -> String {
    let v: Value = serde_json::from_str(&c.output("c", &["keys", "create", name, "--scope", scope, "--json"])).unwrap();
    v["key"].as_str().unwrap().to_string()
}

const SCENES: [(Colour, Shape, Colour); 6] = [
    (Colour::Red, Shape::Circle, Colour::Blue),
    (Colour::Green, Shape::Square, Colour::Black),
    (Colour::Yellow, Shape::Star, Colour::Purple),
    (Colour::Orange, Shape::Triangle, Colour::Blue),
    (Colour::Purple, Shape::Circle, Colour::Yellow),
    (Colour::Blue, Shape::Square, Colour::Orange),
];

#[test]
fn a_cluster_loses_nothing_when_a_worker_dies_the_database_stops_or_a_link_is_cut() {
    let mut c = Cluster::start();
    let admin = key(&c, "ops", "admin");
    let reader = key(&c, "reader", "search");
    c.api_node("a1");
    c.api_node("a2");
    c.worker("w1");
    c.worker("w2");
    c.wait(60, "both API nodes answering", |c| {
        ["a1", "a2"].iter().all(|n| c.get(n, "/api/health", &reader).0 == 200)
    });

    // 1. A worker killed in the middle of a job.
    let first = c.footage("kill", &SCENES, 30.0);
    let job = c.enqueue(&first);
    c.wait(60, "a worker working on the job", |c| {
        let (state, _, done) = c.job(job);
        state == "processing" && done >= 1
    });
    let victim = c.owner_host(job).expect("a worker owns the job");
    c.node(&victim).kill().unwrap(); // SIGKILL
    c.wait(90, "the other worker finishing the job", |c| {
        c.job(job).0 == "succeeded"
    });
    let other = if victim == "w1" { "w2" } else { "w1" };
    assert_eq!(
        c.owner_host(job).as_deref(),
        Some(other),
        "the job was finished by the other worker"
    );
    c.assert_each_file_once(first.len());
    c.worker(&victim);

    // 2. The server stopped for 20 s while searches and indexing run.
    let second = c.footage("outage", &SCENES[..4], 30.0);
    let job = c.enqueue(&second);
    c.wait(60, "a worker working on the second job", |c| {
        c.job(job).0 == "processing"
    });
    c.pg.stop();
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while t0.elapsed() < Duration::from_secs(20) {
        for (node, path) in [
            ("a1", "/api/search?q=a+red+circle&k=3"),
            ("a2", "/api/health"),
            ("a1", "/api/jobs"),
        ] {
            let (status, retry, body) = c.get(node, path, &reader);
            assert!(
                status == 200 || status == 503,
                "{node} answered {status} to {path} while the database was down: {body}"
            );
            if status == 503 {
                assert!(retry.is_some(), "a 503 without Retry-After: {body}");
            }
            seen.push(status);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        seen.contains(&503),
        "no node said the database was unavailable: {seen:?}"
    );
    assert!(
        c.alive("w1") && c.alive("w2"),
        "a worker died while the database was down: {}{}",
        c.log("w1"),
        c.log("w2")
    );
    c.pg.resume();
    c.wait(120, "the second job ending after the outage", |c| {
        c.job(job).0 == "succeeded"
    });
    c.assert_each_file_once(first.len() + second.len());
    for node in ["a1", "a2"] {
        c.wait(30, "each node serving the videos indexed during the outage", |c| {
            let (status, _, body) = c.get(node, "/api/videos", &reader);
            status == 200
                && second
                    .iter()
                    .all(|p| body.contains(p.file_name().unwrap().to_str().unwrap()))
        });
    }

    // 3. A worker's link cut in the middle of a job.
    let third = c.footage("cut", &SCENES[..4], 30.0);
    let job = c.enqueue(&third);
    c.wait(60, "a worker working on the third job", |c| {
        c.job(job).0 == "processing"
    });
    let cut = c.owner_host(job).expect("a worker owns the job");
    c.net.cut(&cut);
    c.wait(90, "the other worker taking the job over and finishing it", |c| {
        c.job(job).0 == "succeeded"
    });
    let other = if cut == "w1" { "w2" } else { "w1" };
    assert_eq!(c.owner_host(job).as_deref(), Some(other));
    c.net.mend(&cut);
    std::thread::sleep(Duration::from_secs(8));
    c.assert_each_file_once(first.len() + second.len() + third.len());
    assert!(c.alive(&cut), "the cut worker died: {}", c.log(&cut));

    // 4. Scopes on every node: a search key reads but cannot index or delete.
    let id = c.sql("SELECT min(id) FROM videos");
    for node in ["a1", "a2"] {
        assert_eq!(c.http("POST", node, "/api/index", &reader).0, 403);
        assert_eq!(c.http("DELETE", node, &format!("/api/videos/{id}"), &reader).0, 403);
        assert_eq!(c.get(node, "/api/videos", &reader).0, 200);
    }
    let (status, _, body) = c.http("DELETE", "a1", &format!("/api/videos/{id}"), &admin);
    assert!(status < 300, "an admin key may delete: {status} {body}");
}
