//! `vidseek mcp`: the MCP tools on stdin/stdout for an assistant that starts vidseek as
//! a child process. The library stays open (read-only, or for writing with
//! `--allow-index`) while the client talks; searches run as `vidseek search` runs them,
//! indexing as `vidseek index` does. Logs go to stderr: stdout carries only JSON-RPC.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::args::{Global, McpArgs};
use super::index::{index_options, run_jobs};
use super::output::Output;
use super::runtime;
use crate::catalog::{Access, Catalog};
use crate::embed::Embedder;
use crate::error::Fault;
use crate::jobs::IndexOptions;
use crate::mcp::{Host, McpError};
use crate::search::params::SearchParams;
use crate::search::{self, SearchResponse};

struct StdioHost {
    catalog: Catalog,
    model: Arc<Embedder>,
    /// `Some` with `--allow-index`.
    index: Option<IndexOptions>,
    base_url: Option<String>,
}

impl Host for StdioHost {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn search(&self, params: SearchParams) -> BoxFuture<'_, Result<SearchResponse, McpError>> {
        async move {
            let req = params.request()?;
            Ok(search::search(&self.catalog, self.model.clone(), &req).await?)
        }
        .boxed()
    }

    fn may_index(&self) -> bool {
        self.index.is_some()
    }

    fn index(&self, path: PathBuf) -> BoxFuture<'_, Result<serde_json::Value, McpError>> {
        async move {
            let Some(opts) = &self.index else {
                return Err(McpError::NotAllowed);
            };
            if !path.exists() {
                return Err(McpError::BadArgument {
                    field: "path",
                    why: format!("{}: no such file or folder", path.display()),
                });
            }
            let failed = |e: anyhow::Error| McpError::Host {
                fault: Fault::Unavailable,
                message: format!("{e:#}"),
            };
            let reports = run_jobs(&self.catalog, self.model.clone(), &[path], opts, Output::new(true))
                .await
                .map_err(failed)?;
            if let Err(e) = search::tags::ensure(&self.catalog, &self.model).await {
                tracing::warn!("the tags were not brought up to date: {e}");
            }
            Ok(serde_json::json!({ "jobs": reports }))
        }
        .boxed()
    }

    fn base_url(&self) -> Option<String> {
        self.base_url.clone()
    }
}

pub(super) fn mcp(g: &Global, args: &McpArgs) -> Result<()> {
    let model = Arc::new(g.load_model()?);
    let access = if args.allow_index { Access::Write } else { Access::Read };
    let opts = index_options(args.fps, 0, 0)?;
    runtime()?.block_on(async {
        let catalog = g.open_library(&model, access).await?;
        let index = if args.allow_index {
            catalog.remember_model_dir(model.dir()).await?;
            Some(IndexOptions {
                ocr: super::ocr::ocr_for(g, &catalog).await?,
                ..opts
            })
        } else {
            None
        };
        let host = Arc::new(StdioHost {
            catalog,
            model,
            index,
            base_url: args.base_url.clone(),
        });
        let r = crate::mcp::serve_stdio(host.clone()).await;
        host.catalog.close().await;
        Ok(r?)
    })
}
