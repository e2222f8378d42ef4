//! `store`: the SQLite database, vidseek's source of truth (the only importer of sqlx;
//! schema in migrations/). Videos with their file identity and stream facts, frames
//! with the time range each vector stands for, embeddings with the model that made
//! them, thumbnails, subtitle and title text, and the job queue. Everything else under
//! the data folder can be rebuilt from here.
//!
//! All writes for one video happen in one transaction, so a video is either fully
//! indexed or not at all, and each bumps the `generation` that derived indexes record.
//! WAL mode: readers (searches) never wait for the writer.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

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

impl StoreError {
    pub fn is_user_error(&self) -> bool {
        false
    }

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

/// A video row.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Video {
    pub id: i64,
    pub path: String,
    pub size: i64,
    pub mtime_ns: i64,
    pub hash: String,
    pub duration: Option<f64>,
    pub fps: Option<f64>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub codec: Option<String>,
    pub rotation: Option<i64>,
    pub status: String,
    pub error: Option<String>,
    pub frame_count: i64,
    pub indexed_at: i64,
}

/// A frame row, with the path of its video.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Frame {
    pub id: i64,
    pub video_id: i64,
    pub seq: i64,
    pub start: f64,
    pub end: f64,
    pub peak: f64,
    pub shot: bool,
}

/// A text row (subtitle cue, title, file name).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Text {
    pub id: i64,
    pub video_id: i64,
    pub kind: String,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub text: String,
}

/// What is written for one successfully indexed video.
#[derive(Clone, Debug, Default)]
pub struct NewVideo {
    pub path: String,
    pub size: i64,
    pub mtime_ns: i64,
    pub hash: String,
    pub duration: f64,
    pub fps: f64,
    pub width: i64,
    pub height: i64,
    pub codec: String,
    pub rotation: i64,
    pub frames: Vec<NewFrame>,
    pub texts: Vec<NewText>,
}

#[derive(Clone, Debug, Default)]
pub struct NewFrame {
    pub start: f64,
    pub end: f64,
    pub peak: f64,
    pub shot: bool,
    pub vector: Vec<f32>,
    /// Vectors of other models (the one a switch is moving to), by model name.
    pub extra_vectors: Vec<(String, Vec<f32>)>,
    pub thumbnail: Vec<u8>,
}

/// A switch to another model, under way (kept in `meta` until it completes).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Switch {
    pub model: String,
    pub dim: usize,
    /// Its package folder.
    pub dir: PathBuf,
    /// The job re-embedding the library.
    pub job_id: i64,
}

/// See [`Store::switch_status`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SwitchStatus {
    pub model: String,
    pub dir: PathBuf,
    pub job_id: i64,
    pub state: Option<String>,
    pub frames_done: i64,
    pub frames_total: i64,
    pub eta_seconds: Option<f64>,
}

/// What [`Store::put_video`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub video_id: i64,
    /// The new frames' ids, in order.
    pub frame_ids: Vec<i64>,
    /// The earlier row of the same path and its frames, now deleted.
    pub replaced_video: Option<i64>,
    pub replaced_frames: Vec<i64>,
    pub generation: u64,
}

#[derive(Clone, Debug)]
pub struct NewText {
    pub kind: &'static str,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub text: String,
}

/// A job row.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub paths: Vec<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub files_total: i64,
    pub files_done: i64,
    pub frames_done: i64,
    pub error: Option<String>,
}

/// Per-file outcome of a job.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct JobFile {
    pub path: String,
    pub state: String,
    pub error: Option<String>,
    pub frames: i64,
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
    path: PathBuf,
}

/// How long a statement waits for a lock another process holds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a write waits for the writer connection (behind other writes of this process).
const WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

const VIDEO_COLS: &str = "id, path, size, mtime_ns, hash, duration, fps, width, height, codec, rotation, status, error, frame_count, indexed_at";

fn video_from(r: &sqlx::sqlite::SqliteRow) -> Video {
    Video {
        id: r.get(0),
        path: r.get(1),
        size: r.get(2),
        mtime_ns: r.get(3),
        hash: r.get(4),
        duration: r.get(5),
        fps: r.get(6),
        width: r.get(7),
        height: r.get(8),
        codec: r.get(9),
        rotation: r.get(10),
        status: r.get(11),
        error: r.get(12),
        frame_count: r.get(13),
        indexed_at: r.get(14),
    }
}

