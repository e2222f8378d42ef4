//! `mcp`: the Model Context Protocol server (the only importer of `rmcp`, the official
//! Rust SDK). An assistant lists and calls vidseek's tools: `search`, `get_moment`,
//! `list_videos`, `index_status` and `index`. The tools call the same library functions
//! the CLI and the API call (`search::params`, the catalog's reads); what differs
//! between `vidseek mcp` (stdio) and `/mcp` on `vidseek serve` (streamable HTTP) is the
//! [`Host`] each adapter gives: how a search takes its turn, how indexing runs, whether
//! it is allowed, and the base of the links.
//!
//! Layout: this file holds the host seam, the errors and stdio; `tools` the tools'
//! inputs (their JSON schemas derived from the types), their checks and answers;
//! `http` the streamable HTTP transport in plain `http` types, which `api` carries over
//! actix-web. Does not: parse queries, rank, touch SQL or know about actix.

mod http;
mod tools;

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;

pub use self::http::{HttpMcp, MAX_BODY, McpRequest};
use crate::catalog::{Catalog, CatalogError};
use crate::error::{Classified, Fault};
use crate::search::params::SearchParams;
use crate::search::{SearchError, SearchResponse};

/// What an adapter gives the tools: the open library and the ways it searches and
/// indexes.
pub trait Host: Send + Sync + 'static {
    /// The open library.
    fn catalog(&self) -> &Catalog;
    /// The answer to a search, taking its turn as the adapter's other searches do.
    fn search(&self, params: SearchParams) -> BoxFuture<'_, Result<SearchResponse, McpError>>;
    /// Whether `index` may run at all (`--allow-index` on `vidseek mcp`; on the server
    /// always, for callers with the `admin` scope: see [`Caller`]).
    fn may_index(&self) -> bool;
    /// Indexes a file or folder: what was done or queued, as JSON.
    fn index(&self, path: PathBuf) -> BoxFuture<'_, Result<serde_json::Value, McpError>>;
    /// The UI's address (`http://host:port`) when the adapter was told it.
    fn base_url(&self) -> Option<String>;
}

/// Who sent an HTTP request, as the adapter's authentication found it (absent on
/// stdio, where the user who started vidseek is the caller).
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// The token, an `admin` key, or a server that asks for none.
    pub admin: bool,
}

/// Failures of a tool or of serving: each becomes a tool error (the assistant reads
/// the message) or a protocol error, never a crash.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("video {0} is not in the library (list_videos lists the ids)")]
    UnknownVideo(i64),
    /// A value that passed the schema but not the tool (a time outside the video).
    #[error("{field}: {why}")]
    BadArgument { field: &'static str, why: String },
    #[error(
        "index is for administrators: on /mcp it needs the server's token or an `admin` API key \
         (vidseek keys create NAME --scope admin); on stdio, vidseek mcp --allow-index"
    )]
    NotAllowed,
    /// The adapter's own refusal or failure (outside the library folders, a job that failed).
    #[error("{message}")]
    Host { fault: Fault, message: String },
    #[error("MCP over stdio: {0}")]
    Transport(String),
}

impl Classified for McpError {
    fn fault(&self) -> Fault {
        match self {
            McpError::Search(e) => e.fault(),
            McpError::Catalog(e) => e.fault(),
            McpError::UnknownVideo(_) => Fault::NotFound,
            McpError::BadArgument { .. } => Fault::BadInput,
            McpError::NotAllowed => Fault::Conflict,
            McpError::Host { fault, .. } => *fault,
            McpError::Transport(_) => Fault::Unavailable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            McpError::Search(e) => e.code(),
            McpError::Catalog(e) => e.code(),
            McpError::NotAllowed => "not_allowed",
            other => other.fault().code(),
        }
    }
}

/// Serves the tools on stdin/stdout until the client closes them (`vidseek mcp`).
pub async fn serve_stdio(host: Arc<dyn Host>) -> Result<(), McpError> {
    use rmcp::ServiceExt;
    let running = tools::Vidseek::new(host)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| McpError::Transport(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| McpError::Transport(e.to_string()))?;
    Ok(())
}
