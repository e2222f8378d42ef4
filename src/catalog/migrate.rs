//! `vidseek migrate --to`: moving a library between a data folder (SQLite) and a
//! PostgreSQL server, either way, vectors included (nothing is decoded or embedded
//! again). Owns what may be copied where: the source must be a library with no job
//! running, the target an empty library that is not the source; the copy itself is the
//! store's (one transaction on the target). The source is never changed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::open::{lock_folder, open_store};
use super::store::{is_postgres_url, server_name};
use super::{CatalogError, Store, db_path};

/// What a migration did.
#[derive(Clone, Debug, Serialize)]
pub struct Migrated {
    /// The source and the target, as messages name them (never a password).
    pub from: String,
    pub to: String,
    /// Rows copied per table.
    pub tables: Vec<(String, u64)>,
    pub seconds: f64,
}

/// Where a library goes: a PostgreSQL URL or a data folder.
enum Target {
    Server(String),
    Folder(PathBuf),
}

impl Target {
    fn parse(to: &str) -> Self {
        if is_postgres_url(to) {
            Target::Server(to.to_string())
        } else {
            Target::Folder(PathBuf::from(to))
        }
    }

    fn name(&self) -> String {
        match self {
            Target::Server(url) => server_name(url),
            Target::Folder(dir) => dir.display().to_string(),
        }
    }
}

/// Copies the library at `data_dir` / `database` to `to` (a `postgres://` URL or a new
/// data folder); `progress(table, rows)` as the copy goes.
pub async fn migrate(
    data_dir: &Path,
    database: Option<&str>,
    to: &str,
    progress: impl FnMut(&str, u64),
) -> Result<Migrated, CatalogError> {
    let started = Instant::now();
    let target = Target::parse(to);
    let from = match database {
        Some(url) => server_name(url),
        None => data_dir.display().to_string(),
    };
    let same = match (&target, database) {
        (Target::Server(url), Some(db)) => server_name(url) == server_name(db),
        (Target::Folder(dir), None) => same_folder(dir, data_dir),
        _ => false,
    };
    if same {
        return Err(CatalogError::MigrateToItself { target: target.name() });
    }
    // The source folder stays locked so that nothing indexes into it during the copy.
    let _source_lock = match database {
        None if !db_path(data_dir).exists() => return Err(CatalogError::NoLibrary { place: from }),
        None => Some(lock_folder(data_dir)?),
        Some(_) => None,
    };
    let source = open_store(data_dir, database).await?;
    let (_target_lock, dest) = match &target {
        Target::Server(url) => (None, Store::connect(url).await?),
        Target::Folder(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| crate::index::IndexError::io(dir, e))?;
            (Some(lock_folder(dir)?), Store::open(&db_path(dir)).await?)
        }
    };
    let r = copy(&source, &dest, &target, progress).await;
    source.close().await;
    dest.close().await;
    let tables = r?;
    Ok(Migrated {
        from,
        to: target.name(),
        tables,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn copy(
    source: &Store,
    dest: &Store,
    target: &Target,
    progress: impl FnMut(&str, u64),
) -> Result<Vec<(String, u64)>, CatalogError> {
    let held = source.occupancy().await?;
    if held.model.is_none() {
        return Err(CatalogError::NoLibrary {
            place: "the source".into(),
        });
    }
    if held.running_jobs > 0 {
        return Err(CatalogError::MigrateBusy {
            jobs: held.running_jobs,
        });
    }
    let there = dest.occupancy().await?;
    if !there.is_empty() {
        return Err(CatalogError::MigrateTargetInUse {
            target: target.name(),
            holds: there.describe(),
        });
    }
    let tables = source.copy_into(dest, progress).await?.tables;
    // A data folder keeps its vectors in its own graph: a library that chose pgvector
    // on the server is an HNSW library there (each node rebuilds it from the copy).
    if matches!(target, Target::Folder(_)) && dest.meta("vectors").await?.as_deref() == Some("pgvector") {
        dest.set_meta("vectors", "hnsw").await?;
    }
    Ok(tables)
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
