//! `vidseek serve`: the model and the catalog opened, then `crate::api::serve`.

use std::sync::Arc;

use anyhow::Result;

use super::args::{Global, ServeArgs};
use super::index::index_options;
use crate::catalog::{Access, Catalog};
use crate::embed::{EmbedOptions, Embedder};

pub(super) fn serve(g: &Global, args: &ServeArgs) -> Result<()> {
    let embed = EmbedOptions {
        concurrent_queries: true,
        ..g.embed_options()
    };
    let model = Arc::new(Embedder::load(&g.model_dir(), &embed)?);
    let mut index = index_options(args.fps, 0, 0)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let catalog = Arc::new(
            Catalog::open_with(
                &g.data_dir(),
                g.database(),
                g.vectors,
                model.model_name(),
                model.dim(),
                Access::Write,
            )
            .await?,
        );
        catalog.remember_model_dir(model.dir()).await?;
        index.ocr = super::ocr::ocr_for(g, &catalog).await?;
        index.speech = super::speech::speech_for(g, &catalog).await?;
        if catalog.is_shared() {
            tokio::spawn(follow(catalog.clone()));
        }
        let cfg = crate::api::ServeConfig {
            bind: args.bind,
            libraries: args.libraries.clone(),
            watch: args.watch,
            token: args.token.clone().filter(|t| !t.is_empty()),
            max_upload: args.max_upload_mb.saturating_mul(1024 * 1024),
            index,
            embed,
            search_permits: crate::api::SEARCH_PERMITS,
            clips: crate::api::ClipSettings {
                limits: crate::export::Limits {
                    max_seconds: args.clip_max_seconds,
                    ..Default::default()
                },
                exports: args.clip_exports,
                tmp: g.data_dir().join("tmp"),
            },
            base_url: args.base_url.clone(),
        };
        crate::api::serve(cfg, catalog, model).await?;
        anyhow::Ok(())
    })
}

/// How often a node of a shared library looks for other nodes' writes.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Keeps this node's indexes level with what the other nodes of a shared library
/// commit (a video indexed by any worker is searchable here within about a second).
async fn follow(catalog: Arc<Catalog>) {
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        if let Err(e) = catalog.follow().await {
            tracing::warn!("following the shared library: {e}");
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    }
}
