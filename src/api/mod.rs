//! `api`: the HTTP server (the only importer of actix-web). Thin handlers: parse and
//! validate, call `search`, `jobs` or the catalog, map errors to HTTP in one place
//! ([`ApiError`]). Also serves the UI (ui/, embedded in the binary), original media
//! with HTTP Range support, thumbnails, Server-Sent Events, OpenAPI and metrics.

mod dto;
mod handlers;
mod media;
mod metrics;
mod openapi;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{App, HttpResponse, HttpServer, ResponseError, web};
use serde::Serialize;
use tokio::sync::{Semaphore, broadcast};

use crate::catalog::Catalog;
use crate::embed::Embedder;
use crate::error::{Classified, Fault};
use crate::jobs::{IndexOptions, JobRunner, Progress};

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
         Set --token or VIDSEEK_TOKEN, or bind to 127.0.0.1"
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
    pub metrics: Metrics,
    pub config: ServeConfig,
    /// Canonical library roots.
    pub roots: Vec<PathBuf>,
}

/// The one place errors become HTTP responses: `{"message", "code"}` with a status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", msg)
    }
    /// The server cannot do it now for a reason that is not the client's (disk full, a
    /// read-only data folder): 503, with the fix in the message.
    pub fn unavailable(msg: impl std::fmt::Display) -> Self {
        tracing::warn!("{msg}");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", msg.to_string())
    }
    /// A file-system failure of the server (a full disk, a read-only folder: 503).
    pub fn io(e: std::io::Error) -> Self {
        match crate::error::io_fault(&e) {
            Fault::Unavailable => {
                Self::unavailable(format!("{e}; free space or fix the permissions of the library folder"))
            }
            _ => Self::internal(e),
        }
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        tracing::error!("{msg}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", msg.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(serde_json::json!({"message": self.message, "code": self.code}))
    }
}

impl ApiError {
    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
}

/// Every module error becomes a response the same way: its class gives the status, its
/// code the machine-readable code, its message the text. Internal faults are logged.
impl<E: Classified> From<E> for ApiError {
    fn from(e: E) -> Self {
        let status = match e.fault() {
            Fault::BadInput => StatusCode::BAD_REQUEST,
            Fault::NotFound => StatusCode::NOT_FOUND,
            Fault::Conflict => StatusCode::CONFLICT,
            Fault::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Fault::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match e.fault() {
            Fault::Internal => tracing::error!("{e}"),
            Fault::Unavailable => tracing::warn!("{e}"),
            _ => {}
        }
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// Token check for everything but the UI's static files and the login page.
async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let path = req.path();
    // The API's description and its reference page say how to get in: they stay open.
    let open = path == "/api/openapi.json" || path == "/api/docs";
    let protected = !open
        && (path.starts_with("/api")
            || path.starts_with("/media")
            || path.starts_with("/thumbs")
            || path == "/metrics");
    if let (Some(state), true) = (state, protected)
        && let Some(token) = state.config.token.as_deref()
    {
        let bearer = req
            .headers()
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::to_string);
        let cookie = req.cookie("vidseek_token").map(|c| c.value().to_string());
        let given = bearer.or(cookie).or_else(|| {
            // EventSource cannot set headers; the UI passes the token in the query.
            (path == "/api/events")
                .then(|| web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string()).ok())
                .flatten()
                .and_then(|q| q.get("token").cloned())
        });
        if !given
            .as_deref()
            .is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
        {
            let e = ApiError::new(
                StatusCode::UNAUTHORIZED,
                if given.is_some() { "bad_token" } else { "missing_token" },
                "a valid token is required: send \"Authorization: Bearer TOKEN\" or log in at /login",
            );
            return Err(e.into());
        }
    }
    next.call(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Maps actix's own extractor errors (bad JSON, bad query, bad path) to `{message, code}`.
fn json_error(err: impl std::fmt::Display) -> actix_web::Error {
    ApiError::bad_request(format!("malformed request: {err}"))
        .with_code("malformed")
        .into()
}

/// Routes: shared by the server and the integration tests' in-process app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(1 << 20)
            .error_handler(|e, _| json_error(e)),
    )
    .app_data(web::QueryConfig::default().error_handler(|e, _| json_error(e)))
    .app_data(
        web::PathConfig::default().error_handler(|e, _| ApiError::not_found(format!("no such resource ({e})")).into()),
    )
    .service(
        web::scope("/api")
            .route("/health", web::get().to(handlers::health))
            .route("/search", web::get().to(handlers::search))
            .route("/search", web::post().to(handlers::search_image))
            .route("/eval", web::post().to(handlers::eval))
            .route("/tags", web::get().to(handlers::tags))
            .route("/labels", web::get().to(handlers::labels))
            .route("/labels", web::put().to(handlers::set_labels))
            .route("/labels", web::delete().to(handlers::reset_labels))
            .route("/probes", web::get().to(handlers::probes))
            .route("/probes", web::post().to(handlers::save_probe))
            .route("/probes/{name}", web::delete().to(handlers::delete_probe))
            .route("/videos", web::get().to(handlers::videos))
            .route("/videos/{id}", web::get().to(handlers::video))
            .route("/videos/{id}", web::delete().to(handlers::delete_video))
            .route("/index", web::post().to(handlers::index))
            .route("/prune", web::post().to(handlers::prune))
            .route("/model", web::get().to(handlers::model))
            .route("/model", web::post().to(handlers::switch_model))
            .route("/upload", web::post().to(handlers::upload))
            .route("/jobs", web::get().to(handlers::jobs))
            .route("/jobs/{id}", web::get().to(handlers::job))
            .route("/jobs/{id}", web::delete().to(handlers::cancel_job))
            .route("/events", web::get().to(handlers::events))
            .route("/openapi.json", web::get().to(openapi::spec))
            .route("/docs", web::get().to(openapi::docs))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::not_found("no such API endpoint"))
            })),
    )
    .route("/media/{id}", web::get().to(media::media))
    .route("/thumbs/{id}", web::get().to(media::thumb))
    .route("/metrics", web::get().to(metrics::metrics))
    .route("/login", web::get().to(handlers::login_page))
    .route("/login", web::post().to(handlers::login))
    .route("/", web::get().to(media::ui_index))
    .route("/{file}", web::get().to(media::ui_file));
}

