//! Zero-shot tags of frames, which videos' tags are current, saved probes.

use sqlx::Row;

use super::*;

/// A frame's tag: a label of the vocabulary and its zero-shot probability.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameTag {
    pub frame: FrameId,
    pub label: String,
    pub prob: f32,
}

/// A tagged frame by its place in its video (labels' moments are runs of frames).
#[derive(Clone, Debug, PartialEq)]
pub struct TaggedFrame {
    pub label: String,
    pub video: VideoId,
    /// The frame's place in its video.
    pub seq: i64,
}

/// A time range of a video, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub video: VideoId,
    pub start: f64,
    pub end: f64,
}

/// A tag of a frame inside one of the spans asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanTag {
    /// The span's index in the request.
    pub span: usize,
    pub label: String,
    pub prob: f32,
}

/// A saved few-shot probe: what it is trained from.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SavedProbe {
    pub name: String,
    pub query: String,
    pub likes: Vec<FrameId>,
    pub unlikes: Vec<FrameId>,
}

fn ids_text(ids: &[FrameId]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn ids_of(text: &str) -> Vec<FrameId> {
    text.split(',').filter_map(|t| t.trim().parse().ok()).collect()
}

/// A `frame_tags` row read as (frame id, label, probability).
fn frame_tag_from(r: &sqlx::any::AnyRow) -> FrameTag {
    FrameTag {
        frame: r.get(0),
        label: r.get(1),
        prob: r.get::<f64, _>(2) as f32,
    }
}

impl Store {
    /// How frames are joined to their tags: on SQLite `CROSS JOIN` keeps the frames (of
    /// the videos asked for) as the outer loop, which its planner would otherwise not
    /// always choose; PostgreSQL plans the join itself and has no `CROSS JOIN ... ON`.
    fn tags_join(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "CROSS JOIN",
            Backend::Postgres { .. } => "JOIN",
        }
    }

    /// Indexed videos whose tags are not of `stamp` (never tagged, or tagged with another
    /// vocabulary or model).
    pub async fn videos_to_tag(&self, stamp: &str) -> Result<Vec<VideoId>> {
        sqlx::query(
            "SELECT v.id FROM videos v LEFT JOIN tagged_videos t ON t.video_id = v.id
             WHERE v.status = 'indexed' AND (t.stamp IS NULL OR t.stamp <> $1) ORDER BY v.id",
        )
        .bind(stamp)
        .fetch_all(&self.read)
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .map_err(self.q("listing videos to tag"))
    }

    /// Replaces a video's tags (one transaction). A video removed meanwhile is left alone.
    pub async fn put_tags(&self, video: VideoId, stamp: &str, tags: &[FrameTag]) -> Result<()> {
        let mut tx = self.begin_write().await.map_err(self.q("writing tags"))?;
        let exists = sqlx::query("SELECT 1 FROM videos WHERE id = $1")
            .bind(video)
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.q("writing tags"))?
            .is_some();
        if !exists {
            return Ok(());
        }
        sqlx::query("DELETE FROM frame_tags WHERE frame_id IN (SELECT id FROM frames WHERE video_id = $1)")
            .bind(video)
            .execute(&mut *tx)
            .await
            .map_err(self.q("writing tags"))?;
        for t in tags {
            sqlx::query(
                "INSERT INTO frame_tags(frame_id, label, prob) VALUES ($1, $2, $3) \
                 ON CONFLICT(frame_id, label) DO UPDATE SET prob = excluded.prob",
            )
            .bind(t.frame)
            .bind(&t.label)
            .bind(t.prob)
            .execute(&mut *tx)
            .await
            .map_err(self.q("writing tags"))?;
        }
        sqlx::query(
            "INSERT INTO tagged_videos(video_id, stamp) VALUES ($1, $2) \
             ON CONFLICT(video_id) DO UPDATE SET stamp = excluded.stamp",
        )
        .bind(video)
        .bind(stamp)
        .execute(&mut *tx)
        .await
        .map_err(self.q("writing tags"))?;
        tx.commit().await.map_err(self.q("writing tags"))
    }

    /// Every tagged frame, by label, video, seq.
    pub async fn tagged_frames(&self) -> Result<Vec<TaggedFrame>> {
        sqlx::query(
            "SELECT t.label, f.video_id, f.seq FROM frame_tags t JOIN frames f ON f.id = t.frame_id
             ORDER BY t.label, f.video_id, f.seq",
        )
        .fetch_all(&self.read)
        .await
        .map(|rows| {
            rows.iter()
                .map(|r| TaggedFrame {
                    label: r.get(0),
                    video: r.get(1),
                    seq: r.get(2),
                })
                .collect()
        })
        .map_err(self.q("reading tags"))
    }

    /// The frames tagged with `label` (case-insensitive).
    pub async fn frames_tagged(&self, label: &str) -> Result<Vec<FrameId>> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT frame_id FROM frame_tags WHERE label = $1 COLLATE NOCASE",
            Backend::Postgres { .. } => "SELECT frame_id FROM frame_tags WHERE lower(label) = lower($1)",
        };
        sqlx::query(sql)
            .bind(label)
            .fetch_all(&self.read)
            .await
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .map_err(self.q("reading tags"))
    }

    /// The tags of several videos' frames, by frame id.
    pub async fn tags_of_videos(&self, videos: &[VideoId]) -> Result<Vec<FrameTag>> {
        let mut out = Vec::new();
        for chunk in videos.chunks(500) {
            let (marks, join) = (marks(1, chunk.len()), self.tags_join());
            let sql = format!(
                "SELECT t.frame_id, t.label, t.prob FROM frames f {join} frame_tags t ON t.frame_id = f.id
                 WHERE f.video_id IN ({marks}) ORDER BY t.frame_id"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id);
            }
            let rows = query.fetch_all(&self.read).await.map_err(self.q("reading tags"))?;
            out.extend(rows.iter().map(frame_tag_from));
        }
        Ok(out)
    }

    /// A video's tags, by frame id.
    pub async fn tags_of_video(&self, video: VideoId) -> Result<Vec<FrameTag>> {
        let join = self.tags_join();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.frame_id, t.label, t.prob FROM frames f {join} frame_tags t ON t.frame_id = f.id
             WHERE f.video_id = $1 ORDER BY t.frame_id"
        )))
        .bind(video)
        .fetch_all(&self.read)
        .await
        .map(|rows| rows.iter().map(frame_tag_from).collect())
        .map_err(self.q("reading tags"))
    }

    /// The tags of the frames inside time spans of videos, each with its span's index.
    /// One query for all spans, each answered from the frames index (only the frames
    /// inside a span are read).
    pub async fn tags_in_spans(&self, spans: &[Span]) -> Result<Vec<SpanTag>> {
        let mut out = Vec::new();
        for (c, chunk) in spans.chunks(100).enumerate() {
            let conds = (0..chunk.len())
                .map(|i| {
                    format!(
                        "(f.video_id = ${} AND f.\"end\" > ${} AND f.start < ${})",
                        3 * i + 1,
                        3 * i + 2,
                        3 * i + 3
                    )
                })
                .collect::<Vec<_>>()
                .join(" OR ");
            let join = self.tags_join();
            let sql = format!(
                "SELECT f.video_id, f.start, f.\"end\", t.label, t.prob FROM frames f {join} frame_tags t ON t.frame_id = f.id
                 WHERE {conds}"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for s in chunk {
                query = query.bind(s.video).bind(s.start).bind(s.end);
            }
            let rows = query.fetch_all(&self.read).await.map_err(self.q("reading tags"))?;
            for r in &rows {
                let (v, fs, fe): (VideoId, f64, f64) = (r.get(0), r.get(1), r.get(2));
                for (k, s) in chunk.iter().enumerate() {
                    if s.video == v && fe > s.start && fs < s.end {
                        out.push(SpanTag {
                            span: c * 100 + k,
                            label: r.get(3),
                            prob: r.get::<f64, _>(4) as f32,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Every frame id.
    pub async fn all_frame_ids(&self) -> Result<Vec<FrameId>> {
        sqlx::query("SELECT id FROM frames")
            .fetch_all(&self.read)
            .await
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .map_err(self.q("listing frames"))
    }

    /// Random frame ids that have a vector of `model` (about `n`; fewer in a small library).
    pub async fn sample_frames(&self, model: &str, n: usize) -> Result<Vec<(FrameId, Vec<f32>)>> {
        let (lo, hi): (Option<FrameId>, Option<FrameId>) = sqlx::query("SELECT MIN(id), MAX(id) FROM frames")
            .fetch_one(&self.read)
            .await
            .map(|r| (r.get(0), r.get(1)))
            .map_err(self.q("sampling frames"))?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok(Vec::new());
        };
        let span = (hi - lo + 1) as usize;
        let ids: Vec<FrameId> = if span <= n * 2 {
            (lo..=hi).collect()
        } else {
            // A fixed seed per size: the same library gives the same sample (a probe
            // trains the same way twice).
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ span as u64;
            let mut seen = std::collections::BTreeSet::new();
            while seen.len() < n * 2 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                seen.insert(lo + (state % span as u64) as FrameId);
            }
            seen.into_iter().collect()
        };
        let mut out = self.vectors_by_ids(model, &ids).await?;
        out.truncate(n);
        Ok(out)
    }

    pub async fn probes(&self) -> Result<Vec<SavedProbe>> {
        sqlx::query("SELECT name, query, likes, unlikes FROM probes ORDER BY name")
            .fetch_all(&self.read)
            .await
            .map(|rows| {
                rows.iter()
                    .map(|r| SavedProbe {
                        name: r.get(0),
                        query: r.get(1),
                        likes: ids_of(r.get::<&str, _>(2)),
                        unlikes: ids_of(r.get::<&str, _>(3)),
                    })
                    .collect()
            })
            .map_err(self.q("reading probes"))
    }

    pub async fn put_probe(&self, p: &SavedProbe) -> Result<()> {
        sqlx::query(
            "INSERT INTO probes(name, query, likes, unlikes, created) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT(name) DO UPDATE SET query = excluded.query, likes = excluded.likes, \
             unlikes = excluded.unlikes, created = excluded.created",
        )
        .bind(&p.name)
        .bind(&p.query)
        .bind(ids_text(&p.likes))
        .bind(ids_text(&p.unlikes))
        .bind(now())
        .execute(&self.write)
        .await
        .map(|_| ())
        .map_err(self.q("saving a probe"))
    }

    pub async fn delete_probe(&self, name: &str) -> Result<bool> {
        sqlx::query("DELETE FROM probes WHERE name = $1")
            .bind(name)
            .execute(&self.write)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(self.q("deleting a probe"))
    }
}
