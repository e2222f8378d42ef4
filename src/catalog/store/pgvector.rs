//! pgvector: the frame vectors of a library in PostgreSQL searched by the database
//! itself (`--vectors pgvector`), so that no API node holds a graph in memory.
//!
//! A derived index like the embedded HNSW graph, only in the same database: one table
//! per model and dimension (`frame_vectors_<hash of model and dim>`: `frame_id`, a
//! foreign key to `frames` with `ON DELETE CASCADE`, `video_id` for the scope filter,
//! `embedding vector(dim)`), with pgvector's HNSW index over cosine distance and a
//! b-tree on `video_id`. The `embeddings` rows stay the source of truth. A table is
//! written in the same transaction as the frames and vectors it holds (`write`, called
//! by the video and switch writes whenever the model's table exists), deleted rows go
//! with their frames, and a table that is new or behind is filled from `embeddings`
//! (`pg_fill`), so it can always be rebuilt. Vectors of two models never share a table
//! (and a `vector(dim)` column refuses another dimension).
//!
//! Searches run in one read transaction with `hnsw.ef_search` and
//! `hnsw.iterative_scan = relaxed_order` set locally: the scope's videos and frames are
//! SQL predicates applied inside the index scan, which goes on until enough rows pass
//! them (up to `hnsw.max_scan_tuples`), or, when the planner finds them few, an exact
//! sort of the rows the b-tree hands it. Vectors are float32 (`vector`, not `halfvec`):
//! the distances pgvector ranks by are already exact, so no rescoring pass follows.
//!
//! Not here: which backend a library uses (the catalog decides, from `meta.vectors`),
//! the embedded graph.

use sqlx::Row;

use super::connect::Backend;
use super::{Result, Store, StoreError, Tx, blob_to_vector};
use crate::types::{FrameId, VideoId};

/// The oldest pgvector with filters inside the HNSW scan (`hnsw.iterative_scan`).
const MIN_VERSION: (u32, u32) = (0, 8);
/// `hnsw.ef_search`'s largest value.
const MAX_EF: usize = 1000;
/// Rows a filtered search may walk in the index before giving up on more matches.
const MAX_SCAN_TUPLES: usize = 200_000;
/// Vectors per statement when a table is filled from `embeddings`.
const FILL_BATCH: i64 = 2_000;

/// The pgvector table of one model's vectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgTable {
    pub model: String,
    pub dim: usize,
    /// `frame_vectors_<16 hex digits>` (FNV-1a of the model's name and dimension).
    pub name: String,
}

impl PgTable {
    pub fn new(model: &str, dim: usize) -> Self {
        use crate::util::hash::{FNV_OFFSET, fnv1a};
        let h = fnv1a(FNV_OFFSET, format!("{model}\u{0}{dim}").as_bytes());
        Self {
            model: model.to_string(),
            dim,
            name: format!("frame_vectors_{h:016x}"),
        }
    }
}

/// pgvector's text form of a vector: `[0.1,-0.2,...]` (Rust's shortest round-trip
/// decimal for each value, so the float32 read back is the same).
fn vector_text(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 12 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

/// A PostgreSQL array literal of ids: `{1,2,3}`.
fn id_array(ids: impl IntoIterator<Item = i64>) -> String {
    let inner: Vec<String> = ids.into_iter().map(|i| i.to_string()).collect();
    format!("{{{}}}", inner.join(","))
}

/// A PostgreSQL array literal of vectors (each quoted: their commas are not the array's).
fn vector_array<'a>(vs: impl IntoIterator<Item = &'a [f32]>) -> String {
    let inner: Vec<String> = vs.into_iter().map(|v| format!("\"{}\"", vector_text(v))).collect();
    format!("{{{}}}", inner.join(","))
}

