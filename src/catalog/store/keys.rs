//! API keys: named, scoped, stored as a SHA-256 of the key (the key itself is shown
//! once, when it is made, and never kept). Shared by every node of a library.

use sqlx::Row;

use super::*;

text_enum! {
    /// What a key may do: `search` reads (searches, videos, media, jobs, events);
    /// `admin` also changes the library (index, delete, labels, probes, uploads, model
    /// switches, cancelling jobs).
    KeyScope { Search = "search", Admin = "admin" }
}

/// A key as listed (never the key itself).
#[derive(Clone, Debug, Serialize)]
pub struct ApiKey {
    pub name: String,
    pub scope: KeyScope,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub created_at: i64,
    /// When a node last checked it (to within the nodes' cache time).
    pub last_used: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Store {
    /// Records a key by its hash; false when `name` is taken.
    pub async fn add_key(&self, name: &str, scope: KeyScope, hash: &str, prefix: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO api_keys(name, scope, hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT(name) DO NOTHING",
        )
        .bind(name)
        .bind(scope.as_str())
        .bind(hash)
        .bind(prefix)
        .bind(now())
        .execute(&self.write)
        .await
        .map_err(self.q("adding an API key"))?;
        Ok(r.rows_affected() == 1)
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(
            "SELECT name, scope, prefix, created_at, last_used, revoked_at FROM api_keys ORDER BY created_at, name",
        )
        .fetch_all(&self.read)
        .await
        .map_err(self.q("listing API keys"))?;
        rows.iter()
            .map(|r| {
                Ok(ApiKey {
                    name: r.get(0),
                    scope: KeyScope::parse(&r.get::<String, _>(1))?,
                    prefix: r.get(2),
                    created_at: r.get(3),
                    last_used: r.get(4),
                    revoked_at: r.get(5),
                })
            })
            .collect()
    }

    /// Revokes the key `name`; false when there is no such live key.
    pub async fn revoke_key(&self, name: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL")
            .bind(name)
            .bind(now())
            .execute(&self.write)
            .await
            .map_err(self.q("revoking an API key"))?;
        Ok(r.rows_affected() == 1)
    }

    /// The scope of the live key whose hash is `hash` (None: no such key, or revoked),
    /// noting that it was used.
    pub async fn key_scope(&self, hash: &str) -> Result<Option<KeyScope>> {
        let scope: Option<String> = sqlx::query("SELECT scope FROM api_keys WHERE hash = $1 AND revoked_at IS NULL")
            .bind(hash)
            .fetch_optional(&self.read)
            .await
            .map_err(self.q("checking an API key"))?
            .map(|r| r.get(0));
        let Some(scope) = scope else { return Ok(None) };
        sqlx::query("UPDATE api_keys SET last_used = $2 WHERE hash = $1")
            .bind(hash)
            .bind(now())
            .execute(&self.write)
            .await
            .map_err(self.q("noting an API key's use"))?;
        Ok(Some(KeyScope::parse(&scope)?))
    }

    /// Whether the library has a live key (then every node asks for one).
    pub async fn has_keys(&self) -> Result<bool> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
            .fetch_one(&self.read)
            .await
            .map_err(self.q("checking API keys"))?
            .get(0);
        Ok(n > 0)
    }
}
