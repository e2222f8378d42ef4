//! Videos and their frames, vectors and thumbnails.

use serde::Serialize;
use sqlx::Row;

use super::*;

text_enum! {
    /// Whether a video is searchable.
    VideoStatus {
        /// Indexed: searchable.
        Indexed = "indexed",
        /// Could not be indexed (the error says why); nothing of it is searchable.
        Failed = "failed",
    }
}

/// A video row.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Video {
    pub id: VideoId,
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
    pub status: VideoStatus,
    pub error: Option<String>,
    pub frame_count: i64,
    pub indexed_at: i64,
}

/// A frame row, with the path of its video.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Frame {
    pub id: FrameId,
    pub video_id: VideoId,
    pub seq: i64,
    pub start: f64,
    pub end: f64,
    pub peak: f64,
    pub shot: bool,
}

/// What is written for one successfully indexed video.
#[derive(Clone, Debug, Default)]
pub struct NewVideo {
    /// Absolute path of the file (its identity in the library).
    pub path: String,
    /// Size in bytes.
    pub size: i64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Sampled content hash (see `library::identity`).
    pub hash: String,
    /// Seconds.
    pub duration: f64,
    /// Average frame rate.
    pub fps: f64,
    /// Display width (after rotation).
    pub width: i64,
    /// Display height (after rotation).
    pub height: i64,
    /// Video codec name.
    pub codec: String,
    /// Clockwise display rotation in degrees.
    pub rotation: i64,
    /// Its sampled frames, in order.
    pub frames: Vec<NewFrame>,
    /// Subtitle cues, title and file name.
    pub texts: Vec<NewText>,
}

#[derive(Clone, Debug, Default)]
/// A sampled frame to store: the vector at `peak` stands for [start, end).
pub struct NewFrame {
    /// Seconds from the start of the video.
    pub start: f64,
    /// Where the next kept frame starts.
    pub end: f64,
    /// The time of the picture itself.
    pub peak: f64,
    /// Sampled at a shot change.
    pub shot: bool,
    /// The active model's vector (unit length).
    pub vector: Vec<f32>,
    /// Vectors of other models (the one a switch is moving to), by model name.
    pub extra_vectors: Vec<(String, Vec<f32>)>,
    /// JPEG thumbnail (empty: none).
    pub thumbnail: Vec<u8>,
}

/// What [`Store::put_video`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub video_id: VideoId,
    /// The new frames' ids, in order.
    pub frame_ids: Vec<FrameId>,
    /// The new texts' ids, in the order of `NewVideo::texts`.
    pub text_ids: Vec<i64>,
    /// The earlier row of the same path and its frames, now deleted.
    pub replaced_video: Option<VideoId>,
    pub replaced_frames: Vec<FrameId>,
    pub generation: u64,
}

/// What [`Store::remove_video`] deleted.
#[derive(Clone, Debug, PartialEq)]
pub struct Removed {
    /// The video's frames (tombstones for the vector index).
    pub frames: Vec<FrameId>,
    pub generation: u64,
}

/// A video's frames as one run of ids: `first .. first + count`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameRun {
    pub video: VideoId,
    pub first: FrameId,
    pub count: i64,
}

pub(super) const VIDEO_COLS: &str = "id, path, size, mtime_ns, hash, duration, fps, width, height, codec, rotation, status, error, frame_count, indexed_at";

pub(super) fn video_from(r: &sqlx::any::AnyRow) -> Video {
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
        status: VideoStatus::parse(r.get(11)).unwrap_or(VideoStatus::Failed),
        error: r.get(12),
        frame_count: r.get(13),
        indexed_at: r.get(14),
    }
}

