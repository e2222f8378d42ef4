//! Opening the store on either backend: SQLite in the data folder (the embedded
//! default) or a PostgreSQL server named by a URL (a library shared by several
//! machines). Both go through sqlx's `Any` driver, so the queries in this folder are
//! written once, in the SQL both engines accept (`$N` parameters, `ON CONFLICT`,
//! `RETURNING`); the few places that differ ask [`Backend`]. Migrations live in
//! `migrations/sqlite` and `migrations/postgres`, one schema meaning in two dialects.
//!
//! Failures are classified here, once: what the machine or the server did (disk, lock,
//! network, a server going down) is `Unavailable` and names the fix; anything else is
//! a query fault.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor};

use super::{Result, Store, StoreError};

/// Which engine holds the library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file in the data folder.
    Sqlite,
    /// A PostgreSQL server, named without credentials (`host:port/database`), and how
    /// to reach it (kept for `LISTEN`, never shown).
    Postgres { server: String, url: Secret },
}

/// A connection URL with its password: never printed (`Debug` says so).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(super) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(the database URL, not shown)")
    }
}

/// How long a statement waits for a lock another process holds (SQLite).
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a write waits for the writer connection (behind other writes of this process).
const WRITE_WAIT: Duration = Duration::from_secs(300);
/// How long a request waits for a PostgreSQL connection before the server counts as
/// unreachable (the API then answers 503).
const PG_WAIT: Duration = Duration::from_secs(5);
/// The oldest PostgreSQL this schema and its queries are written for.
const PG_MIN_VERSION: i64 = 130000;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// True when `s` names a PostgreSQL server rather than a file.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// `host:port/database` of a PostgreSQL URL, never its user or password (for messages
/// and logs).
pub fn server_name(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(o) => format!(
            "{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or(o.get_username())
        ),
        Err(_) => "the server named by --database".into(),
    }
}

impl Store {
    /// Opens (creating and migrating) the SQLite database at `path`.
    ///
    /// Two pools over one WAL database: readers (up to 8 connections, never blocked by
    /// the writer) and the writer (one connection). Every write goes through the writer
    /// and every write transaction begins with `BEGIN IMMEDIATE`, so writes queue in
    /// this process instead of failing with "database is locked" (SQLITE_BUSY) or
    /// SQLITE_BUSY_SNAPSHOT (a transaction that read first and then tried to write).
    pub async fn open(path: &Path) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let fail = |reason: String| StoreError::Open {
            place: path.display().to_string(),
            reason,
            fix: "check the --data folder and its permissions".into(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let write = AnyPoolOptions::new()
            .max_connections(1)
            // Writers wait their turn behind the longest write (one video's commit).
            .acquire_timeout(WRITE_WAIT)
            .after_connect(sqlite_pragmas)
            .connect(&url)
            .await
            .map_err(|e| fail(e.to_string()))?;
        write
            .execute("PRAGMA journal_mode = WAL")
            .await
            .map_err(|e| fail(e.to_string()))?;
        // Two processes opening a new database at once both try to migrate it; the one
        // that loses finds the work done on its next attempt.
        let mut attempt = 0;
        loop {
            match SQLITE.run(&write).await {
                Ok(()) => break,
                Err(e @ sqlx::migrate::MigrateError::VersionMissing(_)) => {
                    return Err(newer_schema(&path.display().to_string(), e));
                }
                Err(_) if attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(fail(format!("migration failed: {e}"))),
            }
        }
        let read = AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(sqlite_pragmas)
            .connect(&url)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            read,
            write,
            backend: Backend::Sqlite,
        })
    }

    /// Connects to the PostgreSQL server of `url` and brings its schema up to date.
    /// Refuses, before writing anything, a server that cannot be reached, a login it
    /// refuses, a missing database, a server older than PostgreSQL 13, a role that may
    /// not create the tables and a schema newer than this binary.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let server = server_name(url);
        // One connection first: its error says why (refused, unknown host, login), where
        // the pool would only report that it timed out.
        sqlx::AnyConnection::connect(url)
            .await
            .map_err(|e| connect_error(&server, url, &e))?
            .close()
            .await
            .map_err(|e| connect_error(&server, url, &e))?;
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .min_connections(0)
            .acquire_timeout(PG_WAIT)
            .connect(url)
            .await
            .map_err(|e| connect_error(&server, url, &e))?;
        let version: i64 = sqlx::query_scalar::<_, String>("SHOW server_version_num")
            .fetch_one(&pool)
            .await
            .map_err(|e| connect_error(&server, url, &e))?
            .parse()
            .unwrap_or(0);
        if version < PG_MIN_VERSION {
            return Err(StoreError::Open {
                place: format!("PostgreSQL at {server}"),
                reason: format!("the server is version {}.{}", version / 10000, version % 10000 / 100),
                fix: "vidseek needs PostgreSQL 13 or newer: upgrade the server".into(),
            });
        }
        match POSTGRES.run(&pool).await {
            Ok(()) => {}
            Err(e @ sqlx::migrate::MigrateError::VersionMissing(_)) => return Err(newer_schema(&server, e)),
            Err(sqlx::migrate::MigrateError::Execute(e)) => return Err(connect_error(&server, url, &e)),
            Err(e) => {
                return Err(StoreError::Open {
                    place: format!("PostgreSQL at {server}"),
                    reason: format!("migration failed: {e}"),
                    fix: "check the role's rights on the database".into(),
                });
            }
        }
        Ok(Self {
            read: pool.clone(),
            write: pool,
            backend: Backend::Postgres {
                server,
                url: Secret(url.to_string()),
            },
        })
    }

    /// Which engine this store is on.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// A write transaction. On SQLite it begins as a writer (`BEGIN IMMEDIATE`) on the
    /// one writer connection: it holds the write lock from its first statement, so it
    /// never has to upgrade a read snapshot (SQLITE_BUSY_SNAPSHOT under WAL). On
    /// PostgreSQL row locks order concurrent writers (the `meta` counters every write
    /// transaction updates serialise commits of one library).
    pub(super) async fn begin_write(&self) -> sqlx::Result<super::Tx> {
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres { .. } => "BEGIN",
        };
        match self.write.begin_with(begin).await {
            Err(sqlx::Error::InvalidSavePointStatement | sqlx::Error::BeginFailed) => {
                // A transaction that failed to commit (a full disk) can leave the writer
                // connection inside it: replace the connection, then begin again.
                tracing::warn!("replacing the database writer connection after a failed transaction");
                let conn = self.write.acquire().await?;
                conn.close().await?;
                self.write.begin_with(begin).await
            }
            other => other,
        }
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// Maps a failed query to the store's error: `Unavailable` (with the fix) when the
    /// machine or the server is at fault, `Query` otherwise.
    pub(super) fn q(&self, what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        move |source| match self.unavailable(&source) {
            Some(hint) => StoreError::Unavailable {
                what,
                reason: source.to_string(),
                hint,
            },
            None => StoreError::Query { what, source },
        }
    }

    /// The fix to name when the database failed because of the machine or the server
    /// rather than the query.
    fn unavailable(&self, e: &sqlx::Error) -> Option<String> {
        match &self.backend {
            Backend::Sqlite => sqlite_unavailable(e).map(String::from),
            Backend::Postgres { server, .. } => postgres_unavailable(e).then(|| {
                format!(
                    "the PostgreSQL server {server} cannot be reached or is shutting down: check that it runs and that \
                     this machine reaches it, then retry"
                )
            }),
        }
    }
}

