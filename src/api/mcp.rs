//! `/mcp`: the MCP tools over the protocol's streamable HTTP transport, behind the
//! same token as the rest of the API (the middleware in `auth` checks it first). The
//! request is read here (at most `mcp::http::MAX_BODY` bytes) and handed to
//! `crate::mcp::HttpMcp`, whose answer (JSON, or Server-Sent Events while a session
//! talks) is streamed back as it comes.
//!
//! The server's [`Host`]: searches take a permit and count in the metrics as
//! `GET /api/search` does; `index` queues a job on the server's runner for a path inside
//! the library folders, as `POST /api/index` does, for callers with the `admin` scope
//! (the token, an admin key, or a server that asks for neither), as there.

use std::path::PathBuf;

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};

use super::handlers::jobs::job_dto;
use super::handlers::search::searched;
use super::handlers::videos::inside_library;
use super::{ApiError, AppState};
use crate::catalog::{Catalog, KeyScope};
use crate::error::Fault;
use crate::mcp::{Caller, Host, HttpMcp, McpError, McpRequest};
use crate::search::SearchResponse;
use crate::search::params::SearchParams;

/// The tools' view of a running server.
pub(super) struct ServerHost {
    pub state: web::Data<AppState>,
}

fn host_error(e: ApiError) -> McpError {
    let fault = match e.status.as_u16() {
        400 | 403 | 413 => Fault::BadInput,
        404 => Fault::NotFound,
        409 | 429 => Fault::Conflict,
        503 => Fault::Unavailable,
        _ => Fault::Internal,
    };
    McpError::Host {
        fault,
        message: e.message,
    }
}

impl Host for ServerHost {
    fn catalog(&self) -> &Catalog {
        &self.state.catalog
    }

    fn search(&self, params: SearchParams) -> BoxFuture<'_, Result<SearchResponse, McpError>> {
        async move { searched(&self.state, params).await.map_err(host_error) }.boxed()
    }

    fn may_index(&self) -> bool {
        true
    }

    fn index(&self, path: PathBuf) -> BoxFuture<'_, Result<serde_json::Value, McpError>> {
        async move {
            let real = inside_library(&self.state, &path.display().to_string()).map_err(host_error)?;
            let id = self
                .state
                .runner
                .submit(&[real])
                .await
                .map_err(|e| host_error(e.into()))?;
            let job = job_dto(&self.state, id).await.map_err(host_error)?;
            serde_json::to_value(job).map_err(|e| McpError::Host {
                fault: Fault::Internal,
                message: e.to_string(),
            })
        }
        .boxed()
    }

    fn base_url(&self) -> Option<String> {
        self.state.config.base_url.clone()
    }
}

/// `POST`, `GET` and `DELETE /mcp`.
pub(super) async fn mcp(req: HttpRequest, mut payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let Some(endpoint) = req.app_data::<web::Data<HttpMcp>>().cloned() else {
        return Err(ApiError::not_found("this server has no MCP endpoint"));
    };
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("request body interrupted: {e}")))?;
        if body.len() + chunk.len() > crate::mcp::MAX_BODY {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("an MCP message takes at most {} bytes", crate::mcp::MAX_BODY),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let request = McpRequest {
        method: req.method().as_str().to_string(),
        uri: req.uri().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: body.freeze(),
        // The scope `auth` found (none asked for: everything, as on every route).
        caller: Caller {
            admin: req.extensions().get::<KeyScope>().is_none_or(|s| *s == KeyScope::Admin),
        },
    };
    let answer = endpoint.handle(request).await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    for (k, v) in answer.headers {
        // actix frames the streamed body itself.
        if k == "content-length" || k == "transfer-encoding" {
            continue;
        }
        if let Ok(v) = actix_web::http::header::HeaderValue::from_bytes(&v) {
            out.append_header((k, v));
        }
    }
    Ok(out.streaming(answer.body.map(Ok::<_, actix_web::Error>)))
}
