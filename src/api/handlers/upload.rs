//! `POST /api/upload`: a video streamed into the first library root, then indexed.

use std::path::{Path, PathBuf};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use super::Result;
use super::jobs::job_dto;
use crate::api::dto::ErrorBody;
use crate::api::dto::jobs::{JobDto, Uploaded};
use crate::api::dto::videos::UploadForm;
use crate::api::{ApiError, AppState};

/// A safe file name for an upload: the last path component, tame characters only.
pub(super) fn sanitize(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.').trim().to_string();
    if clean.is_empty() { "upload".into() } else { clean }
}

#[utoipa::path(post, path = "/api/upload", tag = "library",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 202, body = JobDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Upload a video into the first library root and index it (the name is made safe and
/// never overwrites a file).
pub async fn upload(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: actix_multipart::Multipart,
) -> Result<HttpResponse> {
    let limit = state.config.max_upload;
    if let Some(len) = req
        .headers()
        .get("content-length")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok())
        && len > limit + 64 * 1024
    {
        return Err(too_big(limit));
    }
    let dir = uploads_dir(&state)?;
    while let Some(field) = payload.next().await {
        let field = field.map_err(|e| ApiError::bad_request(format!("malformed upload: {e}")))?;
        let Some(name) = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(sanitize)
        else {
            continue;
        };
        let target = free_name(&dir, &name);
        let bytes = store(field, &target, limit).await?;
        let id = state.runner.submit(std::slice::from_ref(&target)).await?;
        let mut job = job_dto(&state, id).await?;
        job.uploaded = Some(Uploaded {
            path: target.display().to_string(),
            bytes,
        });
        return Ok(HttpResponse::Accepted().json(job));
    }
    Err(ApiError::bad_request(
        "no file in the upload (send multipart/form-data with a \"file\" field)",
    ))
}

fn too_big(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("uploads are limited to {limit} bytes"),
    )
}

/// `uploads/` in the first library root, made when missing.
fn uploads_dir(state: &AppState) -> Result<PathBuf> {
    let root = state.roots.first().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "outside_library",
            "no library folder is configured for uploads",
        )
    })?;
    let dir = root.join("uploads");
    std::fs::create_dir_all(&dir).map_err(ApiError::io)?;
    Ok(dir)
}

/// Never overwrite: name-1.mp4, name-2.mp4, ...
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let mut target = dir.join(name);
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) => (s.to_string(), format!(".{e}")),
        None => (name.to_string(), String::new()),
    };
    let mut n = 1;
    while target.exists() {
        target = dir.join(format!("{stem}-{n}{ext}"));
        n += 1;
    }
    target
}

/// Streams the field into a hidden `.NAME.part` beside `target` and renames it into
/// place once whole (a partial file is removed): the bytes written.
async fn store(mut field: actix_multipart::Field, target: &Path, limit: u64) -> Result<u64> {
    let partial = target.with_file_name(format!(
        ".{}.part",
        target.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut file = tokio::fs::File::create(&partial).await.map_err(ApiError::io)?;
    let mut written: u64 = 0;
    while let Some(chunk) = field.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(ApiError::bad_request(format!("upload interrupted: {e}")));
            }
        };
        written += chunk.len() as u64;
        if written > limit {
            drop(file);
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(too_big(limit));
        }
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
            .await
            .map_err(ApiError::io)?;
    }
    tokio::io::AsyncWriteExt::flush(&mut file).await.map_err(ApiError::io)?;
    drop(file);
    tokio::fs::rename(&partial, target).await.map_err(ApiError::io)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn upload_names_lose_paths_and_odd_characters() {
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("C:\\videos\\holiday clip.mp4"), "holiday clip.mp4");
        assert_eq!(sanitize(".hidden.mp4"), "hidden.mp4");
        assert_eq!(sanitize("a;rm -rf.mp4"), "a_rm -rf.mp4");
        assert_eq!(sanitize(""), "upload");
    }
}
