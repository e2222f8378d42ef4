//! `api`: the HTTP server (the only importer of actix-web). Thin handlers: parse and
//! validate, call `search`, `jobs` or the catalog, map errors to HTTP in one place
//! ([`ApiError`]). Also serves the UI (ui/, embedded in the binary), original media
//! with HTTP Range support, thumbnails, Server-Sent Events, OpenAPI and metrics.
//!
//! Layout: this file starts the server and holds its routes and shared state;
//! `handlers` and `dto` have one file per resource (status, search, tags, videos,
//! upload, jobs, model); `error` maps errors to responses, `auth` checks the token;
//! `mcp` carries the MCP endpoint (`/mcp`, the tools of `crate::mcp`) over actix.
//! Search parameters are read into `search::params`, the builder the CLI shares.

mod auth;
mod dto;
mod error;
mod handlers;
mod mcp;
mod media;
mod metrics;
mod openapi;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use serde::Serialize;
use tokio::sync::{Semaphore, broadcast};

use crate::catalog::Catalog;
use crate::embed::Embedder;
use crate::jobs::{IndexOptions, JobRunner, Progress};

pub use error::ApiError;
pub use metrics::Metrics;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub bind: SocketAddr,
    /// Library roots: `POST /api/index` accepts paths inside them; uploads go to the first.
    pub libraries: Vec<PathBuf>,
    pub watch: bool,
    pub token: Option<String>,
    /// Largest accepted upload, bytes.
    pub max_upload: u64,
    pub index: IndexOptions,
    /// How models are loaded (a switch loads its target with these).
    pub embed: crate::embed::EmbedOptions,
    /// Concurrent searches (each takes a permit; the rest wait their turn).
    pub search_permits: usize,
    /// Cutting clips.
    pub clips: ClipSettings,
    /// The address links in MCP answers start with (`--base-url`; default: the
    /// address each request came to).
    pub base_url: Option<String>,
}

/// How `GET /api/videos/{id}/clip` cuts.
#[derive(Clone, Debug)]
pub struct ClipSettings {
    /// The longest clip and GIF.
    pub limits: crate::export::Limits,
    /// Clips cut at once; a request past them gets 429.
    pub exports: usize,
    /// Where clips are written before they are sent (emptied at start).
    pub tmp: PathBuf,
}

/// Searches in flight at once. More than the cores: a search waits for its query's
/// embedding, and the queries of the searches in flight are embedded together in one
/// run of the text tower (at most `embed`'s combined batch of 64 rows). The serve bench
/// (100k frames, 50 connections, 2 cores): 2 permits 573 requests/s (p99 132 ms), 8:
/// 887 (85 ms), 64: 1,517 (65 ms), 256: 1,364 (68 ms).
pub const SEARCH_PERMITS: usize = 64;

/// Errors of starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0} without a token: anyone on the network could read the library. \
         Set --token or VIDSEEK_TOKEN, make an API key (`vidseek keys create NAME`), or bind to 127.0.0.1"
    )]
    NeedsToken(SocketAddr),
    #[error("library folder {}: {reason}", path.display())]
    Library { path: PathBuf, reason: String },
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error(transparent)]
    Watch(#[from] crate::library::LibraryError),
}

impl crate::error::Classified for ServeError {
    fn fault(&self) -> crate::error::Fault {
        match self {
            ServeError::NeedsToken(_) | ServeError::Library { .. } => crate::error::Fault::BadInput,
            ServeError::Bind { .. } | ServeError::Watch(_) => crate::error::Fault::Unavailable,
        }
    }
}

/// Something the UI hears about through `GET /api/events`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    Job(Progress),
    Library {
        action: String,
        video_id: Option<i64>,
        path: String,
    },
}

/// Shared by every handler.
pub struct AppState {
    pub catalog: Arc<Catalog>,
    /// Runs jobs and holds the active model (`runner.model()`: a switch replaces it).
    pub runner: Arc<JobRunner>,
    pub events: broadcast::Sender<ServerEvent>,
    pub permits: Semaphore,
    /// One per clip being cut (`ClipSettings::exports`).
    pub clip_slots: Arc<Semaphore>,
    pub metrics: Metrics,
    pub config: ServeConfig,
    /// Canonical library roots.
    pub roots: Vec<PathBuf>,
    /// API keys recently checked.
    pub keys: auth::KeyCache,
}