/// Starts everything and serves until interrupted.
pub async fn serve(config: ServeConfig, catalog: Arc<Catalog>, model: Arc<Embedder>) -> Result<(), ServeError> {
    if !config.bind.ip().is_loopback() && config.token.is_none() {
        return Err(ServeError::NeedsToken(config.bind));
    }
    let mut roots = Vec::new();
    for r in &config.libraries {
        std::fs::create_dir_all(r).map_err(|e| ServeError::Library {
            path: r.clone(),
            reason: e.to_string(),
        })?;
        roots.push(r.canonicalize().map_err(|e| ServeError::Library {
            path: r.clone(),
            reason: e.to_string(),
        })?);
    }
    let (events, _) = broadcast::channel::<ServerEvent>(1024);
    let metrics = Metrics::default();
    let ev = events.clone();
    let progress: crate::jobs::ProgressSink = Arc::new(move |p: Progress| {
        let _ = ev.send(ServerEvent::Job(p));
    });
    let runner = JobRunner::start(
        catalog.clone(),
        model.clone(),
        config.embed.clone(),
        config.index.clone(),
        progress,
        tokio::runtime::Handle::current(),
    );
    let state = web::Data::new(AppState {
        catalog: catalog.clone(),
        runner: runner.clone(),
        events: events.clone(),
        permits: Semaphore::new(config.search_permits.max(1)),
        metrics,
        config: config.clone(),
        roots: roots.clone(),
    });

    let _watcher = if config.watch && !roots.is_empty() {
        Some(start_watch(&roots, state.clone())?)
    } else {
        None
    };

    let data = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(usize::MAX))
            .wrap(actix_web::middleware::from_fn(require_token))
            .configure(configure)
    })
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
                    let _ = state.events.send(ServerEvent::Library {
                        action: "removed".into(),
                        video_id: Some(v.id),
                        path: key,
                    });
                }
            }
        });
    })?;
    Ok(w)
}