/// Set on every SQLite connection: wait for locks (busy_timeout first: the others may
/// have to), enforce foreign keys, and sync at checkpoints only (WAL).
fn sqlite_pragmas(
    conn: &mut sqlx::AnyConnection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, sqlx::Result<()>> {
    Box::pin(async move {
        conn.execute(sqlx::AssertSqlSafe(format!(
            "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            BUSY_TIMEOUT.as_millis()
        )))
        .await
        .map(|_| ())
    })
}

fn sqlite_unavailable(e: &sqlx::Error) -> Option<&'static str> {
    match e {
        sqlx::Error::PoolTimedOut => Some("the database was busy with other writes for minutes: retry later"),
        sqlx::Error::Io(_) => Some("check the disk holding the --data folder"),
        sqlx::Error::Database(db) => {
            let code: i32 = db.code()?.parse().ok()?;
            // Primary result codes (https://www.sqlite.org/rescode.html).
            match code & 0xff {
                13 => Some("the disk holding the --data folder is full: free some space and retry"),
                8 | 3 => Some("the --data folder or its database is read-only: make it writable and retry"),
                10 => Some("the disk holding the --data folder reported an I/O error: check it and retry"),
                14 => Some("the database file cannot be opened: check the --data folder and its permissions"),
                5 | 6 => Some("another process holds the database lock: wait for it (or stop it) and retry"),
                _ => None,
            }
        }
        _ => None,
    }
}

/// True for failures of the connection or the server's state, not of the query:
/// network errors, pool timeouts, and SQLSTATE classes 08 (connection), 53 (resources),
/// 57 (operator intervention: shutdown, restart) and 58 (system error).
fn postgres_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| ["08", "53", "57", "58"].iter().any(|class| c.starts_with(class))),
        _ => false,
    }
}

/// The error for a server that could not be used at all: unreachable, a refused login,
/// no such database, a role without rights. Never carries the password.
fn connect_error(server: &str, url: &str, e: &sqlx::Error) -> StoreError {
    let opts = PgConnectOptions::from_str(url).ok();
    let user = opts.as_ref().map_or_else(String::new, |o| o.get_username().to_string());
    let database = opts
        .as_ref()
        .and_then(|o| o.get_database().map(String::from))
        .unwrap_or_else(|| user.clone());
    let code = match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.to_string()),
        _ => None,
    };
    let fix = match code.as_deref() {
        Some("28P01") | Some("28000") => {
            format!("the server refused the login of role {user:?}: check the user and password in the --database URL")
        }
        Some("3D000") => {
            format!("the database {database:?} does not exist: create it (createdb {database}) or fix the URL")
        }
        Some("42501") => format!(
            "the role {user:?} may not create vidseek's tables: GRANT CREATE ON SCHEMA public TO {user} (or use the \
             database owner)"
        ),
        _ if postgres_unavailable(e) || matches!(e, sqlx::Error::Configuration(_)) => {
            "check that the server runs, that the URL names its host and port, and that this machine reaches it".into()
        }
        _ => "check the --database URL and the server's log".into(),
    };
    let reason = match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    };
    StoreError::Open {
        place: format!("PostgreSQL at {server}"),
        reason: redact(&reason, url),
        fix,
    }
}

/// `text` with any password of `url` blanked out.
fn redact(text: &str, url: &str) -> String {
    match PgConnectOptions::from_str(url)
        .ok()
        .and_then(|_| url.split('@').next()?.rsplit(':').next().map(String::from))
    {
        Some(pw) if !pw.is_empty() && !pw.starts_with("//") => text.replace(&pw, "***"),
        _ => text.to_string(),
    }
}

fn newer_schema(place: &str, e: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Open {
        place: place.to_string(),
        reason: format!("its schema is newer than this vidseek ({e})"),
        fix: "upgrade vidseek to the version that wrote this library".into(),
    }
}
