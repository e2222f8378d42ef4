//! The protocol's streamable HTTP transport (one endpoint: POST a JSON-RPC message, GET
//! the server's stream, DELETE the session), served by rmcp's own session handling in
//! plain `http` types. `api` turns an actix-web request into an [`McpRequest`] and the
//! [`McpResponse`] (status, headers, a stream of body chunks: JSON or Server-Sent
//! Events) back, so neither side imports the other's library and no second HTTP stack
//! (axum, hyper's server) comes in.
//!
//! Does not: check the token (the API's middleware does, as for every route).

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::Host;
use super::tools::Vidseek;

/// Largest JSON-RPC message accepted (rmcp's own default).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// An HTTP request to the MCP endpoint, as the adapter received it.
pub struct McpRequest {
    pub method: String,
    /// The path and query (`/mcp`).
    pub uri: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: bytes::Bytes,
    /// Who sent it (the tools read it: `index` is for administrators).
    pub caller: super::Caller,
}

/// The answer: status, headers and the body as it is produced (an SSE stream stays open
/// while the session talks).
pub struct McpResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Pin<Box<dyn Stream<Item = bytes::Bytes> + Send>>,
}

/// The MCP endpoint of a server: sessions kept in memory, one handler per session.
#[derive(Clone)]
pub struct HttpMcp {
    service: StreamableHttpService<Vidseek, LocalSessionManager>,
}

impl HttpMcp {
    /// The endpoint over `host`. `any_host`: accept any `Host` header (the server checks
    /// a token); else only loopback names, rmcp's guard against DNS rebinding.
    pub fn new(host: Arc<dyn Host>, any_host: bool) -> Self {
        let mut config = StreamableHttpServerConfig::default();
        if any_host {
            config = config.disable_allowed_hosts();
        }
        let service = StreamableHttpService::new(
            move || Ok(Vidseek::new(host.clone())),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        Self { service }
    }

    /// Answers one request.
    pub async fn handle(&self, req: McpRequest) -> McpResponse {
        if let Some(refused) = not_json_rpc(&req) {
            return refused;
        }
        let mut b = http::Request::builder()
            .method(req.method.as_str())
            .uri(req.uri.as_str());
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_slice());
        }
        let b = b.extension(req.caller);
        let request = match b.body(http_body_util::Full::new(req.body)) {
            Ok(r) => r,
            Err(e) => return plain(400, format!("Bad Request: {e}")),
        };
        let response = self.service.handle(request).await;
        let (parts, body) = response.into_parts();
        let mut headers: Vec<(String, Vec<u8>)> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
            .collect();
        // rmcp's refusals (406, 415, a missing session) are plain words without a type.
        if !parts.headers.contains_key(http::header::CONTENT_TYPE) {
            headers.push(("content-type".into(), b"text/plain; charset=utf-8".to_vec()));
        }
        let body = body.into_data_stream().map(|chunk| match chunk {
            Ok(bytes) => bytes,
            Err(never) => match never {},
        });
        McpResponse {
            status: parts.status.as_u16(),
            headers,
            body: Box::pin(body),
        }
    }
}

/// A POST of JSON that is not one JSON-RPC 2.0 message: 400 with the JSON-RPC error a
/// client can read (-32700 for a body that is not JSON, -32600 for JSON that is not a
/// request, notification or response). rmcp itself would answer 415, which says the
/// media type is wrong when the content is.
fn not_json_rpc(req: &McpRequest) -> Option<McpResponse> {
    let json_typed = req.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("content-type") && v.to_ascii_lowercase().starts_with(b"application/json")
    });
    if req.method != "POST" || !json_typed {
        return None;
    }
    let (code, message) = match serde_json::from_slice::<serde_json::Value>(&req.body) {
        Err(e) => (-32700, format!("Parse error: the body is not JSON ({e})")),
        Ok(serde_json::Value::Array(_)) => (
            -32600,
            "Invalid Request: one JSON-RPC message per POST (batches are not supported)".to_string(),
        ),
        Ok(v) if v["jsonrpc"] != "2.0" || !(v.get("method").is_some() || v.get("result").is_some() || v.get("error").is_some()) => (
            -32600,
            "Invalid Request: not a JSON-RPC 2.0 message (an object with \"jsonrpc\": \"2.0\" and a method, result or error)".to_string(),
        ),
        Ok(_) => return None,
    };
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message } });
    Some(McpResponse {
        status: 400,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: Box::pin(futures_util::stream::once(async move {
            bytes::Bytes::from(body.to_string())
        })),
    })
}

fn plain(status: u16, text: String) -> McpResponse {
    McpResponse {
        status,
        headers: vec![("content-type".into(), b"text/plain; charset=utf-8".to_vec())],
        body: Box::pin(futures_util::stream::once(async move { bytes::Bytes::from(text) })),
    }
}
