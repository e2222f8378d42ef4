//! The access token: the middleware that asks every protected route for it, and the
//! login page that sets it as a cookie for the UI.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{ApiError, AppState};

/// Token check for everything but the UI's static files and the login page.
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
            || path == "/metrics"
            || path == "/mcp");
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

pub async fn login(state: web::Data<AppState>, form: web::Form<LoginForm>) -> HttpResponse {
    match state.config.token.as_deref() {
        Some(t) if constant_time_eq(t.as_bytes(), form.token.as_bytes()) => {
            let cookie = actix_web::cookie::Cookie::build("vidseek_token", form.token.clone())
                .path("/")
                .http_only(true)
                .same_site(actix_web::cookie::SameSite::Strict)
                .finish();
            HttpResponse::SeeOther()
                .insert_header(("Location", after_login(form.next.as_deref())))
                .cookie(cookie)
                .finish()
        }
        None => HttpResponse::SeeOther()
            .insert_header(("Location", after_login(form.next.as_deref())))
            .finish(),
        Some(_) => HttpResponse::Unauthorized()
            .content_type("text/html; charset=utf-8")
            .body(LOGIN_HTML.replace("<!--error-->", "<p class=\"error\">Wrong token.</p>")),
    }
}

const LOGIN_HTML: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>vidseek - log in</title><link rel="stylesheet" href="/style.css"></head>
<body class="login"><main><h1>vidseek</h1><p>This server needs its access token.</p><!--error-->
<form method="post" action="/login"><input type="password" name="token" placeholder="token" autofocus required>
<input type="hidden" name="next" value="/"><button type="submit">Log in</button></form></main>
<script>document.querySelector("[name=next]").value = new URLSearchParams(location.search).get("next") || "/";</script>
</body></html>"#;
