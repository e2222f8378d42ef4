//! `GET /api/openapi.json`, generated from the handlers and the `dto` types (utoipa),
//! and `GET /api/docs`, a reference page the binary serves itself (no CDN) that
//! renders that document. Security is described as it is: a bearer token only when the
//! server was started with one.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};

use super::{AppState, dto, handlers, media, metrics};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vidseek",
        description = "Text-to-video semantic search. Errors are {message, code} with the status of their class: \
                       400 bad input, 404 not found, 409 conflict, 503 the machine cannot do it now, 500 a bug.",
        license(name = "Apache-2.0")
    ),
    paths(
        handlers::status::health,
        handlers::search::search,
        handlers::search::search_image,
        handlers::search::eval,
        handlers::tags::tags,
        handlers::tags::labels,
        handlers::tags::set_labels,
        handlers::tags::reset_labels,
        handlers::tags::probes,
        handlers::tags::save_probe,
        handlers::tags::delete_probe,
        handlers::videos::videos,
        handlers::videos::video,
        handlers::videos::screen_text,
        handlers::videos::transcript,
        handlers::clips::clip,
        handlers::clips::timeline,
        handlers::videos::delete_video,
        handlers::videos::prune,
        handlers::videos::index,
        handlers::upload::upload,
        handlers::jobs::jobs,
        handlers::jobs::job,
        handlers::jobs::cancel_job,
        handlers::jobs::events,
        handlers::model::model,
        handlers::model::switch_model,
        spec,
        docs,
        media::media,
        media::thumb,
        metrics::metrics,
    ),
    components(schemas(
        dto::ErrorBody,
        dto::videos::UploadForm,
        dto::search::SearchForm,
        dto::search::GroupBy,
        dto::clips::ClipFormatDto,
        dto::clips::TimelineFormat,
        dto::videos::TranscriptFormat
    )),
    tags(
        (name = "search", description = "Finding moments"),
        (name = "library", description = "Videos, indexing, uploads"),
        (name = "jobs", description = "Indexing and switch jobs, live events"),
        (name = "model", description = "The model and switching it"),
        (name = "media", description = "Files and thumbnails"),
        (name = "status", description = "Health, metrics, this document")
    )
)]
struct ApiDoc;

/// The document for a server with (or without) a token.
pub fn document(token: bool) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    if token {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.delete].into_iter().flatten() {
                op.security = Some(vec![bearer.clone()]);
            }
        }
        // The document and its page describe how to get in: they stay open.
        for open in ["/api/openapi.json", "/api/docs"] {
            if let Some(op) = doc.paths.paths.get_mut(open).and_then(|i| i.get.as_mut()) {
                op.security = None;
            }
        }
    }
    doc
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "status",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
/// This document.
pub async fn spec(state: web::Data<AppState>) -> Result<HttpResponse, super::ApiError> {
    Ok(HttpResponse::Ok().json(document(state.auth_required().await?)))
}

#[utoipa::path(get, path = "/api/docs", tag = "status",
    responses((status = 200, description = "An HTML page rendering this document", content_type = "text/html")))]
/// The API reference, rendered from this document.
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("../../ui/docs.html"))
}