pub(super) fn frame_from(r: &sqlx::any::AnyRow) -> Frame {
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

impl Store {
    /// Deletes the video row of `path` (its frames, vectors, thumbnails and texts go with
    /// it); returns (video id, frame id) of what went, a frame id of 0 for a video without
    /// frames.
    async fn delete_path(&self, tx: &mut Tx, path: &str) -> Result<Vec<(VideoId, FrameId)>> {
        let replaced: Vec<(VideoId, FrameId)> =
            sqlx::query("SELECT v.id, f.id FROM videos v LEFT JOIN frames f ON f.video_id = v.id WHERE v.path = $1")
                .bind(path)
                .fetch_all(&mut **tx)
                .await
                .map_err(self.q("reading the replaced video"))?
                .iter()
                .map(|r| (r.get(0), r.get::<Option<FrameId>, _>(1).unwrap_or(0)))
                .collect();
        sqlx::query("DELETE FROM videos WHERE path = $1")
            .bind(path)
            .execute(&mut **tx)
            .await
            .map_err(self.q("replacing a video"))?;
        Ok(replaced)
    }

    /// The row of an indexed video `id`.
    async fn insert_video(&self, tx: &mut Tx, id: VideoId, v: &NewVideo) -> Result<()> {
        sqlx::query(
            "INSERT INTO videos(id, path, size, mtime_ns, hash, duration, fps, width, height, codec, rotation, status, frame_count, indexed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'indexed', $12, $13)",
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
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(self.q("inserting a video"))
    }

    /// Frame `fid`, the `seq`th of video `video`, with its vectors (`model`'s and any
    /// other's) and its thumbnail.
    async fn insert_frame(
        &self,
        tx: &mut Tx,
        video: VideoId,
        seq: usize,
        fid: FrameId,
        f: &NewFrame,
        model: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO frames(id, video_id, seq, start, \"end\", peak, shot) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(fid)
        .bind(video)
        .bind(seq as i64)
        .bind(f.start)
        .bind(f.end)
        .bind(f.peak)
        .bind(f.shot as i64)
        .execute(&mut **tx)
        .await
        .map_err(self.q("inserting a frame"))?;
        for (m, vector) in
            std::iter::once((model, &f.vector)).chain(f.extra_vectors.iter().map(|(m, v)| (m.as_str(), v)))
        {
            sqlx::query("INSERT INTO embeddings(frame_id, model, vector) VALUES ($1, $2, $3)")
                .bind(fid)
                .bind(m)
                .bind(vector_to_blob(vector))
                .execute(&mut **tx)
                .await
                .map_err(self.q("inserting an embedding"))?;
        }
        if !f.thumbnail.is_empty() {
            sqlx::query("INSERT INTO thumbnails(frame_id, jpeg) VALUES ($1, $2)")
                .bind(fid)
                .bind(&f.thumbnail)
                .execute(&mut **tx)
                .await
                .map_err(self.q("inserting a thumbnail"))?;
        }
        Ok(())
    }
}

impl Store {
    /// The video's vectors into the pgvector tables of their models, when the library
    /// keeps them there (same transaction as the frames).
    async fn pg_write_video(&self, tx: &mut Tx, v: &NewVideo, ids: &[FrameId], model: &str) -> Result<()> {
        let active: Vec<(FrameId, &[f32])> = ids
            .iter()
            .zip(&v.frames)
            .map(|(id, f)| (*id, f.vector.as_slice()))
            .collect();
        self.pg_write_model(tx, model, &active).await?;
        let mut others: Vec<&str> = v
            .frames
            .iter()
            .flat_map(|f| f.extra_vectors.iter().map(|(m, _)| m.as_str()))
            .collect();
        others.sort_unstable();
        others.dedup();
        for m in others {
            let items: Vec<(FrameId, &[f32])> = ids
                .iter()
                .zip(&v.frames)
                .filter_map(|(id, f)| {
                    f.extra_vectors
                        .iter()
                        .find(|(n, _)| n == m)
                        .map(|(_, x)| (*id, x.as_slice()))
                })
                .collect();
            self.pg_write_model(tx, m, &items).await?;
        }
        Ok(())
    }

    pub async fn video(&self, id: VideoId) -> Result<Option<Video>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VIDEO_COLS} FROM videos WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.read)
        .await
        .map(|r| r.as_ref().map(video_from))
        .map_err(self.q("reading a video"))
    }

    pub async fn video_by_path(&self, path: &str) -> Result<Option<Video>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VIDEO_COLS} FROM videos WHERE path = $1"
        )))
        .bind(path)
        .fetch_optional(&self.read)
        .await
        .map(|r| r.as_ref().map(video_from))
        .map_err(self.q("reading a video"))
    }

    pub async fn videos(&self) -> Result<Vec<Video>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VIDEO_COLS} FROM videos ORDER BY path"
        )))
        .fetch_all(&self.read)
        .await
        .map(|rows| rows.iter().map(video_from).collect())
        .map_err(self.q("listing videos"))
    }

    /// Writes an indexed video in one transaction, replacing any earlier row for the
    /// same path (its frames, vectors, thumbnails and texts go with it).
    pub async fn put_video(&self, v: &NewVideo, model: &str) -> Result<Written> {
        let mut tx = self.begin_write().await.map_err(self.q("starting a transaction"))?;
        let replaced = self.delete_path(&mut tx, &v.path).await?;
        let id = self.next_ids(&mut tx, "videos", 1).await?;
        self.insert_video(&mut tx, id, v).await?;
        let first = self.next_ids(&mut tx, "frames", v.frames.len() as i64).await?;
        let mut ids = Vec::with_capacity(v.frames.len());
        for (seq, f) in v.frames.iter().enumerate() {
            let fid = first + seq as i64;
            self.insert_frame(&mut tx, id, seq, fid, f, model).await?;
            ids.push(fid);
        }
        self.pg_write_video(&mut tx, v, &ids, model).await?;
        let mut text_ids = Vec::with_capacity(v.texts.len());
        for t in &v.texts {
            let r = sqlx::query(
                "INSERT INTO texts(video_id, kind, start, \"end\", text, quad, words) \
                 VALUES ($1, $2, CAST($3 AS DOUBLE PRECISION), CAST($4 AS DOUBLE PRECISION), $5, $6, $7) RETURNING id",
            )
            .bind(id)
            .bind(t.kind.as_str())
            .bind(nullable_seconds(t.start))
            .bind(nullable_seconds(t.end))
            .bind(&t.text)
            .bind(super::texts::quad_text(t.quad.as_ref()))
            .bind(super::texts::words_text(t.words.as_ref()))
            .fetch_one(&mut *tx)
            .await
            .map_err(self.q("inserting a text"))?;
            text_ids.push(r.get(0));
        }
        let generation = self.bump_generation(&mut tx).await?;
        tx.commit().await.map_err(self.q("committing a video"))?;
        Ok(Written {
            video_id: id,
            frame_ids: ids,
            text_ids,
            replaced_video: replaced.first().map(|r| r.0),
            replaced_frames: replaced.iter().map(|r| r.1).filter(|f| *f > 0).collect(),
            generation,
        })
    }

    /// Records that a file could not be indexed. A file that was indexed before keeps
    /// its frames (nothing already indexed is lost); only the error is noted.
    pub async fn put_failed(&self, path: &str, size: i64, mtime_ns: i64, hash: &str, error: &str) -> Result<()> {
        let mut tx = self.begin_write().await.map_err(self.q("starting a transaction"))?;
        let existing: Option<(VideoId, String)> = sqlx::query("SELECT id, status FROM videos WHERE path = $1")
            .bind(path)
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.q("reading a video"))?
            .map(|r| (r.get(0), r.get(1)));
        match existing {
            Some((id, status)) if status == VideoStatus::Indexed.as_str() => {
                sqlx::query("UPDATE videos SET error = $1 WHERE id = $2")
                    .bind(error)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.q("noting an error"))?;
            }
            Some((id, _)) => {
                sqlx::query(
                    "UPDATE videos SET size = $1, mtime_ns = $2, hash = $3, status = 'failed', error = $4, indexed_at = $5 WHERE id = $6",
                )
                .bind(size)
                .bind(mtime_ns)
                .bind(hash)
                .bind(error)
                .bind(now())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.q("recording a failed file"))?;
            }
            None => {
                let id = self.next_ids(&mut tx, "videos", 1).await?;
                sqlx::query(
                    "INSERT INTO videos(id, path, size, mtime_ns, hash, status, error, indexed_at) VALUES ($1, $2, $3, $4, $5, 'failed', $6, $7)",
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
                .map_err(self.q("recording a failed file"))?;
            }
        }
        tx.commit().await.map_err(self.q("committing a failed file"))
    }

    /// Deletes a video and everything derived from it; returns the frame ids that were
    /// removed and the new generation (None: no such video).
    pub async fn remove_video(&self, id: VideoId) -> Result<Option<Removed>> {
        let mut tx = self.begin_write().await.map_err(self.q("starting a transaction"))?;
        let frames: Vec<FrameId> = sqlx::query("SELECT id FROM frames WHERE video_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(self.q("listing frames"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let n = sqlx::query("DELETE FROM videos WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.q("removing a video"))?
            .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let generation = self.bump_generation(&mut tx).await?;
        tx.commit().await.map_err(self.q("committing a removal"))?;
        Ok(Some(Removed { frames, generation }))
    }

    pub async fn frames_of(&self, video_id: VideoId) -> Result<Vec<Frame>> {
        sqlx::query("SELECT id, video_id, seq, start, \"end\", peak, shot FROM frames WHERE video_id = $1 ORDER BY seq")
            .bind(video_id)
            .fetch_all(&self.read)
            .await
            .map(|rows| rows.iter().map(frame_from).collect())
            .map_err(self.q("listing frames"))
    }

    /// The frames of several videos, by video and in order.
    pub async fn frames_of_videos(&self, videos: &[VideoId]) -> Result<Vec<Frame>> {
        let mut out = Vec::new();
        for chunk in videos.chunks(500) {
            let marks = marks(1, chunk.len());
            let sql = format!(
                "SELECT id, video_id, seq, start, \"end\", peak, shot FROM frames WHERE video_id IN ({marks}) ORDER BY video_id, seq"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id);
            }
            let rows = query.fetch_all(&self.read).await.map_err(self.q("listing frames"))?;
            out.extend(rows.iter().map(frame_from));
        }
        Ok(out)
    }

    /// Frames by id (missing ids, i.e. deleted frames, are simply absent).
    pub async fn frames_by_ids(&self, ids: &[FrameId]) -> Result<Vec<Frame>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let marks = marks(1, chunk.len());
            let sql = format!("SELECT id, video_id, seq, start, \"end\", peak, shot FROM frames WHERE id IN ({marks})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id);
            }
            let rows = query.fetch_all(&self.read).await.map_err(self.q("reading frames"))?;
            out.extend(rows.iter().map(frame_from));
        }
        Ok(out)
    }

    /// Each video's frames as one run of ids. A video's frames are written in one
    /// transaction with consecutive ids, so the run is exact.
    pub async fn frame_runs(&self) -> Result<Vec<FrameRun>> {
        sqlx::query("SELECT video_id, MIN(id), COUNT(*) FROM frames GROUP BY video_id")
            .fetch_all(&self.read)
            .await
            .map(|rows| {
                rows.iter()
                    .map(|r| FrameRun {
                        video: r.get(0),
                        first: r.get(1),
                        count: r.get(2),
                    })
                    .collect()
            })
            .map_err(self.q("listing frame runs"))
    }

    /// (frame id, vector) of `model` for the given frames (absent ones are skipped).
    pub async fn vectors_by_ids(&self, model: &str, ids: &[FrameId]) -> Result<Vec<(FrameId, Vec<f32>)>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let marks = marks(2, chunk.len());
            let sql = format!("SELECT frame_id, vector FROM embeddings WHERE model = $1 AND frame_id IN ({marks})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(model);
            for id in chunk {
                query = query.bind(id);
            }
            let rows = query.fetch_all(&self.read).await.map_err(self.q("reading vectors"))?;
            out.extend(rows.iter().map(|r| (r.get(0), blob_to_vector(r.get::<&[u8], _>(1)))));
        }
        Ok(out)
    }

    /// (frame id, vector) of a video's frames in order, `model`'s vectors.
    pub async fn vectors_of(&self, video_id: VideoId, model: &str) -> Result<Vec<(FrameId, Vec<f32>)>> {
        sqlx::query(
            "SELECT f.id, e.vector FROM frames f JOIN embeddings e ON e.frame_id = f.id AND e.model = $1
             WHERE f.video_id = $2 ORDER BY f.seq",
        )
        .bind(model)
        .bind(video_id)
        .fetch_all(&self.read)
        .await
        .map(|rows| {
            rows.iter()
                .map(|r| (r.get(0), blob_to_vector(r.get::<&[u8], _>(1))))
                .collect()
        })
        .map_err(self.q("reading vectors"))
    }

    /// (frame id, vector) of `model` for every frame with id > `after`, in id order,
    /// `limit` at a time.
    pub async fn vectors_after(&self, after: FrameId, limit: i64, model: &str) -> Result<Vec<(FrameId, Vec<f32>)>> {
        sqlx::query(
            "SELECT frame_id, vector FROM embeddings WHERE model = $1 AND frame_id > $2 ORDER BY frame_id LIMIT $3",
        )
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
        .map_err(self.q("reading vectors"))
    }

    /// Every stored frame id, ascending.
    pub async fn frame_ids(&self) -> Result<Vec<FrameId>> {
        sqlx::query("SELECT id FROM frames ORDER BY id")
            .fetch_all(&self.read)
            .await
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .map_err(self.q("listing frames"))
    }

    pub async fn max_frame_id(&self) -> Result<FrameId> {
        sqlx::query("SELECT COALESCE(MAX(id), 0) FROM frames")
            .fetch_one(&self.read)
            .await
            .map(|r| r.get(0))
            .map_err(self.q("reading frames"))
    }

    pub async fn thumbnail(&self, frame_id: FrameId) -> Result<Option<Vec<u8>>> {
        sqlx::query("SELECT jpeg FROM thumbnails WHERE frame_id = $1")
            .bind(frame_id)
            .fetch_optional(&self.read)
            .await
            .map(|r| r.map(|r| r.get(0)))
            .map_err(self.q("reading a thumbnail"))
    }
}

/// A time that may be absent, bound as text and cast back in SQL. sqlx's `Any` driver
/// (0.9) sends a NULL double to PostgreSQL as a NULL *float4*: a connection whose cached
/// statement was first run with an absent time then rejects every real time ("incorrect
/// binary data format in bind parameter"). Rust prints an f64 exactly (shortest
/// round-trip digits, never an exponent), so nothing is lost.
fn nullable_seconds(t: Option<f64>) -> Option<String> {
    t.map(|t| t.to_string())
}
