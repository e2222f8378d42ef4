//! Cached embeddings of texts the engine embeds repeatedly (label vocabularies).

use sqlx::Row;

use super::*;

impl Store {
    /// The cached vectors of `model` for `texts` (those not cached are absent).
    pub async fn text_vectors(&self, model: &str, texts: &[String]) -> Result<Vec<(String, Vec<f32>)>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(400) {
            let marks = marks(2, chunk.len());
            let sql = format!("SELECT text, vector FROM text_vectors WHERE model = $1 AND text IN ({marks})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(model);
            for t in chunk {
                query = query.bind(t);
            }
            let rows = query
                .fetch_all(&self.read)
                .await
                .map_err(self.q("reading cached text vectors"))?;
            out.extend(
                rows.iter()
                    .map(|r| (r.get::<String, _>(0), blob_to_vector(r.get::<&[u8], _>(1)))),
            );
        }
        Ok(out)
    }

    /// Caches vectors of `model` for texts (one transaction).
    pub async fn put_text_vectors(&self, model: &str, items: &[(String, Vec<f32>)]) -> Result<()> {
        let mut tx = self.begin_write().await.map_err(self.q("caching text vectors"))?;
        for (text, v) in items {
            sqlx::query(
                "INSERT INTO text_vectors(model, text, vector) VALUES ($1, $2, $3) \
                 ON CONFLICT(model, text) DO UPDATE SET vector = excluded.vector",
            )
            .bind(model)
            .bind(text)
            .bind(vector_to_blob(v))
            .execute(&mut *tx)
            .await
            .map_err(self.q("caching text vectors"))?;
        }
        tx.commit().await.map_err(self.q("caching text vectors"))
    }
}
