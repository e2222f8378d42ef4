//! The library: `/api/videos`, indexing a path inside a library root, pruning.

use std::path::{Path, PathBuf};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::Result;
use super::jobs::job_dto;
use crate::api::dto::ErrorBody;
use crate::api::dto::jobs::JobDto;
use crate::api::dto::media_url;
use crate::api::dto::videos::{
    FrameDto, IndexBody, Pruned, Removed, ScreenText, ScreenTextDto, Transcript, TranscriptFormat, TranscriptParams,
    TranscriptSegment, TranscriptWord, VideoDetail, VideoParams, Videos,
};
use crate::api::{ApiError, AppState};
use crate::search;
use crate::search::params::SearchParams;

#[utoipa::path(get, path = "/api/videos", tag = "library",
    responses((status = 200, body = Videos), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// All videos with status and error.
pub async fn videos(state: web::Data<AppState>) -> Result<HttpResponse> {
    let videos = state.catalog.videos().await?.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(Videos { videos }))
}

#[utoipa::path(get, path = "/api/videos/{id}", tag = "library", params(("id" = i64, Path), VideoParams),
    responses((status = 200, body = VideoDetail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// A video with its frames (and their scores for q).
pub async fn video(state: web::Data<AppState>, id: web::Path<i64>, p: web::Query<VideoParams>) -> Result<HttpResponse> {
    let id = id.into_inner();
    let v = state
        .catalog
        .video(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("video {id} does not exist")))?;
    let mut scores: std::collections::HashMap<i64, f32> = Default::default();
    if let Some(q) = p.q.as_deref()
        && q.chars().count() > search::MAX_QUERY_CHARS
    {
        return Err(search::SearchError::QueryTooLong(q.chars().count()).into());
    }
    if let Some(q) = p.q.as_deref().filter(|q| !q.trim().is_empty()) {
        SearchParams::new(q, 1).request()?;
        let _permit = state.permits.acquire().await.map_err(ApiError::internal)?;
        for (f, s) in search::group::timeline(&state.catalog, state.runner.model(), id, q).await? {
            scores.insert(f.id, s);
        }
    }
    let frames = state
        .catalog
        .frames_of(id)
        .await?
        .into_iter()
        .map(|f| {
            let score = scores.get(&f.id).copied();
            FrameDto::new(f, score)
        })
        .collect();
    Ok(HttpResponse::Ok().json(VideoDetail {
        media: media_url(id),
        video: v.into(),
        frames,
    }))
}

#[utoipa::path(get, path = "/api/videos/{id}/text", tag = "library", params(("id" = i64, Path)),
    responses((status = 200, body = ScreenText), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// A video's on-screen text (OCR): times, boxes, readings.
pub async fn screen_text(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    let id = id.into_inner();
    if state.catalog.video(id).await?.is_none() {
        return Err(ApiError::not_found(format!("video {id} does not exist")));
    }
    let texts = state
        .catalog
        .screen_text(id)
        .await?
        .into_iter()
        .map(|t| ScreenTextDto {
            start: t.start.unwrap_or(0.0),
            end: t.end.unwrap_or(0.0),
            text: t.text,
            quad: t.quad,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ScreenText { video_id: id, texts }))
}

#[utoipa::path(get, path = "/api/videos/{id}/transcript", tag = "library",
    params(("id" = i64, Path), TranscriptParams),
    responses((status = 200, body = Transcript, description = "format=json; srt and vtt as text/plain and text/vtt",
                  content((Transcript = "application/json"), (String = "text/plain"), (String = "text/vtt"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// A video's recognised speech: segments with word times (JSON), or SRT / WebVTT.
pub async fn transcript(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    p: web::Query<TranscriptParams>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    if state.catalog.video(id).await?.is_none() {
        return Err(ApiError::not_found(format!("video {id} does not exist")));
    }
    let texts = state.catalog.transcript(id).await?;
    let lines: Vec<(f64, f64, &str)> = texts
        .iter()
        .map(|t| (t.start.unwrap_or(0.0), t.end.unwrap_or(0.0), t.text.as_str()))
        .collect();
    match p.format {
        TranscriptFormat::Srt => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(crate::speech::srt(&lines))),
        TranscriptFormat::Vtt => Ok(HttpResponse::Ok()
            .content_type("text/vtt; charset=utf-8")
            .body(crate::speech::vtt(&lines))),
        TranscriptFormat::Json => {
            let segments = texts
                .iter()
                .map(|t| TranscriptSegment {
                    start: t.start.unwrap_or(0.0),
                    end: t.end.unwrap_or(0.0),
                    text: t.text.clone(),
                    words: t
                        .words
                        .iter()
                        .flatten()
                        .map(|(s, e, w)| TranscriptWord {
                            start: *s,
                            end: *e,
                            word: w.clone(),
                        })
                        .collect(),
                })
                .collect();
            Ok(HttpResponse::Ok().json(Transcript { video_id: id, segments }))
        }
    }
}

#[utoipa::path(delete, path = "/api/videos/{id}", tag = "library", params(("id" = i64, Path)),
    responses((status = 204, description = "removed (the file stays)"), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Remove a video from the library (the file stays).
pub async fn delete_video(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    let id = id.into_inner();
    let v = state
        .catalog
        .video(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("video {id} does not exist")))?;
    if !state.catalog.remove_video(id).await? {
        return Err(ApiError::not_found(format!("video {id} does not exist")));
    }
    state.announce_removed(id, v.path);
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/prune", tag = "library",
    responses((status = 200, body = Pruned), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Forget every video whose file is gone.
pub async fn prune(state: web::Data<AppState>) -> Result<HttpResponse> {
    let removed = state.catalog.prune().await?;
    for v in &removed {
        state.announce_removed(v.id, v.path.clone());
    }
    Ok(HttpResponse::Ok().json(Pruned {
        removed: removed
            .into_iter()
            .map(|v| Removed { id: v.id, path: v.path })
            .collect(),
    }))
}

/// A path inside a library root, resolved (symlinks, `..`); 403 outside, 404 missing.
pub(in crate::api) fn inside_library(state: &AppState, path: &str) -> Result<PathBuf> {
    if path.trim().is_empty() {
        return Err(ApiError::bad_request("path is empty"));
    }
    if state.roots.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "outside_library",
            "no library folder is configured (start the server with --library DIR)",
        ));
    }
    let p = Path::new(path);
    if !p.exists() {
        return Err(ApiError::not_found(format!("{path}: no such file or folder")));
    }
    crate::library::inside_roots(p, &state.roots).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "outside_library",
            format!(
                "{path} is outside the library folders ({})",
                state
                    .roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

#[utoipa::path(post, path = "/api/index", tag = "library", request_body = IndexBody,
    responses((status = 202, body = JobDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Index a file or folder inside a library root.
pub async fn index(state: web::Data<AppState>, body: web::Json<IndexBody>) -> Result<HttpResponse> {
    let real = inside_library(&state, &body.path)?;
    let id = state.runner.submit(&[real]).await?;
    Ok(HttpResponse::Accepted().json(job_dto(&state, id).await?))
}
