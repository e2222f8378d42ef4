//! Jobs: `/api/jobs` and the live events (`/api/events`, Server-Sent Events).

use actix_web::{HttpResponse, web};

use super::Result;
use crate::api::dto::ErrorBody;
use crate::api::dto::jobs::{JobDto, Jobs};
use crate::api::{ApiError, AppState, ServerEvent};

pub(in crate::api) async fn job_dto(state: &AppState, id: i64) -> Result<JobDto> {
    let queue = state.catalog.queue();
    let job = queue
        .job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id} does not exist")))?;
    Ok(JobDto::new(job, queue.files(id).await?))
}

#[utoipa::path(get, path = "/api/jobs", tag = "jobs",
    responses((status = 200, body = Jobs), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Recent jobs, newest first.
pub async fn jobs(state: web::Data<AppState>) -> Result<HttpResponse> {
    let queue = state.catalog.queue();
    let mut out = Vec::new();
    for j in queue.recent(100).await? {
        let files = queue.files(j.id).await?;
        out.push(JobDto::new(j, files));
    }
    Ok(HttpResponse::Ok().json(Jobs { jobs: out }))
}

#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = JobDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// A job with progress and per-file results.
pub async fn job(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(job_dto(&state, id.into_inner()).await?))
}

#[utoipa::path(delete, path = "/api/jobs/{id}", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = JobDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Cancel a job (a switch is abandoned: the library keeps its model).
pub async fn cancel_job(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    let id = id.into_inner();
    job_dto(&state, id).await?; // 404 for unknown jobs
    let live = state.runner.cancel(id).await?;
    let mut v = job_dto(&state, id).await?;
    v.canceled = Some(live);
    Ok(HttpResponse::Ok().json(v))
}

#[utoipa::path(get, path = "/api/events", tag = "jobs",
    responses((status = 200, description = "Server-Sent Events: job progress (event: job) and library changes (event: library)", content_type = "text/event-stream"),
              (status = 401, body = ErrorBody)))]
/// Server-Sent Events: job progress and library changes, with a keep-alive comment.
pub async fn events(state: web::Data<AppState>) -> HttpResponse {
    let rx = state.events.subscribe();
    let tick = tokio::time::interval(std::time::Duration::from_secs(15));
    let stream = futures_util::stream::unfold((rx, tick, true), |(mut rx, mut tick, first)| async move {
        if first {
            return Some((
                Ok::<_, actix_web::Error>(web::Bytes::from_static(b": connected\n\n")),
                (rx, tick, false),
            ));
        }
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        let kind = match &ev { ServerEvent::Job(_) => "job", ServerEvent::Library { .. } => "library" };
                        let data = serde_json::to_string(&ev).unwrap_or_default();
                        return Some((Ok(web::Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))), (rx, tick, false)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
                _ = tick.tick() => return Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), (rx, tick, false))),
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}
