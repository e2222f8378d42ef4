//! Original media (HTTP Range through actix-files), thumbnails and the embedded UI.
//! No file path ever comes from a URL: media is looked up by video id in the store,
//! UI files by a fixed list of names.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, web};

use super::{ApiError, AppState, dto::ErrorBody};
use crate::catalog::VideoStatus;

#[utoipa::path(get, path = "/media/{id}", tag = "media", params(("id" = i64, Path)),
    responses((status = 200, description = "the original file, typed by its extension", content(
                  (Vec<u8> = "video/mp4"), (Vec<u8> = "video/webm"), (Vec<u8> = "video/x-matroska"), (Vec<u8> = "video/quicktime"),
                  (Vec<u8> = "video/ogg"), (Vec<u8> = "video/x-msvideo"), (Vec<u8> = "application/octet-stream"))),
              (status = 206, description = "a byte range of it (Range requests)", content(
                  (Vec<u8> = "video/mp4"), (Vec<u8> = "video/webm"), (Vec<u8> = "video/x-matroska"), (Vec<u8> = "video/quicktime"),
                  (Vec<u8> = "video/ogg"), (Vec<u8> = "video/x-msvideo"), (Vec<u8> = "application/octet-stream"))),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 416, description = "a range outside the file"),
              (status = 503, body = ErrorBody)))]
/// The original file of an indexed video, with HTTP Range support.
pub async fn media(state: web::Data<AppState>, req: HttpRequest, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let v = indexed_video(&state, id).await?;
    let file = actix_files::NamedFile::open_async(&v.path)
        .await
        .map_err(|e| ApiError::not_found(format!("the file of video {id} is gone ({e}); run prune or re-index")))?;
    let ct = match std::path::Path::new(&v.path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mp4" | "m4v") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mkv") => "video/x-matroska",
        Some("mov") => "video/quicktime",
        Some("ogv") => "video/ogg",
        Some("avi") => "video/x-msvideo",
        _ => "application/octet-stream",
    };
    let file = file
        .set_content_type(ct.parse().expect("valid mime"))
        .use_etag(true)
        .use_last_modified(true);
    Ok(file.into_response(&req))
}

#[utoipa::path(get, path = "/thumbs/{id}", tag = "media", params(("id" = i64, Path, description = "a frame id")),
    responses((status = 200, description = "JPEG thumbnail of the frame", content_type = "image/jpeg"),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// The JPEG made when the frame was indexed.
pub async fn thumb(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let jpeg = state
        .catalog
        .thumbnail(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("frame {id} has no thumbnail")))?;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(86400),
        ]))
        .body(jpeg))
}

const INDEX_HTML: &str = include_str!("../../ui/index.html");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The UI's files by name, with their content types. The UI is ES modules that import
/// each other by these names (no build step), so every module in ui/ is listed here.
const UI_FILES: &[(&str, &str, &str)] = &[
    ("index.html", INDEX_HTML, HTML),
    ("style.css", include_str!("../../ui/style.css"), CSS),
    ("app.js", include_str!("../../ui/app.js"), JS),
    ("api.js", include_str!("../../ui/api.js"), JS),
    ("dom.js", include_str!("../../ui/dom.js"), JS),
    ("eval.js", include_str!("../../ui/eval.js"), JS),
    ("events.js", include_str!("../../ui/events.js"), JS),
    ("export.js", include_str!("../../ui/export.js"), JS),
    ("library.js", include_str!("../../ui/library.js"), JS),
    ("links.js", include_str!("../../ui/links.js"), JS),
    ("player.js", include_str!("../../ui/player.js"), JS),
    ("progress.js", include_str!("../../ui/progress.js"), JS),
    ("results.js", include_str!("../../ui/results.js"), JS),
    ("search.js", include_str!("../../ui/search.js"), JS),
    ("state.js", include_str!("../../ui/state.js"), JS),
    ("tags.js", include_str!("../../ui/tags.js"), JS),
];

pub async fn ui_index() -> HttpResponse {
    HttpResponse::Ok().content_type(HTML).body(INDEX_HTML)
}

/// `GET /{file}`: one of the UI's files; anything else is 404.
pub async fn ui_file(name: web::Path<String>) -> HttpResponse {
    match UI_FILES.iter().find(|(n, ..)| *n == name.as_str()) {
        Some(&(_, body, ct)) => HttpResponse::Ok().content_type(ct).body(body),
        None => HttpResponse::NotFound().json(serde_json::json!({"message": "not found", "code": "not_found"})),
    }
}

#[cfg(test)]
mod tests {
    /// A module left off UI_FILES would be a 404 to the browser and a blank page, which
    /// no compiler notices: every file in ui/ is served (docs.html by openapi.rs).
    #[test]
    fn every_ui_file_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name != "docs.html" {
                assert!(
                    super::UI_FILES.iter().any(|(n, ..)| *n == name),
                    "ui/{name} is not in UI_FILES"
                );
            }
        }
    }
}

/// The indexed video `id` (404 when it is not in the library or failed to index).
pub(super) async fn indexed_video(state: &AppState, id: i64) -> Result<crate::catalog::Video, ApiError> {
    state
        .catalog
        .video(id)
        .await?
        .filter(|v| v.status == VideoStatus::Indexed)
        .ok_or_else(|| ApiError::not_found(format!("video {id} is not in the library")))
}
