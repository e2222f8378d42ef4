//! `store`: the SQLite database, vidseek's source of truth (the only importer of sqlx;
//! schema in migrations/). Videos with their file identity and stream facts, frames
//! with the time range each vector stands for, embeddings with the model that made
//! them, thumbnails, subtitle and title text, and the job queue. Everything else under
//! the data folder can be rebuilt from here.
//!
//! All writes for one video happen in one transaction, so a video is either fully
//! indexed or not at all, and each bumps the `generation` that derived indexes record.
//! WAL mode: readers (searches) never wait for the writer; see ARCHITECTURE.md, "Writing
//! to SQLite", for the write discipline. Split by table group: `videos` (videos, frames,
//! embeddings, thumbnails), `models` (the active model and a switch), `texts`, `jobs`,
//! `tags` (frame tags and saved probes), `vocab` (cached text vectors).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::types::{FrameId, VideoId};

mod jobs;
mod models;
mod tags;
mod texts;
mod videos;
mod vocab;

pub use jobs::{FileState, Job, JobFile, JobKind, JobState};
pub use models::{Switch, SwitchStatus};
pub use tags::{FrameTag, SavedProbe, Span, SpanTag, TaggedFrame};
pub use texts::{NewText, Text, TextKind};
pub use videos::{Frame, NewFrame, NewVideo, Video, VideoStatus};

/// An enum stored as the TEXT its CHECK constraint in migrations/ allows: `as_str` for
/// binding, `parse` for reading (an unknown value is a corrupt store).
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            /// The TEXT stored for it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $text),+ }
            }

            pub(super) fn parse(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$var),)+
                    other => Err(StoreError::Corrupt(format!("{} {other:?} is not one of the known values", stringify!($name)))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

/// Errors of the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file cannot be opened or migrated.
    #[error("cannot open the database {}: {reason} (check the --data folder and its permissions)", path.display())]
    Open { path: PathBuf, reason: String },
    /// A query failed.
    #[error("database error while {what}: {source}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The database cannot do what was asked for a reason outside the request: the
    /// disk is full, the data folder is read-only, or another process holds the lock
    /// for longer than the wait. Retrying later (after the fix) works.
    #[error("the database is unavailable while {what}: {reason}; {hint}")]
    Unavailable {
        what: &'static str,
        reason: String,
        hint: &'static str,
    },
    /// A stored vector does not have the expected length.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl crate::error::Classified for StoreError {
    fn fault(&self) -> crate::error::Fault {
        match self {
            StoreError::Unavailable { .. } | StoreError::Open { .. } => crate::error::Fault::Unavailable,
            StoreError::Query { .. } | StoreError::Corrupt(_) => crate::error::Fault::Internal,
        }
    }
}

impl StoreError {
    /// True when the failure is the machine's state (disk, permissions, a lock held
    /// elsewhere), not a fault of vidseek or of the request: HTTP 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

type Result<T> = std::result::Result<T, StoreError>;

fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| match unavailable(&source) {
        Some(hint) => StoreError::Unavailable {
            what,
            reason: source.to_string(),
            hint,
        },
        None => StoreError::Query { what, source },
    }
}

/// The fix to name when SQLite failed because of the machine rather than the query.
fn unavailable(e: &sqlx::Error) -> Option<&'static str> {
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

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Counts for health reports.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Counts {
    pub videos: i64,
    pub indexed: i64,
    pub failed: i64,
    pub frames: i64,
    pub texts: i64,
}

/// See [`Store::integrity`].
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Integrity {
    pub orphan_frames: i64,
    pub frames_without_vector: i64,
}

pub fn vector_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn blob_to_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
}

