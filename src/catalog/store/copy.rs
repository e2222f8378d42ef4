//! Copying a whole library from one store to another (`vidseek migrate --to`): SQLite
//! to PostgreSQL or back, every table of the source of truth (vectors included, so
//! nothing is embedded again), row for row with the same ids, in ONE transaction on the
//! target, so a copy that fails half-way leaves the target as empty as it was. Owns
//! the table list and the typed row copy; not what may be copied where (the catalog
//! checks that) nor the derived indexes (each node rebuilds them from the copy).

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Result, Store, StoreError, Tx};

/// How a column is read and written.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Real,
    Text,
    Blob,
}
use Kind::*;

/// A table of the source of truth: its name, columns and key (the copy's order).
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    key: &'static str,
}

/// Every table of migrations/sqlite and migrations/postgres, parents before children.
/// A table added to the schema must be added here (the test `the_copy_knows_every_table`
/// compares this list with the database's own).
const TABLES: &[Table] = &[
    Table {
        name: "meta",
        columns: &[("key", Text), ("value", Text)],
        key: "key",
    },
    Table {
        name: "videos",
        columns: &[
            ("id", Int),
            ("path", Text),
            ("size", Int),
            ("mtime_ns", Int),
            ("hash", Text),
            ("duration", Real),
            ("fps", Real),
            ("width", Int),
            ("height", Int),
            ("codec", Text),
            ("rotation", Int),
            ("status", Text),
            ("error", Text),
            ("frame_count", Int),
            ("indexed_at", Int),
        ],
        key: "id",
    },
    Table {
        name: "frames",
        columns: &[
            ("id", Int),
            ("video_id", Int),
            ("seq", Int),
            ("start", Real),
            ("\"end\"", Real),
            ("peak", Real),
            ("shot", Int),
        ],
        key: "id",
    },
    Table {
        name: "embeddings",
        columns: &[("frame_id", Int), ("model", Text), ("vector", Blob)],
        key: "frame_id, model",
    },
    Table {
        name: "thumbnails",
        columns: &[("frame_id", Int), ("jpeg", Blob)],
        key: "frame_id",
    },
    Table {
        name: "texts",
        columns: &[
            ("id", Int),
            ("video_id", Int),
            ("kind", Text),
            ("start", Real),
            ("\"end\"", Real),
            ("text", Text),
            ("quad", Text),
            ("words", Text),
        ],
        key: "id",
    },
    Table {
        name: "jobs",
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("state", Text),
            ("paths", Text),
            ("created_at", Int),
            ("started_at", Int),
            ("finished_at", Int),
            ("files_total", Int),
            ("files_done", Int),
            ("frames_done", Int),
            ("error", Text),
            ("owner", Text),
            ("lease_until", Int),
        ],
        key: "id",
    },
    Table {
        name: "job_files",
        columns: &[
            ("job_id", Int),
            ("path", Text),
            ("state", Text),
            ("error", Text),
            ("frames", Int),
        ],
        key: "job_id, path",
    },
    Table {
        name: "text_vectors",
        columns: &[("model", Text), ("text", Text), ("vector", Blob)],
        key: "model, text",
    },
    Table {
        name: "frame_tags",
        columns: &[("frame_id", Int), ("label", Text), ("prob", Real)],
        key: "frame_id, label",
    },
    Table {
        name: "tagged_videos",
        columns: &[("video_id", Int), ("stamp", Text)],
        key: "video_id",
    },
    Table {
        name: "probes",
        columns: &[
            ("name", Text),
            ("query", Text),
            ("likes", Text),
            ("unlikes", Text),
            ("created", Int),
        ],
        key: "name",
    },
    Table {
        name: "api_keys",
        columns: &[
            ("name", Text),
            ("scope", Text),
            ("hash", Text),
            ("prefix", Text),
            ("created_at", Int),
            ("last_used", Int),
            ("revoked_at", Int),
        ],
        key: "name",
    },
];

/// Rows per INSERT: few enough parameters for SQLite (32,766) and PostgreSQL (65,535),
/// and a bounded amount of vectors and thumbnails in memory.
const BATCH_ROWS: usize = 256;

/// One value read from the source.
enum Cell {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

/// Rows copied per table, in copy order.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Copied {
    pub tables: Vec<(String, u64)>,
}

/// What a store already holds (a copy goes only into an empty one).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Occupancy {
    pub videos: i64,
    pub jobs: i64,
    pub running_jobs: i64,
    pub probes: i64,
    pub keys: i64,
    /// The library's model, once it has one.
    pub model: Option<String>,
}

impl Occupancy {
    pub fn is_empty(&self) -> bool {
        self.videos == 0 && self.jobs == 0 && self.probes == 0 && self.keys == 0 && self.model.is_none()
    }

    /// "3 videos, 2 jobs, model M" (for messages).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = [
            (self.videos, "videos"),
            (self.jobs, "jobs"),
            (self.probes, "probes"),
            (self.keys, "API keys"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if let Some(m) = &self.model {
            parts.push(format!("model {m}"));
        }
        parts.join(", ")
    }
}

