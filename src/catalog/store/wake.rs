//! Waking idle workers: a new job is announced (`NOTIFY vidseek_jobs`, delivered at
//! commit) and a [`JobWaker`] listening for it returns at once; without PostgreSQL, or
//! while the listening connection is down, it waits out its timeout (the poll).

use std::time::Duration;

use sqlx::postgres::PgListener;

use super::*;

/// The channel new jobs are announced on.
const CHANNEL: &str = "vidseek_jobs";

/// What a worker waits on between jobs.
pub struct JobWaker {
    listener: Option<PgListener>,
    /// How to listen again after the connection was lost (None: SQLite, never).
    url: Option<connect::Secret>,
}

impl Store {
    /// A waker listening for new jobs (on PostgreSQL; elsewhere, or when listening
    /// fails, one that only waits out its timeout).
    pub async fn job_waker(&self) -> JobWaker {
        let url = match &self.backend {
            Backend::Postgres { url, .. } => Some(url.clone()),
            Backend::Sqlite => None,
        };
        let mut w = JobWaker { listener: None, url };
        w.listen().await;
        w
    }

    /// Announces a new job to listening workers (inside the transaction that makes it).
    pub(super) async fn announce_job(&self, tx: &mut Tx, id: i64) -> Result<()> {
        if let Backend::Postgres { .. } = self.backend {
            sqlx::query("SELECT pg_notify('vidseek_jobs', $1)")
                .bind(id.to_string())
                .execute(&mut **tx)
                .await
                .map_err(self.q("announcing a job"))?;
        }
        Ok(())
    }
}

impl JobWaker {
    async fn listen(&mut self) {
        let Some(url) = &self.url else { return };
        let listener = async {
            let mut l = PgListener::connect(&url.0).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        match listener.await {
            Ok(l) => self.listener = Some(l),
            Err(e) => tracing::warn!("not listening for new jobs (polling instead): {e}"),
        }
    }

    /// Whether it hears announcements (else it only polls).
    pub fn listening(&self) -> bool {
        self.listener.is_some()
    }

    /// Returns when a job is announced (true) or after `timeout` (false). Announcements
    /// made while the caller was busy are kept and return at once.
    pub async fn wait(&mut self, timeout: Duration) -> bool {
        if self.listener.is_none() {
            self.listen().await;
        }
        let Some(l) = &mut self.listener else {
            tokio::time::sleep(timeout).await;
            return false;
        };
        match tokio::time::timeout(timeout, l.recv()).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::warn!("lost the connection listening for new jobs (polling until it is back): {e}");
                self.listener = None;
                tokio::time::sleep(timeout).await;
                false
            }
            Err(_) => false,
        }
    }
}
