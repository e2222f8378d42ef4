//! Who may do what: the server's `--token` (everything) and the library's API keys
//! (`vidseek keys`, shared by every node: `search` reads, `admin` also changes the
//! library), asked of every protected route by one middleware; the login page that sets
//! either as a cookie for the UI. Keys are looked up through a short cache, so a key
//! made or revoked on any node counts everywhere within [`KEY_CACHE`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::catalog::KeyScope;

/// How long a node trusts what it read about a key (or whether the library has any):
/// a revoked key is refused by every node within this time.
pub const KEY_CACHE: Duration = Duration::from_secs(5);

/// Keys (by their SHA-256) recently checked, and whether the library has any.
#[derive(Default)]
pub struct KeyCache {
    seen: Mutex<HashMap<String, (Option<KeyScope>, Instant)>>,
    any: Mutex<Option<(bool, Instant)>>,
}

/// Cached answers at most (unknown keys included, so guessing costs the store nothing
/// more); past it the cache starts over.
const KEY_CACHE_ENTRIES: usize = 10_000;

impl AppState {
    /// Whether requests must say who they are: a `--token` is set, or the library has
    /// a live API key.
    pub(crate) async fn auth_required(&self) -> Result<bool, ApiError> {
        if self.config.token.is_some() {
            return Ok(true);
        }
        if let Some((any, at)) = *self.keys.any.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < KEY_CACHE
        {
            return Ok(any);
        }
        let any = self.catalog.has_keys().await?;
        *self.keys.any.lock().unwrap_or_else(|e| e.into_inner()) = Some((any, Instant::now()));
        Ok(any)
    }

    /// What `given` (the token or a key) may do; None: nothing.
    async fn scope_of(&self, given: &str) -> Result<Option<KeyScope>, ApiError> {
        if let Some(token) = self.config.token.as_deref()
            && constant_time_eq(given.as_bytes(), token.as_bytes())
        {
            return Ok(Some(KeyScope::Admin));
        }
        if !given.starts_with(crate::util::secret::KEY_PREFIX) {
            return Ok(None);
        }
        let hash = crate::util::secret::key_hash(given);
        if let Some((scope, at)) = self.keys.seen.lock().unwrap_or_else(|e| e.into_inner()).get(&hash)
            && at.elapsed() < KEY_CACHE
        {
            return Ok(*scope);
        }
        let scope = self.catalog.key_scope(given).await?;
        let mut seen = self.keys.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= KEY_CACHE_ENTRIES {
            seen.clear();
        }
        seen.insert(hash, (scope, Instant::now()));
        Ok(scope)
    }
}

/// The credential a request carries: `Authorization: Bearer`, the UI's cookie, or (for
/// the event stream, which cannot set headers) `?token=`.
fn credential(req: &ServiceRequest) -> Option<String> {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_string);
    let cookie = || req.cookie("vidseek_token").map(|c| c.value().to_string());
    bearer.or_else(cookie).or_else(|| {
        (req.path() == "/api/events")
            .then(|| web::Query::<HashMap<String, String>>::from_query(req.query_string()).ok())
            .flatten()
            .and_then(|q| q.get("token").cloned())
    })
}

/// Whether a request only reads (what a `search` key may send): every GET, and the
/// searches sent as POST (a picture, an evaluation).
fn only_reads(method: &Method, path: &str) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
        || (*method == Method::POST && matches!(path, "/api/search" | "/api/eval"))
}

/// The token or key check for everything but the UI's static files and the login page.
/// The request's [`KeyScope`] is left in its extensions for handlers that decide more
/// finely.
pub(super) async fn require_token(
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
    let Some(state) = state.filter(|_| protected) else {
        return next.call(req).await;
    };
    let scope = if state.auth_required().await? {
        let given = credential(&req);
        let scope = match &given {
            Some(g) => state.scope_of(g).await?,
            None => None,
        };
        let Some(scope) = scope else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                if given.is_some() { "bad_token" } else { "missing_token" },
                "a valid token or API key is required: send \"Authorization: Bearer TOKEN\" or log in at /login",
            )
            .into());
        };
        if scope == KeyScope::Search && !only_reads(req.method(), req.path()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this API key may only search and read (scope `search`): indexing, deleting, labels, probes, \
                 uploads, model switches and cancelling jobs need an `admin` key (`vidseek keys create NAME --scope admin`) \
                 or the server's token",
            )
            .into());
        }
        scope
    } else {
        KeyScope::Admin
    };
    req.extensions_mut().insert(scope);
    next.call(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn login_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(LOGIN_HTML)
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    /// Where the browser was going (a link into the UI): a path on this server.
    #[serde(default)]
    next: Option<String>,
}

/// Where to go after logging in: `next` when it is a path on this server (`/?q=...`),
/// never another site (`//host`, `/\host`, a scheme); else the UI.
fn after_login(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= 4000
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/",
    }
}

pub async fn login(state: web::Data<AppState>, form: web::Form<LoginForm>) -> Result<HttpResponse, ApiError> {
    let next = after_login(form.next.as_deref());
    if !state.auth_required().await? {
        return Ok(HttpResponse::SeeOther().insert_header(("Location", next)).finish());
    }
    if state.scope_of(&form.token).await?.is_none() {
        return Ok(HttpResponse::Unauthorized()
            .content_type("text/html; charset=utf-8")
            .body(LOGIN_HTML.replace("<!--error-->", "<p class=\"error\">Wrong token or key.</p>")));
    }
    let cookie = actix_web::cookie::Cookie::build("vidseek_token", form.token.clone())
        .path("/")
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Strict)
        .finish();
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", next))
        .cookie(cookie)
        .finish())
}

const LOGIN_HTML: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>vidseek - log in</title><link rel="stylesheet" href="/style.css"></head>
<body class="login"><main><h1>vidseek</h1><p>This server needs its access token or an API key.</p><!--error-->
<form method="post" action="/login"><input type="password" name="token" placeholder="token or key" autofocus required>
<input type="hidden" name="next" value="/"><button type="submit">Log in</button></form></main>
<script>document.querySelector("[name=next]").value = new URLSearchParams(location.search).get("next") || "/";</script>
</body></html>"#;