/// `(major, minor)` of a version such as `0.8.6`.
fn major_minor(v: &str) -> (u32, u32) {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

impl Store {
    fn server(&self) -> String {
        match &self.backend {
            Backend::Postgres { server, .. } => server.clone(),
            Backend::Sqlite => "SQLite".into(),
        }
    }

    /// Checks that the database has pgvector 0.8 or newer (`CREATE EXTENSION vector`),
    /// before anything is written for it; returns its version. The error names the
    /// extension, the version found and the fix.
    pub async fn check_pgvector(&self) -> Result<String> {
        let place = format!("PostgreSQL at {}", self.server());
        let installed: Option<String> =
            sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                .fetch_optional(&self.read)
                .await
                .map_err(self.q("reading the vector extension's version"))?;
        let available: Option<String> =
            sqlx::query_scalar("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
                .fetch_optional(&self.read)
                .await
                .map_err(self.q("reading the available extensions"))?;
        let want = format!("{}.{}", MIN_VERSION.0, MIN_VERSION.1);
        match installed {
            Some(v) if major_minor(&v) >= MIN_VERSION => Ok(v),
            Some(v) => Err(StoreError::Open {
                place,
                reason: format!(
                    "--vectors pgvector needs the `vector` extension {want} or newer, this database has {v}"
                ),
                fix: match available.filter(|a| major_minor(a) >= MIN_VERSION) {
                    Some(a) => format!("run `ALTER EXTENSION vector UPDATE;` in the database (the server has {a})"),
                    None => format!(
                        "install pgvector {want} or newer on the server, then run `ALTER EXTENSION vector UPDATE;` in \
                         the database"
                    ),
                },
            }),
            None => Err(StoreError::Open {
                place,
                reason: format!(
                    "--vectors pgvector needs the `vector` extension (pgvector {want} or newer), and this database \
                     has none"
                ),
                fix: match available {
                    Some(a) if major_minor(&a) >= MIN_VERSION => {
                        format!(
                            "the server has pgvector {a}: run `CREATE EXTENSION vector;` in the database as its owner or a superuser"
                        )
                    }
                    Some(a) => format!(
                        "the server has pgvector {a} only: install pgvector {want} or newer on it, then run \
                         `CREATE EXTENSION vector;` in the database"
                    ),
                    None => format!(
                        "install pgvector {want} or newer on the server, then run `CREATE EXTENSION vector;` in the \
                         database (or leave out --vectors pgvector: the default keeps the vectors in each node's memory)"
                    ),
                },
            }),
        }
    }

    /// Whether `t` exists.
    pub async fn pg_table_exists(&self, t: &PgTable) -> Result<bool> {
        sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
            .bind(&t.name)
            .fetch_one(&self.read)
            .await
            .map_err(self.q("looking for a vector table"))
    }

    /// Creates `t` (empty, with its b-tree on `video_id`; the HNSW index comes with
    /// [`Store::pg_index`]). From then on every write of its model's vectors adds rows.
    pub async fn pg_create(&self, t: &PgTable) -> Result<()> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {n} (
                frame_id  BIGINT PRIMARY KEY REFERENCES frames(id) ON DELETE CASCADE,
                video_id  BIGINT NOT NULL,
                embedding vector({d}) NOT NULL
             );
             CREATE INDEX IF NOT EXISTS {n}_video ON {n}(video_id)",
            n = t.name,
            d = t.dim
        );
        let mut tx = self.begin_write().await.map_err(self.q("starting a transaction"))?;
        for stmt in sql.split(';') {
            sqlx::raw_sql(sqlx::AssertSqlSafe(stmt.to_string()))
                .execute(&mut *tx)
                .await
                .map_err(self.q("creating a vector table"))?;
        }
        tx.commit().await.map_err(self.q("creating a vector table"))
    }

    /// Adds to `t` the stored vectors of its model it lacks (a new table, or one that
    /// missed a write), in committed batches; returns how many.
    pub async fn pg_fill(&self, t: &PgTable) -> Result<usize> {
        let mut after: FrameId = 0;
        let mut added = 0;
        loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT e.frame_id, e.vector FROM embeddings e
                 WHERE e.model = $1 AND e.frame_id > $2
                   AND NOT EXISTS (SELECT 1 FROM {n} t WHERE t.frame_id = e.frame_id)
                 ORDER BY e.frame_id LIMIT $3",
                n = t.name
            )))
            .bind(&t.model)
            .bind(after)
            .bind(FILL_BATCH)
            .fetch_all(&self.read)
            .await
            .map_err(self.q("reading vectors to fill a vector table"))?;
            let Some(last) = rows.last().map(|r| r.get::<FrameId, _>(0)) else {
                break;
            };
            let batch: Vec<(FrameId, Vec<f32>)> = rows
                .iter()
                .map(|r| (r.get(0), blob_to_vector(r.get::<&[u8], _>(1))))
                .collect();
            let mut tx = self.begin_write().await.map_err(self.q("starting a transaction"))?;
            let items: Vec<(FrameId, &[f32])> = batch.iter().map(|(id, v)| (*id, v.as_slice())).collect();
            added += self.pg_write(&mut tx, t, &items).await?;
            tx.commit().await.map_err(self.q("filling a vector table"))?;
            after = last;
        }
        Ok(added)
    }

    /// Builds `t`'s HNSW index (cosine) when it has none. Writers to the table wait
    /// while it builds; searches meanwhile sort the rows exactly.
    pub async fn pg_index(&self, t: &PgTable) -> Result<()> {
        let mut tx = self.begin_write().await.map_err(self.q("starting a transaction"))?;
        // The graph is built in memory when it fits (else pgvector goes on on disk, slowly).
        for stmt in [
            "SET LOCAL maintenance_work_mem = '1GB'".to_string(),
            format!(
                "CREATE INDEX IF NOT EXISTS {n}_hnsw ON {n} USING hnsw (embedding vector_cosine_ops) \
                 WITH (m = 16, ef_construction = 64)",
                n = t.name
            ),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(stmt))
                .execute(&mut *tx)
                .await
                .map_err(self.q("building a vector table's HNSW index"))?;
        }
        tx.commit()
            .await
            .map_err(self.q("building a vector table's HNSW index"))
    }

    /// Drops the vector tables of every model and dimension but `keep`'s (after a
    /// switch, or an abandoned one).
    pub async fn pg_drop_except(&self, keep: Option<&PgTable>) -> Result<()> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'frame\\_vectors\\_%'",
        )
        .fetch_all(&self.read)
        .await
        .map_err(self.q("listing vector tables"))?;
        for n in names.iter().filter(|n| keep.is_none_or(|k| &k.name != *n)) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {n}")))
                .execute(&self.write)
                .await
                .map_err(self.q("dropping an old vector table"))?;
        }
        Ok(())
    }

    /// Rows of `model`'s vectors (of `dim` values) in a write transaction: added to its
    /// table when the library keeps one (pgvector), else nothing. Returns rows written.
    pub(super) async fn pg_write_model(&self, tx: &mut Tx, model: &str, items: &[(FrameId, &[f32])]) -> Result<usize> {
        if !matches!(self.backend, Backend::Postgres { .. }) || items.is_empty() {
            return Ok(0);
        }
        let t = PgTable::new(model, items[0].1.len());
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&t.name)
            .fetch_one(&mut **tx)
            .await
            .map_err(self.q("looking for a vector table"))?;
        if !exists {
            return Ok(0);
        }
        self.pg_write(tx, &t, items).await
    }

    /// Rows into `t` (frames that are gone are skipped; a frame already there is updated).
    async fn pg_write(&self, tx: &mut Tx, t: &PgTable, items: &[(FrameId, &[f32])]) -> Result<usize> {
        if let Some((_, v)) = items.iter().find(|(_, v)| v.len() != t.dim) {
            return Err(StoreError::Corrupt(format!(
                "a vector of {} values for the table of {} ({} values)",
                v.len(),
                t.model,
                t.dim
            )));
        }
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {n}(frame_id, video_id, embedding)
             SELECT u.id, f.video_id, CAST(u.v AS vector)
             FROM unnest(CAST($1 AS BIGINT[]), CAST($2 AS TEXT[])) AS u(id, v) JOIN frames f ON f.id = u.id
             ON CONFLICT (frame_id) DO UPDATE SET embedding = excluded.embedding",
            n = t.name
        )))
        .bind(id_array(items.iter().map(|(id, _)| *id)))
        .bind(vector_array(items.iter().map(|(_, v)| *v)))
        .execute(&mut **tx)
        .await
        .map_err(self.q("writing to a vector table"))?
        .rows_affected();
        Ok(n as usize)
    }

    /// The `k` frames of `t` nearest to the unit vector `query` (cosine), best first,
    /// only in `videos` and among `frames` when given; `ef` the index's search breadth.
    pub async fn pg_search(
        &self,
        t: &PgTable,
        query: &[f32],
        k: usize,
        ef: usize,
        videos: Option<&[VideoId]>,
        frames: Option<&[FrameId]>,
    ) -> Result<Vec<(FrameId, f32)>> {
        if k == 0 || query.len() != t.dim {
            return Ok(Vec::new());
        }
        // Placeholders after $1 (the query) and $2 (k), numbered as they are bound.
        let mut conds = Vec::new();
        let mut binds = Vec::new();
        if let Some(v) = videos {
            binds.push(id_array(v.iter().copied()));
            conds.push(format!("video_id = ANY(CAST(${} AS BIGINT[]))", binds.len() + 2));
        }
        if let Some(f) = frames {
            binds.push(id_array(f.iter().copied()));
            conds.push(format!("frame_id = ANY(CAST(${} AS BIGINT[]))", binds.len() + 2));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT frame_id, CAST(1 - (embedding <=> CAST($1 AS vector)) AS DOUBLE PRECISION) FROM {n}
             {filter} ORDER BY embedding <=> CAST($1 AS vector) LIMIT $2",
            n = t.name
        );
        let mut tx = self.read.begin().await.map_err(self.q("starting a search"))?;
        let ef = ef.max(k).clamp(40, MAX_EF);
        sqlx::query(
            "SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'relaxed_order', true),
                    set_config('hnsw.max_scan_tuples', $2, true)",
        )
        .bind(ef.to_string())
        .bind(MAX_SCAN_TUPLES.to_string())
        .execute(&mut *tx)
        .await
        .map_err(self.q("setting up a vector search"))?;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(vector_text(query))
            .bind(k as i64);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q
            .fetch_all(&mut *tx)
            .await
            .map_err(self.q("searching a vector table"))?;
        tx.rollback().await.map_err(self.q("ending a search"))?;
        let mut out: Vec<(FrameId, f32)> = rows.iter().map(|r| (r.get(0), r.get::<f64, _>(1) as f32)).collect();
        // relaxed_order: nearly in order; made exact here.
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(out)
    }

    /// Every frame id in `t`, in order (consistency checks).
    pub async fn pg_ids(&self, t: &PgTable) -> Result<Vec<FrameId>> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT frame_id FROM {} ORDER BY frame_id",
            t.name
        )))
        .fetch_all(&self.read)
        .await
        .map_err(self.q("listing a vector table"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_round_trip_and_names_differ_by_model_and_dim() {
        let v = [0.1f32, -0.25, 1e-8, 0.333_333_34];
        let text = vector_text(&v);
        let back: Vec<f32> = text
            .trim_matches(['[', ']'])
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(back, v);
        assert_eq!(id_array([3, 1]), "{3,1}");
        assert!(vector_array([&v[..2]]).starts_with("{\"[0.1,-0.25]\""));
        assert_ne!(PgTable::new("a", 512).name, PgTable::new("a", 768).name);
        assert_ne!(PgTable::new("a", 512).name, PgTable::new("b", 512).name);
        assert_eq!(major_minor("0.8.6"), (0, 8));
        assert!(major_minor("0.7.4") < MIN_VERSION && major_minor("1.0") >= MIN_VERSION);
    }
}
