//! The active model, its folder, and a switch to another model under way.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::Row;

use super::videos::{VIDEO_COLS, video_from};
use super::*;

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

/// What [`Store::finish_switch`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Switched {
    pub generation: u64,
    /// Videos that could not be re-embedded (now failed, their frames gone).
    pub stale: Vec<VideoId>,
}

/// See [`Store::switch_status`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SwitchStatus {
    pub model: String,
    pub dir: PathBuf,
    pub job_id: i64,
    pub state: Option<JobState>,
    pub frames_done: i64,
    pub frames_total: i64,
    pub eta_seconds: Option<f64>,
}

impl Store {
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
        self.set_meta("switch", &serde_json::to_string(s).expect("switch serialises"))
            .await
    }

    /// Frames of `model` still to embed, and of all frames: (missing, total).
    pub async fn vectors_missing(&self, model: &str) -> Result<(i64, i64)> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM frames f WHERE NOT EXISTS
                       (SELECT 1 FROM embeddings e WHERE e.frame_id = f.id AND e.model = $1)),
                    (SELECT COUNT(*) FROM frames)",
        )
        .bind(model)
        .fetch_one(&self.read)
        .await
        .map_err(self.q("counting vectors"))?;
        Ok((r.get(0), r.get(1)))
    }

    /// Indexed videos with frames that have no vector of `model`, by id.
    pub async fn videos_missing(&self, model: &str) -> Result<Vec<Video>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VIDEO_COLS} FROM videos v WHERE v.status = 'indexed' AND EXISTS
               (SELECT 1 FROM frames f WHERE f.video_id = v.id AND NOT EXISTS
                  (SELECT 1 FROM embeddings e WHERE e.frame_id = f.id AND e.model = $1))
             ORDER BY v.id"
        )))
        .bind(model)
        .fetch_all(&self.read)
        .await
        .map(|rows| rows.iter().map(video_from).collect())
        .map_err(self.q("listing videos to re-embed"))
    }

    /// Adds `model`'s vectors for frames, in one transaction (frames deleted meanwhile
    /// are skipped). Returns how many were written.
    pub async fn put_vectors(&self, model: &str, vectors: &[(FrameId, Vec<f32>)]) -> Result<u64> {
        let mut tx = self.begin_write().await.map_err(self.q("starting a transaction"))?;
        let mut n = 0;
        for (fid, v) in vectors {
            n += sqlx::query(
                "INSERT INTO embeddings(frame_id, model, vector) SELECT id, $1, $2 FROM frames WHERE id = $3
                 ON CONFLICT(frame_id, model) DO UPDATE SET vector = excluded.vector",
            )
            .bind(model)
            .bind(vector_to_blob(v))
            .bind(fid)
            .execute(&mut *tx)
            .await
            .map_err(self.q("inserting an embedding"))?
            .rows_affected();
        }
        let items: Vec<(FrameId, &[f32])> = vectors.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        self.pg_write_model(&mut tx, model, &items).await?;
        tx.commit().await.map_err(self.q("committing embeddings"))?;
        Ok(n)
    }

    /// Makes the switch's model the active one, in one transaction: its name, dimension
    /// and folder become the library's, the old model's vectors go, and videos that
    /// could not be re-embedded (their file was gone or changed) keep their row as
    /// failed with the reason, their frames gone.
    pub async fn finish_switch(&self, s: &Switch) -> Result<Switched> {
        let mut tx = self.begin_write().await.map_err(self.q("starting a transaction"))?;
        let stale: Vec<VideoId> = sqlx::query(
            "SELECT DISTINCT f.video_id FROM frames f WHERE NOT EXISTS
               (SELECT 1 FROM embeddings e WHERE e.frame_id = f.id AND e.model = $1)",
        )
        .bind(&s.model)
        .fetch_all(&mut *tx)
        .await
        .map_err(self.q("listing videos not re-embedded"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
        for id in &stale {
            sqlx::query("DELETE FROM frames WHERE video_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.q("removing frames"))?;
            sqlx::query("UPDATE videos SET status = 'failed', frame_count = 0, error = $1 WHERE id = $2")
                .bind(format!(
                    "not re-embedded with {} (the file was missing or changed during the switch): index it again",
                    s.model
                ))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.q("recording a video not re-embedded"))?;
        }
        sqlx::query("DELETE FROM embeddings WHERE model <> $1")
            .bind(&s.model)
            .execute(&mut *tx)
            .await
            .map_err(self.q("removing the old model's vectors"))?;
        for (k, v) in [
            ("model", s.model.clone()),
            ("dim", s.dim.to_string()),
            ("model_dir", s.dir.display().to_string()),
        ] {
            sqlx::query(
                "INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await
            .map_err(self.q("recording the model"))?;
        }
        sqlx::query("DELETE FROM meta WHERE key = 'switch'")
            .execute(&mut *tx)
            .await
            .map_err(self.q("ending the switch"))?;
        let generation = self.bump_generation(&mut tx).await?;
        tx.commit().await.map_err(self.q("committing the switch"))?;
        Ok(Switched { generation, stale })
    }

    /// Abandons a switch: the new model's vectors go, the active model stays.
    pub async fn cancel_switch(&self) -> Result<()> {
        let Some(s) = self.pending_switch().await? else {
            return Ok(());
        };
        let mut tx = self.begin_write().await.map_err(self.q("starting a transaction"))?;
        let active = sqlx::query("SELECT value FROM meta WHERE key = 'model'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.q("reading meta"))?
            .map(|r| r.get::<String, _>(0));
        if active.as_deref() != Some(s.model.as_str()) {
            sqlx::query("DELETE FROM embeddings WHERE model = $1")
                .bind(&s.model)
                .execute(&mut *tx)
                .await
                .map_err(self.q("removing the abandoned vectors"))?;
        }
        sqlx::query("DELETE FROM meta WHERE key = 'switch'")
            .execute(&mut *tx)
            .await
            .map_err(self.q("ending the switch"))?;
        tx.commit().await.map_err(self.q("committing"))
    }
}