impl AppState {
    /// The state of a server starting: its job runner started, its job progress sent
    /// to the event stream.
    fn start(config: ServeConfig, roots: Vec<PathBuf>, catalog: Arc<Catalog>, model: Arc<Embedder>) -> Self {
        let (events, _) = broadcast::channel::<ServerEvent>(1024);
        let ev = events.clone();
        let progress: crate::jobs::ProgressSink = Arc::new(move |p: Progress| {
            let _ = ev.send(ServerEvent::Job(p));
        });
        let runner = JobRunner::start(
            catalog.clone(),
            model,
            config.embed.clone(),
            config.index.clone(),
            progress,
            tokio::runtime::Handle::current(),
        );
        AppState {
            catalog,
            runner,
            events,
            permits: Semaphore::new(config.search_permits.max(1)),
            clip_slots: Arc::new(Semaphore::new(config.clips.exports.max(1))),
            metrics: Metrics::default(),
            config,
            roots,
            keys: auth::KeyCache::default(),
        }
    }

    /// Tells the UI that a video left the library (`event: library`, action `removed`):
    /// the one place a removal (DELETE, prune, a file gone under `--watch`) is announced.
    pub(crate) fn announce_removed(&self, video_id: i64, path: String) {
        let _ = self.events.send(ServerEvent::Library {
            action: "removed".into(),
            video_id: Some(video_id),
            path,
        });
    }
}

/// Routes: shared by the server and the integration tests' in-process app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(1 << 20)
            .error_handler(|e, _| error::json_error(e)),
    )
    .app_data(web::QueryConfig::default().error_handler(|e, _| error::json_error(e)))
    .app_data(
        web::PathConfig::default().error_handler(|e, _| ApiError::not_found(format!("no such resource ({e})")).into()),
    )
    .service(
        web::scope("/api")
            .route("/health", web::get().to(handlers::status::health))
            .route("/search", web::get().to(handlers::search::search))
            .route("/search", web::post().to(handlers::search::search_image))
            .route("/eval", web::post().to(handlers::search::eval))
            .route("/tags", web::get().to(handlers::tags::tags))
            .route("/labels", web::get().to(handlers::tags::labels))
            .route("/labels", web::put().to(handlers::tags::set_labels))
            .route("/labels", web::delete().to(handlers::tags::reset_labels))
            .route("/probes", web::get().to(handlers::tags::probes))
            .route("/probes", web::post().to(handlers::tags::save_probe))
            .route("/probes/{name}", web::delete().to(handlers::tags::delete_probe))
            .route("/videos", web::get().to(handlers::videos::videos))
            .route("/videos/{id}", web::get().to(handlers::videos::video))
            .route("/videos/{id}/text", web::get().to(handlers::videos::screen_text))
            .route("/videos/{id}/transcript", web::get().to(handlers::videos::transcript))
            .route("/videos/{id}/clip", web::get().to(handlers::clips::clip))
            .route("/timeline", web::get().to(handlers::clips::timeline))
            .route("/videos/{id}", web::delete().to(handlers::videos::delete_video))
            .route("/index", web::post().to(handlers::videos::index))
            .route("/prune", web::post().to(handlers::videos::prune))
            .route("/model", web::get().to(handlers::model::model))
            .route("/model", web::post().to(handlers::model::switch_model))
            .route("/upload", web::post().to(handlers::upload::upload))
            .route("/jobs", web::get().to(handlers::jobs::jobs))
            .route("/jobs/{id}", web::get().to(handlers::jobs::job))
            .route("/jobs/{id}", web::delete().to(handlers::jobs::cancel_job))
            .route("/events", web::get().to(handlers::jobs::events))
            .route("/openapi.json", web::get().to(openapi::spec))
            .route("/docs", web::get().to(openapi::docs))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::not_found("no such API endpoint"))
            })),
    )
    .route("/mcp", web::route().to(mcp::mcp))
    .route("/media/{id}", web::get().to(media::media))
    .route("/thumbs/{id}", web::get().to(media::thumb))
    .route("/metrics", web::get().to(metrics::metrics))
    .route("/login", web::get().to(auth::login_page))
    .route("/login", web::post().to(auth::login))
    .route("/", web::get().to(media::ui_index))
    .route("/{file}", web::get().to(media::ui_file));
}

