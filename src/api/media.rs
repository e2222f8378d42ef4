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
    let v = state
        .catalog
        .video(id)
        .await?
        .filter(|v| v.status == VideoStatus::Indexed)
        .ok_or_else(|| ApiError::not_found(format!("video {id} is not in the library")))?;
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
const APP_JS: &str = include_str!("../../ui/app.js");
const STYLE_CSS: &str = include_str!("../../ui/style.css");

pub async fn ui_index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(INDEX_HTML)
}

/// `GET /{file}`: one of the UI's files; anything else is 404.
pub async fn ui_file(name: web::Path<String>) -> HttpResponse {
    let (body, ct) = match name.as_str() {
        "index.html" => (INDEX_HTML, "text/html; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => {
            return HttpResponse::NotFound().json(serde_json::json!({"message": "not found", "code": "not_found"}));
        }
    };
    HttpResponse::Ok().content_type(ct).body(body)
}