fn frame_from(r: &sqlx::sqlite::SqliteRow) -> Frame {
    Frame {
        id: r.get(0),
        video_id: r.get(1),
        seq: r.get(2),
        start: r.get(3),
        end: r.get(4),
        peak: r.get(5),
        shot: r.get::<i64, _>(6) != 0,
    }
}

fn job_from(r: &sqlx::sqlite::SqliteRow) -> Job {
    let paths: String = r.get(3);
    Job {
        id: r.get(0),
        kind: r.get(1),
        state: r.get(2),
        paths: serde_json::from_str(&paths).unwrap_or_default(),
        created_at: r.get(4),
        started_at: r.get(5),
        finished_at: r.get(6),
        files_total: r.get(7),
        files_done: r.get(8),
        frames_done: r.get(9),
        error: r.get(10),
    }
}

const JOB_COLS: &str =
    "id, kind, state, paths, created_at, started_at, finished_at, files_total, files_done, frames_done, error";

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
        Ok(Self {
            read,
            write,
            path: path.to_path_buf(),
        })
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

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    // ------------------------------------------------------------------ meta

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

    /// The model the stored vectors were made with, and their dimension.
    pub async fn model(&self) -> Result<Option<(String, usize)>> {
        let name = self.meta("model").await?;
        let dim = self.meta("dim").await?.and_then(|d| d.parse().ok());
        Ok(name.zip(dim))
    }

    pub async fn set_model(&self, name: &str, dim: usize) -> Result<()> {
        self.set_meta("model", name).await?;
        self.set_meta("dim", &dim.to_string()).await
    }

    /// Remembers where the active model's package is (a library opened without
    /// `--model` uses it).
    pub async fn set_model_dir(&self, dir: &Path) -> Result<()> {
        self.set_meta("model_dir", &dir.display().to_string()).await
    }

    /// The package folder of the active model, when the library has recorded it.
    pub async fn model_dir(&self) -> Result<Option<PathBuf>> {
        Ok(self.meta("model_dir").await?.map(PathBuf::from))
    }

    /// The switch under way to another model, if any.
    pub async fn pending_switch(&self) -> Result<Option<Switch>> {
        Ok(match self.meta("switch").await? {
            Some(s) => serde_json::from_str(&s).ok(),
            None => None,
        })
    }

    /// The switch under way with its progress: frames done and in all, and an estimate
    /// of the seconds left from the rate so far.
    pub async fn switch_status(&self) -> Result<Option<SwitchStatus>> {
        let Some(s) = self.pending_switch().await? else {
            return Ok(None);
        };
        let (missing, total) = self.vectors_missing(&s.model).await?;
        let job = self.job(s.job_id).await?;
        let rate = job.as_ref().and_then(|j| {
            let elapsed = (now() - j.started_at?).max(1) as f64;
            (j.frames_done > 0).then(|| j.frames_done as f64 / elapsed)
        });
        Ok(Some(SwitchStatus {
            model: s.model,
            dir: s.dir,
            job_id: s.job_id,
            state: job.map(|j| j.state),
            frames_done: total - missing,
            frames_total: total,
            eta_seconds: rate.map(|r| missing as f64 / r),
        }))
    }

    /// Records a switch to another model (its vectors are added alongside).
    pub async fn begin_switch(&self, s: &Switch) -> Result<()> {
        self.set_meta("switch", &serde_json::to_string(s).expect("switch serialises")).await
    }

    /// Frames of `model` still to embed, and of all frames: (missing, total).
    pub async fn vectors_missing(&self, model: &str) -> Result<(i64, i64)> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM frames f WHERE NOT EXISTS
                       (SELECT 1 FROM embeddings e WHERE e.frame_id = f.id AND e.model = ?)),
                    (SELECT COUNT(*) FROM frames)",
        )
        .bind(model)
        .fetch_one(&self.read)
        .await
        .map_err(q("counting vectors"))?;
        Ok((r.get(0), r.get(1)))
    }

    /// Indexed videos with frames that have no vector of `model`, by id.
    pub async fn videos_missing(&self, model: &str) -> Result<Vec<Video>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VIDEO_COLS} FROM videos v WHERE v.status = 'indexed' AND EXISTS
               (SELECT 1 FROM frames f WHERE f.video_id = v.id AND NOT EXISTS
                  (SELECT 1 FROM embeddings e WHERE e.frame_id = f.id AND e.model = ?))
             ORDER BY v.id"
        )))
        .bind(model)
        .fetch_all(&self.read)
        .await
        .map(|rows| rows.iter().map(video_from).collect())
        .map_err(q("listing videos to re-embed"))
    }

    /// Adds `model`'s vectors for frames, in one transaction (frames deleted meanwhile
    /// are skipped). Returns how many were written.
    pub async fn put_vectors(&self, model: &str, vectors: &[(i64, Vec<f32>)]) -> Result<u64> {
        let mut tx = self.begin_write().await.map_err(q("starting a transaction"))?;
        let mut n = 0;
        for (fid, v) in vectors {
            n += sqlx::query(
                "INSERT INTO embeddings(frame_id, model, vector) SELECT id, ?, ? FROM frames WHERE id = ?
                 ON CONFLICT(frame_id, model) DO UPDATE SET vector = excluded.vector",
            )
            .bind(model)
            .bind(vector_to_blob(v))
            .bind(fid)
            .execute(&mut *tx)
            .await
            .map_err(q("inserting an embedding"))?
            .rows_affected();
        }
        tx.commit().await.map_err(q("committing embeddings"))?;
        Ok(n)
    }

    /// Makes the switch's model the active one, in one transaction: its name, dimension
    /// and folder become the library's, the old model's vectors go, and videos that
    /// could not be re-embedded (their file was gone or changed) keep their row as
    /// failed with the reason, their frames gone. Returns the new generation and the
    /// videos that were not re-embedded.
    pub async fn finish_switch(&self, s: &Switch) -> Result<(u64, Vec<i64>)> {
        let mut tx = self.begin_write().await.map_err(q("starting a transaction"))?;
        let stale: Vec<i64> = sqlx::query(
            "SELECT DISTINCT f.video_id FROM frames f WHERE NOT EXISTS
               (SELECT 1 FROM embeddings e WHERE e.frame_id = f.id AND e.model = ?)",
        )
        .bind(&s.model)
        .fetch_all(&mut *tx)
        .await
        .map_err(q("listing videos not re-embedded"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
        for id in &stale {
            sqlx::query("DELETE FROM frames WHERE video_id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(q("removing frames"))?;
            sqlx::query("UPDATE videos SET status = 'failed', frame_count = 0, error = ? WHERE id = ?")
                .bind(format!(
                    "not re-embedded with {} (the file was missing or changed during the switch): index it again",
                    s.model
                ))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(q("recording a video not re-embedded"))?;
        }
        sqlx::query("DELETE FROM embeddings WHERE model <> ?")
            .bind(&s.model)
            .execute(&mut *tx)
            .await
            .map_err(q("removing the old model's vectors"))?;
        for (k, v) in [
            ("model", s.model.clone()),
            ("dim", s.dim.to_string()),
            ("model_dir", s.dir.display().to_string()),
        ] {
            sqlx::query("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
                .bind(k)
                .bind(v)
                .execute(&mut *tx)
                .await
                .map_err(q("recording the model"))?;
        }
        sqlx::query("DELETE FROM meta WHERE key = 'switch'")
            .execute(&mut *tx)
            .await
            .map_err(q("ending the switch"))?;
        let generation = bump_generation(&mut tx).await?;
        tx.commit().await.map_err(q("committing the switch"))?;
        Ok((generation, stale))
    }

    /// Abandons a switch: the new model's vectors go, the active model stays.
    pub async fn cancel_switch(&self) -> Result<()> {
        let Some(s) = self.pending_switch().await? else {
            return Ok(());
        };
        let mut tx = self.begin_write().await.map_err(q("starting a transaction"))?;
        let active = sqlx::query("SELECT value FROM meta WHERE key = 'model'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("reading meta"))?
            .map(|r| r.get::<String, _>(0));
        if active.as_deref() != Some(s.model.as_str()) {
            sqlx::query("DELETE FROM embeddings WHERE model = ?")
                .bind(&s.model)
                .execute(&mut *tx)
                .await
                .map_err(q("removing the abandoned vectors"))?;
        }
        sqlx::query("DELETE FROM meta WHERE key = 'switch'")
            .execute(&mut *tx)
            .await
            .map_err(q("ending the switch"))?;
        tx.commit().await.map_err(q("committing"))
    }

    /// Counter bumped by every change to frames or texts.
    pub async fn generation(&self) -> Result<u64> {
        Ok(self.meta("generation").await?.and_then(|g| g.parse().ok()).unwrap_or(0))
    }

    // ------------------------------------------------------------------ videos

    pub async fn video(&self, id: i64) -> Result<Option<Video>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VIDEO_COLS} FROM videos WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.read)
        .await
        .map(|r| r.as_ref().map(video_from))
        .map_err(q("reading a video"))
    }

    pub async fn video_by_path(&self, path: &str) -> Result<Option<Video>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VIDEO_COLS} FROM videos WHERE path = ?"
        )))
        .bind(path)
        .fetch_optional(&self.read)
        .await
        .map(|r| r.as_ref().map(video_from))
        .map_err(q("reading a video"))
    }

    pub async fn videos(&self) -> Result<Vec<Video>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VIDEO_COLS} FROM videos ORDER BY path"
        )))
        .fetch_all(&self.read)
        .await
        .map(|rows| rows.iter().map(video_from).collect())
        .map_err(q("listing videos"))
    }

    /// Writes an indexed video in one transaction, replacing any earlier row for the
    /// same path (its frames, vectors, thumbnails and texts go with it).
    pub async fn put_video(&self, v: &NewVideo, model: &str) -> Result<Written> {
        let mut tx = self.begin_write().await.map_err(q("starting a transaction"))?;
        let replaced: Vec<(i64, i64)> = sqlx::query(
            "SELECT v.id, f.id FROM videos v LEFT JOIN frames f ON f.video_id = v.id WHERE v.path = ?",
        )
        .bind(&v.path)
        .fetch_all(&mut *tx)
        .await
        .map_err(q("reading the replaced video"))?
        .iter()
        .map(|r| (r.get(0), r.get::<Option<i64>, _>(1).unwrap_or(0)))
        .collect();
        sqlx::query("DELETE FROM videos WHERE path = ?")
            .bind(&v.path)
            .execute(&mut *tx)
            .await
            .map_err(q("replacing a video"))?;
        let id = next_ids(&mut tx, "videos", 1).await?;
        sqlx::query(
            "INSERT INTO videos(id, path, size, mtime_ns, hash, duration, fps, width, height, codec, rotation, status, frame_count, indexed_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'indexed', ?, ?)",
        )
        .bind(id)
        .bind(&v.path)
        .bind(v.size)
        .bind(v.mtime_ns)
        .bind(&v.hash)
        .bind(v.duration)
        .bind(v.fps)
        .bind(v.width)
        .bind(v.height)
        .bind(&v.codec)
        .bind(v.rotation)
        .bind(v.frames.len() as i64)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(q("inserting a video"))?;
        let first = next_ids(&mut tx, "frames", v.frames.len() as i64).await?;
        let mut ids = Vec::with_capacity(v.frames.len());
        for (seq, f) in v.frames.iter().enumerate() {
            let fid = first + seq as i64;
            sqlx::query("INSERT INTO frames(id, video_id, seq, start, \"end\", peak, shot) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .bind(fid)
                .bind(id)
                .bind(seq as i64)
                .bind(f.start)
                .bind(f.end)
                .bind(f.peak)
                .bind(f.shot as i64)
                .execute(&mut *tx)
                .await
                .map_err(q("inserting a frame"))?;
            for (m, vector) in std::iter::once((model, &f.vector)).chain(f.extra_vectors.iter().map(|(m, v)| (m.as_str(), v))) {
                sqlx::query("INSERT INTO embeddings(frame_id, model, vector) VALUES (?, ?, ?)")
                    .bind(fid)
                    .bind(m)
                    .bind(vector_to_blob(vector))
                    .execute(&mut *tx)
                    .await
                    .map_err(q("inserting an embedding"))?;
            }
            if !f.thumbnail.is_empty() {
                sqlx::query("INSERT INTO thumbnails(frame_id, jpeg) VALUES (?, ?)")
                    .bind(fid)
                    .bind(&f.thumbnail)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("inserting a thumbnail"))?;
            }
            ids.push(fid);
        }
        for t in &v.texts {
            sqlx::query("INSERT INTO texts(video_id, kind, start, \"end\", text) VALUES (?, ?, ?, ?, ?)")
                .bind(id)
                .bind(t.kind)
                .bind(t.start)
                .bind(t.end)
                .bind(&t.text)
                .execute(&mut *tx)
                .await
                .map_err(q("inserting a text"))?;
        }
        let generation = bump_generation(&mut tx).await?;
        tx.commit().await.map_err(q("committing a video"))?;
        Ok(Written {
            video_id: id,
            frame_ids: ids,
            replaced_video: replaced.first().map(|r| r.0),
            replaced_frames: replaced.iter().map(|r| r.1).filter(|f| *f > 0).collect(),
            generation,
        })
    }

    /// Records that a file could not be indexed. A file that was indexed before keeps
    /// its frames (nothing already indexed is lost); only the error is noted.
    pub async fn put_failed(&self, path: &str, size: i64, mtime_ns: i64, hash: &str, error: &str) -> Result<()> {
        let mut tx = self.begin_write().await.map_err(q("starting a transaction"))?;
        let existing: Option<(i64, String)> = sqlx::query("SELECT id, status FROM videos WHERE path = ?")
            .bind(path)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("reading a video"))?
            .map(|r| (r.get(0), r.get(1)));
        match existing {
            Some((id, status)) if status == "indexed" => {
                sqlx::query("UPDATE videos SET error = ? WHERE id = ?")
                    .bind(error)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("noting an error"))?;
            }
            Some((id, _)) => {
                sqlx::query(
                    "UPDATE videos SET size = ?, mtime_ns = ?, hash = ?, status = 'failed', error = ?, indexed_at = ? WHERE id = ?",
                )
                .bind(size)
                .bind(mtime_ns)
                .bind(hash)
                .bind(error)
                .bind(now())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(q("recording a failed file"))?;
            }
            None => {
                let id = next_ids(&mut tx, "videos", 1).await?;
                sqlx::query(
                    "INSERT INTO videos(id, path, size, mtime_ns, hash, status, error, indexed_at) VALUES (?, ?, ?, ?, ?, 'failed', ?, ?)",
                )
                .bind(id)
                .bind(path)
                .bind(size)
                .bind(mtime_ns)
                .bind(hash)
                .bind(error)
                .bind(now())
                .execute(&mut *tx)
                .await
                .map_err(q("recording a failed file"))?;
            }
        }
        tx.commit().await.map_err(q("committing a failed file"))
    }

    /// Deletes a video and everything derived from it; returns the frame ids that were
    /// removed (tombstones for the vector index) and the new generation.
    pub async fn remove_video(&self, id: i64) -> Result<Option<(Vec<i64>, u64)>> {
        let mut tx = self.begin_write().await.map_err(q("starting a transaction"))?;
        let frames: Vec<i64> = sqlx::query("SELECT id FROM frames WHERE video_id = ?")
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("listing frames"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let n = sqlx::query("DELETE FROM videos WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(q("removing a video"))?
            .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let generation = bump_generation(&mut tx).await?;
        tx.commit().await.map_err(q("committing a removal"))?;
        Ok(Some((frames, generation)))
    }

    /// Deletes every video (and so every frame, vector, thumbnail and text).
    pub async fn clear_videos(&self) -> Result<()> {
        let mut tx = self.begin_write().await.map_err(q("starting a transaction"))?;
        sqlx::query("DELETE FROM videos")
            .execute(&mut *tx)
            .await
            .map_err(q("clearing videos"))?;
        bump_generation(&mut tx).await?;
        tx.commit().await.map_err(q("committing"))
    }

    // ------------------------------------------------------------------ frames

    pub async fn frames_of(&self, video_id: i64) -> Result<Vec<Frame>> {
        sqlx::query("SELECT id, video_id, seq, start, \"end\", peak, shot FROM frames WHERE video_id = ? ORDER BY seq")
            .bind(video_id)
            .fetch_all(&self.read)
            .await
            .map(|rows| rows.iter().map(frame_from).collect())
            .map_err(q("listing frames"))
    }

    /// Frames by id (missing ids, i.e. deleted frames, are simply absent).
    pub async fn frames_by_ids(&self, ids: &[i64]) -> Result<Vec<Frame>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!("SELECT id, video_id, seq, start, \"end\", peak, shot FROM frames WHERE id IN ({marks})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id);
            }
            let rows = query.fetch_all(&self.read).await.map_err(q("reading frames"))?;
            out.extend(rows.iter().map(frame_from));
        }
        Ok(out)
    }

    /// (frame id, vector) of a video's frames in order, `model`'s vectors.
    pub async fn vectors_of(&self, video_id: i64, model: &str) -> Result<Vec<(i64, Vec<f32>)>> {
        sqlx::query(
            "SELECT f.id, e.vector FROM frames f JOIN embeddings e ON e.frame_id = f.id AND e.model = ?
             WHERE f.video_id = ? ORDER BY f.seq",
        )
        .bind(model)
        .bind(video_id)
            .fetch_all(&self.read)
            .await
            .map(|rows| rows.iter().map(|r| (r.get(0), blob_to_vector(r.get::<&[u8], _>(1)))).collect())
            .map_err(q("reading vectors"))
    }

    /// (frame id, vector) of `model` for every frame with id > `after`, in id order,
    /// `limit` at a time.
    pub async fn vectors_after(&self, after: i64, limit: i64, model: &str) -> Result<Vec<(i64, Vec<f32>)>> {
        sqlx::query("SELECT frame_id, vector FROM embeddings WHERE model = ? AND frame_id > ? ORDER BY frame_id LIMIT ?")
            .bind(model)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.read)
            .await
            .map(|rows| {
                rows.iter()
                    .map(|r| (r.get(0), blob_to_vector(r.get::<&[u8], _>(1))))
                    .collect()
            })
            .map_err(q("reading vectors"))
    }

    /// Every stored frame id, ascending.
    pub async fn frame_ids(&self) -> Result<Vec<i64>> {
        sqlx::query("SELECT id FROM frames ORDER BY id")
            .fetch_all(&self.read)
            .await
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .map_err(q("listing frames"))
    }

    pub async fn max_frame_id(&self) -> Result<i64> {
        sqlx::query("SELECT COALESCE(MAX(id), 0) FROM frames")
            .fetch_one(&self.read)
            .await
            .map(|r| r.get(0))
            .map_err(q("reading frames"))
    }

    pub async fn thumbnail(&self, frame_id: i64) -> Result<Option<Vec<u8>>> {
        sqlx::query("SELECT jpeg FROM thumbnails WHERE frame_id = ?")
            .bind(frame_id)
            .fetch_optional(&self.read)
            .await
            .map(|r| r.map(|r| r.get(0)))
            .map_err(q("reading a thumbnail"))
    }

    // ------------------------------------------------------------------ texts

    pub async fn texts(&self) -> Result<Vec<Text>> {
        sqlx::query("SELECT id, video_id, kind, start, \"end\", text FROM texts ORDER BY id")
            .fetch_all(&self.read)
            .await
            .map(|rows| {
                rows.iter()
                    .map(|r| Text {
                        id: r.get(0),
                        video_id: r.get(1),
                        kind: r.get(2),
                        start: r.get(3),
                        end: r.get(4),
                        text: r.get(5),
                    })
                    .collect()
            })
            .map_err(q("reading texts"))
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

    // ------------------------------------------------------------------ jobs

    /// Queues a job, or returns the id of an identical one still waiting to start
    /// (the same kind and paths): asking twice for the same work queues it once.
    pub async fn create_job(&self, kind: &str, paths: &[String]) -> Result<i64> {
        let paths = serde_json::to_string(paths).unwrap_or_else(|_| "[]".into());
        let mut tx = self.begin_write().await.map_err(q("starting a transaction"))?;
        let waiting: Option<i64> =
            sqlx::query("SELECT id FROM jobs WHERE state = 'enqueued' AND kind = ? AND paths = ? ORDER BY id LIMIT 1")
                .bind(kind)
                .bind(&paths)
                .fetch_optional(&mut *tx)
                .await
                .map_err(q("looking for a waiting job"))?
                .map(|r| r.get(0));
        let id = match waiting {
            Some(id) => id,
            None => sqlx::query("INSERT INTO jobs(kind, state, paths, created_at) VALUES (?, 'enqueued', ?, ?) RETURNING id")
                .bind(kind)
                .bind(&paths)
                .bind(now())
                .fetch_one(&mut *tx)
                .await
                .map(|r| r.get(0))
                .map_err(q("creating a job"))?,
        };
        tx.commit().await.map_err(q("committing a job"))?;
        Ok(id)
    }

    pub async fn job(&self, id: i64) -> Result<Option<Job>> {
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map(|r| r.as_ref().map(job_from))
            .map_err(q("reading a job"))
    }

    pub async fn jobs(&self, limit: i64) -> Result<Vec<Job>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLS} FROM jobs ORDER BY id DESC LIMIT ?"
        )))
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map(|rows| rows.iter().map(job_from).collect())
        .map_err(q("listing jobs"))
    }

    /// Jobs waiting to run, oldest first.
    pub async fn enqueued_jobs(&self) -> Result<Vec<Job>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLS} FROM jobs WHERE state = 'enqueued' ORDER BY id"
        )))
        .fetch_all(&self.read)
        .await
        .map(|rows| rows.iter().map(job_from).collect())
        .map_err(q("listing jobs"))
    }

    /// Puts jobs a dead process left in `processing` back in the queue; returns how many.
    pub async fn requeue_interrupted(&self) -> Result<u64> {
        sqlx::query("UPDATE jobs SET state = 'enqueued' WHERE state = 'processing'")
            .execute(&self.write)
            .await
            .map(|r| r.rows_affected())
            .map_err(q("re-queueing jobs"))
    }

    /// Marks a queued (or interrupted) job as running; false when it was canceled or
    /// has ended meanwhile, and must not run.
    pub async fn start_job(&self, id: i64, files_total: i64) -> Result<bool> {
        sqlx::query(
            "UPDATE jobs SET state = 'processing', started_at = COALESCE(started_at, ?), files_total = ?
             WHERE id = ? AND state IN ('enqueued', 'processing')",
        )
        .bind(now())
        .bind(files_total)
        .bind(id)
        .execute(&self.write)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(q("starting a job"))
    }

    pub async fn job_progress(&self, id: i64, files_done: i64, frames_done: i64) -> Result<()> {
        sqlx::query("UPDATE jobs SET files_done = ?, frames_done = ? WHERE id = ?")
            .bind(files_done)
            .bind(frames_done)
            .bind(id)
            .execute(&self.write)
            .await
            .map(|_| ())
            .map_err(q("updating a job"))
    }

    pub async fn finish_job(&self, id: i64, state: &str, error: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id = ?")
            .bind(state)
            .bind(error)
            .bind(now())
            .bind(id)
            .execute(&self.write)
            .await
            .map(|_| ())
            .map_err(q("finishing a job"))
    }

    /// Marks a job canceled unless it already ended; returns whether it was still live.
    pub async fn cancel_job(&self, id: i64) -> Result<bool> {
        sqlx::query(
            "UPDATE jobs SET state = 'canceled', finished_at = ? WHERE id = ? AND state IN ('enqueued', 'processing')",
        )
        .bind(now())
        .bind(id)
        .execute(&self.write)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(q("canceling a job"))
    }

    pub async fn put_job_file(&self, job: i64, f: &JobFile) -> Result<()> {
        sqlx::query(
            "INSERT INTO job_files(job_id, path, state, error, frames) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT(job_id, path) DO UPDATE SET state = excluded.state, error = excluded.error, frames = excluded.frames",
        )
        .bind(job)
        .bind(&f.path)
        .bind(&f.state)
        .bind(&f.error)
        .bind(f.frames)
        .execute(&self.write)
        .await
        .map(|_| ())
        .map_err(q("recording a file result"))
    }

    pub async fn job_files(&self, job: i64) -> Result<Vec<JobFile>> {
        sqlx::query("SELECT path, state, error, frames FROM job_files WHERE job_id = ? ORDER BY path")
            .bind(job)
            .fetch_all(&self.read)
            .await
            .map(|rows| {
                rows.iter()
                    .map(|r| JobFile {
                        path: r.get(0),
                        state: r.get(1),
                        error: r.get(2),
                        frames: r.get(3),
                    })
                    .collect()
            })
            .map_err(q("listing file results"))
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
