//! Zero-shot tags: `/api/tags`, the vocabulary (`/api/labels`) and few-shot probes
//! saved as tags (`/api/probes`).

use actix_web::{HttpResponse, web};

use super::Result;
use crate::api::dto::ErrorBody;
use crate::api::dto::tags::{Labels, LabelsBody, ProbeDto, Probes, TagDto, Tags};
use crate::api::{ApiError, AppState};
use crate::search;

#[utoipa::path(get, path = "/api/tags", tag = "search",
    responses((status = 200, body = Tags), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Every zero-shot tag in use with its moments and videos, most moments first (the tags
/// are brought up to date first).
pub async fn tags(state: web::Data<AppState>) -> Result<HttpResponse> {
    let tags = search::tags::counts(&state.catalog, &state.runner.model()).await?;
    Ok(HttpResponse::Ok().json(Tags {
        tags: tags
            .into_iter()
            .map(|t| TagDto {
                label: t.label,
                moments: t.moments,
                videos: t.videos,
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/api/labels", tag = "search",
    responses((status = 200, body = Labels), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// The library's label vocabulary.
pub async fn labels(state: web::Data<AppState>) -> Result<HttpResponse> {
    let (labels, set) = search::tags::labels(&state.catalog, &state.runner.model()).await?;
    Ok(HttpResponse::Ok().json(Labels { labels, default: !set }))
}

#[utoipa::path(put, path = "/api/labels", tag = "search", request_body = LabelsBody,
    responses((status = 200, body = Labels), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
/// Sets the vocabulary; the tags are recomputed from the stored vectors (no decoding).
pub async fn set_labels(state: web::Data<AppState>, body: web::Json<LabelsBody>) -> Result<HttpResponse> {
    let text = body.into_inner().labels.join("\n");
    let labels = search::tags::set_labels(&state.catalog, Some(&text)).await?;
    search::tags::ensure(&state.catalog, &state.runner.model()).await?;
    Ok(HttpResponse::Ok().json(Labels { labels, default: false }))
}

#[utoipa::path(delete, path = "/api/labels", tag = "search",
    responses((status = 200, body = Labels), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Back to the default vocabulary.
pub async fn reset_labels(state: web::Data<AppState>) -> Result<HttpResponse> {
    search::tags::set_labels(&state.catalog, None).await?;
    let model = state.runner.model();
    search::tags::ensure(&state.catalog, &model).await?;
    let (labels, _) = search::tags::labels(&state.catalog, &model).await?;
    Ok(HttpResponse::Ok().json(Labels { labels, default: true }))
}

#[utoipa::path(get, path = "/api/probes", tag = "search",
    responses((status = 200, body = Probes), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Few-shot probes saved as tags.
pub async fn probes(state: web::Data<AppState>) -> Result<HttpResponse> {
    let probes = state.catalog.probes().await?;
    Ok(HttpResponse::Ok().json(Probes {
        probes: probes
            .into_iter()
            .map(|p| ProbeDto {
                name: p.name,
                q: p.query,
                like: p.likes,
                unlike: p.unlikes,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/api/probes", tag = "search", request_body = ProbeDto,
    responses((status = 200, body = Probes), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Saves a few-shot probe ("more like these" frames) as a named tag: every frame it
/// finds credible gets the tag.
pub async fn save_probe(state: web::Data<AppState>, body: web::Json<ProbeDto>) -> Result<HttpResponse> {
    let p = body.into_inner();
    if p.q.chars().count() > search::MAX_QUERY_CHARS {
        return Err(search::SearchError::QueryTooLong(p.q.chars().count()).into());
    }
    let model = state.runner.model();
    // Trained once here so that unknown frames are a 404 now, not a skipped tag later.
    search::tags::train_probe(&state.catalog, &model, &p.like, &p.unlike, None).await?;
    search::tags::save_probe(
        &state.catalog,
        crate::catalog::SavedProbe {
            name: p.name,
            query: p.q,
            likes: p.like,
            unlikes: p.unlike,
        },
    )
    .await?;
    search::tags::ensure(&state.catalog, &model).await?;
    probes(state).await
}

#[utoipa::path(delete, path = "/api/probes/{name}", tag = "search", params(("name" = String, Path)),
    responses((status = 200, body = Probes), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
/// Deletes a saved probe (and its tag).
pub async fn delete_probe(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse> {
    let name = name.into_inner();
    if !search::tags::delete_probe(&state.catalog, &name).await? {
        return Err(ApiError::not_found(format!("no saved probe is named {name:?}")));
    }
    search::tags::ensure(&state.catalog, &state.runner.model()).await?;
    probes(state).await
}
