//! API keys of a library: made, listed and revoked without a model (`vidseek keys`),
//! checked by the server on every protected request (through a short cache in `api`).

use std::path::Path;

use super::{ApiKey, Catalog, CatalogError, KeyScope};
use crate::util::secret;

/// A key just made: shown once, never stored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NewKey {
    pub name: String,
    pub scope: KeyScope,
    pub key: String,
}

/// Makes a key named `name` with `scope` in the library at `data_dir` / `database`.
pub async fn create_key(
    data_dir: &Path,
    database: Option<&str>,
    name: &str,
    scope: KeyScope,
) -> Result<NewKey, CatalogError> {
    check_name(name)?;
    let key = secret::new_key().map_err(|e| CatalogError::KeyMaterial(e.to_string()))?;
    let store = super::open::open_store(data_dir, database).await?;
    let prefix: String = key.chars().take(secret::KEY_PREFIX.len() + 6).collect();
    let added = store.add_key(name, scope, &secret::key_hash(&key), &prefix).await;
    store.close().await;
    if !added? {
        return Err(CatalogError::KeyNameTaken { name: name.to_string() });
    }
    Ok(NewKey {
        name: name.to_string(),
        scope,
        key,
    })
}

/// Every key of the library (never the keys themselves).
pub async fn list_keys(data_dir: &Path, database: Option<&str>) -> Result<Vec<ApiKey>, CatalogError> {
    let store = super::open::open_store(data_dir, database).await?;
    let keys = store.keys().await;
    store.close().await;
    Ok(keys?)
}

/// Revokes the key `name` (every node refuses it within its cache time).
pub async fn revoke_key(data_dir: &Path, database: Option<&str>, name: &str) -> Result<(), CatalogError> {
    let store = super::open::open_store(data_dir, database).await?;
    let done = store.revoke_key(name).await;
    store.close().await;
    if !done? {
        return Err(CatalogError::NoSuchKey { name: name.to_string() });
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), CatalogError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(CatalogError::BadKeyName { name: name.to_string() })
    }
}

impl Catalog {
    /// The scope of a live key of this library (None: unknown or revoked).
    pub async fn key_scope(&self, key: &str) -> Result<Option<KeyScope>, CatalogError> {
        Ok(self.store.key_scope(&secret::key_hash(key)).await?)
    }

    /// Whether the library has a live API key (then the server asks every request for
    /// one, even on loopback).
    pub async fn has_keys(&self) -> Result<bool, CatalogError> {
        Ok(self.store.has_keys().await?)
    }
}