/// Starts everything and serves until interrupted.
pub async fn serve(config: ServeConfig, catalog: Arc<Catalog>, model: Arc<Embedder>) -> Result<(), ServeError> {
    if !config.bind.ip().is_loopback() && config.token.is_none() && !catalog.has_keys().await.unwrap_or(false) {
        return Err(ServeError::NeedsToken(config.bind));
    }
    let roots = library_roots(&config.libraries)?;
    // Clips left by a server that stopped while cutting them.
    let _ = std::fs::remove_dir_all(&config.clips.tmp);
    let state = web::Data::new(AppState::start(config.clone(), roots.clone(), catalog.clone(), model));

    let _watcher = if config.watch && !roots.is_empty() {
        Some(start_watch(&roots, state.clone())?)
    } else {
        None
    };

    let data = state.clone();
    // Any Host header once a token guards the endpoint; else rmcp's loopback-only check.
    let host = Arc::new(mcp::ServerHost { state: state.clone() });
    let endpoint = web::Data::new(crate::mcp::HttpMcp::new(host, config.token.is_some()));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(endpoint.clone())
            .app_data(web::PayloadConfig::new(usize::MAX))
            .wrap(actix_web::middleware::from_fn(auth::require_token))
            .configure(configure)
    })
    .on_connect(handlers::clips::remember_peer)
    .workers(2)
    .bind(config.bind)
    .map_err(|e| ServeError::Bind {
        addr: config.bind,
        reason: e.to_string(),
    })?;
    let addrs = server.addrs();
    eprintln!(
        "vidseek: serving {} with {} on {} at http://{}/",
        roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        state.runner.model().model_name(),
        state.runner.model().provider(),
        addrs.first().map(|a| a.to_string()).unwrap_or_default()
    );
    server.run().await.map_err(|e| ServeError::Bind {
        addr: config.bind,
        reason: e.to_string(),
    })?;
    catalog.save_vectors().await.ok();
    Ok(())
}

/// The library folders, made when missing, canonical.
fn library_roots(libraries: &[PathBuf]) -> Result<Vec<PathBuf>, ServeError> {
    let bad = |r: &PathBuf, e: std::io::Error| ServeError::Library {
        path: r.clone(),
        reason: e.to_string(),
    };
    libraries
        .iter()
        .map(|r| {
            std::fs::create_dir_all(r).map_err(|e| bad(r, e))?;
            r.canonicalize().map_err(|e| bad(r, e))
        })
        .collect()
}

/// `--watch`: files that settle are indexed, files that vanish are removed.
fn start_watch(roots: &[PathBuf], state: web::Data<AppState>) -> Result<crate::library::Watcher, ServeError> {
    let handle = tokio::runtime::Handle::current();
    let w = crate::library::watch(roots, std::time::Duration::from_secs(2), move |changes| {
        let state = state.clone();
        handle.spawn(async move {
            if !changes.ready.is_empty() {
                match state.runner.submit(&changes.ready).await {
                    Ok(id) => tracing::info!("watch: job {id} for {} file(s)", changes.ready.len()),
                    Err(e) => tracing::warn!("watch: {e}"),
                }
            }
            for path in changes.removed {
                let key = path.display().to_string();
                if let Ok(Some(v)) = state.catalog.video_by_path(&key).await
                    && state.catalog.remove_video(v.id).await.unwrap_or(false)
                {
                    state.announce_removed(v.id, key);
                }
            }
        });
    })?;
    Ok(w)
}
