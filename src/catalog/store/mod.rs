//! `store`: the database, vidseek's source of truth (the only importer of sqlx;
//! schema in migrations/sqlite and migrations/postgres): SQLite in the data folder by
//! default, or a PostgreSQL server shared by several machines (`connect`). Videos with their file identity and stream facts, frames
//! with the time range each vector stands for, embeddings with the model that made
//! them, thumbnails, subtitle and title text, and the job queue. Everything else under
//! the data folder can be rebuilt from here.
//!
//! All writes for one video happen in one transaction, so a video is either fully
//! indexed or not at all, and each bumps the `generation` that derived indexes record.
//! On SQLite, WAL mode: readers (searches) never wait for the writer; see
//! ARCHITECTURE.md, "Writing to SQLite", for the write discipline. Split by table group: `videos` (videos, frames,
//! embeddings, thumbnails), `models` (the active model and a switch), `texts`, `jobs`,
//! `tags` (frame tags and saved probes), `vocab` (cached text vectors), `keys` (API keys),
//! `pgvector` (the frame vectors searched inside PostgreSQL, `--vectors pgvector`); `copy`
//! copies a whole library to another store (`vidseek migrate`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::AnyPool;
use sqlx::Row;

use crate::types::{FrameId, VideoId};

mod connect;
mod copy;
mod jobs;
mod keys;
mod models;
mod pgvector;
mod tags;
mod texts;
mod videos;
mod vocab;
mod wake;

pub use connect::{Backend, is_postgres_url, server_name};
pub use jobs::{Claim, FileState, Job, JobFile, JobKind, JobState, lease_seconds, node_id};
pub use keys::{ApiKey, KeyScope};
pub use models::{Switch, SwitchStatus};
pub use pgvector::PgTable;
pub use tags::{FrameTag, SavedProbe, Span, SpanTag, TaggedFrame};
pub use texts::{NewText, Text, TextKind};
pub use videos::{Frame, NewFrame, NewVideo, Video, VideoStatus};
pub use wake::JobWaker;

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
    /// The database cannot be opened, reached or migrated: `place` names the file or
    /// the server, `fix` what to do.
    #[error("cannot open the database {place}: {reason} ({fix})")]
    Open { place: String, reason: String, fix: String },
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
        hint: String,
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

/// `$first, $first+1, ...`: `n` numbered parameters for an `IN (...)` list.
fn marks(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn vector_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn blob_to_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A write transaction on either backend.
type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
}

impl Store {
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.read)
            .await
            .map(|r| r.map(|r| r.get(0)))
            .map_err(self.q("reading meta"))
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.write)
        .await
        .map(|_| ())
        .map_err(self.q("writing meta"))
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
        .map_err(self.q("counting"))?;
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
                    (SELECT COUNT(*) FROM frames WHERE id NOT IN (SELECT frame_id FROM embeddings WHERE model = $1))",
        )
        .bind(model)
        .fetch_one(&self.read)
        .await
        .map_err(self.q("checking integrity"))?;
        Ok(Integrity {
            orphan_frames: r.get(0),
            frames_without_vector: r.get(1),
        })
    }
}

impl Store {
    /// Reserves `n` ids of `table` ("videos" or "frames") and returns the first. Ids are
    /// never reused, not even those of deleted rows (SQLite would hand out the highest
    /// deleted rowid again): a frame id stays a tombstone in the vector index, and a
    /// video id in a link, forever. One counter row per table, incremented in one
    /// statement: concurrent writers (PostgreSQL) queue on its row lock and never share
    /// an id.
    async fn next_ids(&self, tx: &mut Tx, table: &'static str, n: i64) -> Result<i64> {
        let key = format!("last_{table}_id");
        // The first reservation starts after the highest id already in the table.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO meta(key, value) SELECT $1, CAST(COALESCE(MAX(id), 0) AS TEXT) FROM {table} WHERE true
             ON CONFLICT(key) DO NOTHING"
        )))
        .bind(&key)
        .execute(&mut **tx)
        .await
        .map_err(self.q("reserving ids"))?;
        let last: i64 = sqlx::query(
            "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + $2 AS TEXT) WHERE key = $1 RETURNING CAST(value AS BIGINT)",
        )
        .bind(&key)
        .bind(n)
        .fetch_one(&mut **tx)
        .await
        .map_err(self.q("reserving ids"))?
        .get(0);
        Ok(last - n + 1)
    }

    /// Moves the generation on (every change to frames or texts does); on PostgreSQL
    /// also tells the other nodes (`NOTIFY vidseek_changes`, delivered at commit).
    async fn bump_generation(&self, tx: &mut Tx) -> Result<u64> {
        let g: i64 = sqlx::query(
            "INSERT INTO meta(key, value) VALUES ('generation', '1')
             ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT)
             RETURNING CAST(value AS BIGINT)",
        )
        .fetch_one(&mut **tx)
        .await
        .map_err(self.q("bumping the generation"))?
        .get(0);
        if let Backend::Postgres { .. } = self.backend {
            sqlx::query("SELECT pg_notify('vidseek_changes', $1)")
                .bind(g.to_string())
                .execute(&mut **tx)
                .await
                .map_err(self.q("announcing a change"))?;
        }
        Ok(g as u64)
    }
}