/// How long a statement waits for a lock another process holds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a write waits for the writer connection (behind other writes of this process).
const WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    ///
    /// Two pools over one WAL database: readers (up to 8 connections, never blocked by
    /// the writer) and the writer (one connection). Every write goes through the writer
    /// and every write transaction begins with `BEGIN IMMEDIATE`, so writes queue in
    /// this process instead of failing with "database is locked" (SQLITE_BUSY) or
    /// SQLITE_BUSY_SNAPSHOT (a transaction that read first and then tried to write).
    pub async fn open(path: &Path) -> Result<Self> {
        let fail = |reason: String| StoreError::Open {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|e| fail(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Another process (a second vidseek reading, a backup) may hold the lock briefly.
            .busy_timeout(BUSY_TIMEOUT);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            // Writers wait their turn behind the longest write (one video's commit).
            .acquire_timeout(WRITE_WAIT)
            .connect_with(opts.clone())
            .await
            .map_err(|e| fail(e.to_string()))?;
        // Two processes opening a new database at once both try to migrate it; the one
        // that loses finds the work done on its next attempt.
        let mut attempt = 0;
        loop {
            match sqlx::migrate!("./migrations").run(&write).await {
                Ok(()) => break,
                Err(_) if attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(fail(format!("migration failed: {e}"))),
            }
        }
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self { read, write })
    }

    /// A write transaction, begun as a writer (`BEGIN IMMEDIATE`) on the one writer
    /// connection: it holds SQLite's write lock from its first statement, so it never
    /// has to upgrade a read snapshot (which fails with SQLITE_BUSY_SNAPSHOT under WAL).
    async fn begin_write(&self) -> std::result::Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        match self.write.begin_with("BEGIN IMMEDIATE").await {
            Err(sqlx::Error::InvalidSavePointStatement | sqlx::Error::BeginFailed) => {
                // A transaction that failed to commit (a full disk) can leave the writer
                // connection inside it: replace the connection, then begin again.
                tracing::warn!("replacing the database writer connection after a failed transaction");
                let conn = self.write.acquire().await?;
                conn.close().await?;
                self.write.begin_with("BEGIN IMMEDIATE").await
            }
            other => other,
        }
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        sqlx::query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.read)
            .await
            .map(|r| r.map(|r| r.get(0)))
            .map_err(q("reading meta"))
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.write)
            .await
            .map(|_| ())
            .map_err(q("writing meta"))
    }

    /// Counter bumped by every change to frames or texts.
    pub async fn generation(&self) -> Result<u64> {
        Ok(self.meta("generation").await?.and_then(|g| g.parse().ok()).unwrap_or(0))
    }

    pub async fn counts(&self) -> Result<Counts> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM videos), (SELECT COUNT(*) FROM videos WHERE status = 'indexed'),
                    (SELECT COUNT(*) FROM videos WHERE status = 'failed'), (SELECT COUNT(*) FROM frames), (SELECT COUNT(*) FROM texts)",
        )
        .fetch_one(&self.read)
        .await
        .map_err(q("counting"))?;
        Ok(Counts {
            videos: r.get(0),
            indexed: r.get(1),
            failed: r.get(2),
            frames: r.get(3),
            texts: r.get(4),
        })
    }

    /// Consistency counters (for checks and tests): frames whose video is gone, frames
    /// without a vector of `model`.
    pub async fn integrity(&self, model: &str) -> Result<Integrity> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM frames WHERE video_id NOT IN (SELECT id FROM videos)),
                    (SELECT COUNT(*) FROM frames WHERE id NOT IN (SELECT frame_id FROM embeddings WHERE model = ?))",
        )
        .bind(model)
        .fetch_one(&self.read)
        .await
        .map_err(q("checking integrity"))?;
        Ok(Integrity {
            orphan_frames: r.get(0),
            frames_without_vector: r.get(1),
        })
    }
}

/// Reserves `n` ids of `table` ("videos" or "frames") and returns the first. Ids are
/// never reused, not even those of deleted rows (SQLite would hand out the highest
/// deleted rowid again): a frame id stays a tombstone in the vector index, and a video
/// id in a link, forever.
async fn next_ids(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, table: &'static str, n: i64) -> Result<i64> {
    let key = format!("last_{table}_id");
    let last: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT MAX(COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), 0), COALESCE((SELECT MAX(id) FROM {table}), 0))"
    )))
    .bind(&key)
    .fetch_one(&mut **tx)
    .await
    .map_err(q("reserving ids"))?
    .get(0);
    sqlx::query("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .bind(&key)
        .bind((last + n).to_string())
        .execute(&mut **tx)
        .await
        .map_err(q("reserving ids"))?;
    Ok(last + 1)
}

async fn bump_generation(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<u64> {
    let g: i64 = sqlx::query(
        "INSERT INTO meta(key, value) VALUES ('generation', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1 RETURNING CAST(value AS INTEGER)",
    )
    .fetch_one(&mut **tx)
    .await
    .map_err(q("bumping the generation"))?
    .get(0);
    Ok(g as u64)
}