impl Store {
    /// What the store already holds.
    pub async fn occupancy(&self) -> Result<Occupancy> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM videos), (SELECT COUNT(*) FROM jobs),
                    (SELECT COUNT(*) FROM jobs WHERE state = 'processing'), (SELECT COUNT(*) FROM probes),
                    (SELECT COUNT(*) FROM api_keys)",
        )
        .fetch_one(&self.read)
        .await
        .map_err(self.q("looking into the library"))?;
        Ok(Occupancy {
            videos: r.get(0),
            jobs: r.get(1),
            running_jobs: r.get(2),
            probes: r.get(3),
            keys: r.get(4),
            model: self.meta("model").await?,
        })
    }

    /// Copies every table of this store into `to` (an empty library: the caller checks)
    /// in one transaction on `to`; `progress(table, rows so far)` after each batch.
    pub async fn copy_into(&self, to: &Store, mut progress: impl FnMut(&str, u64)) -> Result<Copied> {
        let mut tx = to.begin_write().await.map_err(to.q("starting the copy"))?;
        let mut copied = Copied::default();
        for table in TABLES {
            // Whatever the target's migrations wrote (none today) gives way to the source.
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {}", table.name)))
                .execute(&mut *tx)
                .await
                .map_err(to.q("emptying the target"))?;
            let n = self.copy_table(table, to, &mut tx, &mut progress).await?;
            copied.tables.push((table.name.to_string(), n));
        }
        if let Backend::Postgres { .. } = to.backend {
            // Identity columns continue after the copied ids.
            for t in ["texts", "jobs"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM {t}), false)"
                )))
                .execute(&mut *tx)
                .await
                .map_err(to.q("moving the id sequences on"))?;
            }
        }
        tx.commit().await.map_err(to.q("committing the copy"))?;
        Ok(copied)
    }

    async fn copy_table(
        &self,
        table: &Table,
        to: &Store,
        tx: &mut Tx,
        progress: &mut impl FnMut(&str, u64),
    ) -> Result<u64> {
        let cols: Vec<&str> = table.columns.iter().map(|c| c.0).collect();
        let select = format!("SELECT {} FROM {} ORDER BY {}", cols.join(", "), table.name, table.key);
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&self.read);
        let mut batch: Vec<Vec<Cell>> = Vec::with_capacity(BATCH_ROWS);
        let mut n = 0u64;
        while let Some(row) = rows.try_next().await.map_err(self.q("reading the library to copy"))? {
            batch.push(read_row(&row, table).map_err(self.q("reading the library to copy"))?);
            if batch.len() == BATCH_ROWS {
                n += insert(table, &batch, to, tx).await?;
                batch.clear();
                progress(table.name, n);
            }
        }
        if !batch.is_empty() {
            n += insert(table, &batch, to, tx).await?;
            progress(table.name, n);
        }
        Ok(n)
    }
}

fn read_row(row: &AnyRow, table: &Table) -> sqlx::Result<Vec<Cell>> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            Ok(match kind {
                Int => Cell::Int(row.try_get(i)?),
                Real => Cell::Real(row.try_get(i)?),
                Text => Cell::Text(row.try_get(i)?),
                Blob => Cell::Blob(row.try_get(i)?),
            })
        })
        .collect()
}

/// One multi-row INSERT of `rows` into `table` on the target.
async fn insert(table: &Table, rows: &[Vec<Cell>], to: &Store, tx: &mut Tx) -> Result<u64> {
    let width = table.columns.len();
    let values: Vec<String> = (0..rows.len())
        .map(|r| {
            let marks: Vec<String> = table
                .columns
                .iter()
                .enumerate()
                .map(|(c, (_, kind))| placeholder(r * width + c + 1, *kind))
                .collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    let cols: Vec<&str> = table.columns.iter().map(|c| c.0).collect();
    let sql = format!(
        "INSERT INTO {}({}) VALUES {}",
        table.name,
        cols.join(", "),
        values.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for row in rows {
        for cell in row {
            q = match cell {
                Cell::Int(v) => q.bind(*v),
                // See `videos::nullable_seconds`: a NULL double would reach PostgreSQL as
                // float4 through the Any driver; text cast in SQL is exact both ways.
                Cell::Real(v) => q.bind(v.map(|v| v.to_string())),
                Cell::Text(v) => q.bind(v.clone()),
                Cell::Blob(v) => q.bind(v.clone()),
            };
        }
    }
    q.execute(&mut **tx).await.map_err(|e| copy_error(table, to, e))?;
    Ok(rows.len() as u64)
}

/// `$n`, cast where the Any driver's types need help.
fn placeholder(n: usize, kind: Kind) -> String {
    match kind {
        Real => format!("CAST(${n} AS DOUBLE PRECISION)"),
        Int => format!("CAST(${n} AS BIGINT)"),
        Text | Blob => format!("${n}"),
    }
}

/// A failed insert names the table (a row the target's constraints refuse, such as a
/// NUL character PostgreSQL text cannot hold, is the source's data, not a bug).
fn copy_error(table: &Table, to: &Store, e: sqlx::Error) -> StoreError {
    match to.q("writing the copy")(e) {
        StoreError::Query { source, .. } => StoreError::Corrupt(format!(
            "the target refused a row of table {}: {source}; fix that row in the source library, then migrate again",
            table.name
        )),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copy's table list is the schema's: a table (or column) added by a migration
    /// and not copied would be lost by `vidseek migrate`.
    #[tokio::test]
    async fn the_copy_knows_every_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("library.db")).await.unwrap();
        let rows = sqlx::query(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%' ORDER BY m.name, p.cid",
        )
        .fetch_all(&store.read)
        .await
        .unwrap();
        let mut schema: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        schema.sort();
        let mut known: Vec<(String, String)> = TABLES
            .iter()
            .flat_map(|t| {
                t.columns
                    .iter()
                    .map(|c| (t.name.to_string(), c.0.trim_matches('"').to_string()))
            })
            .collect();
        known.sort();
        assert_eq!(known, schema);
    }
}
