//! Searching: `GET /api/search` (text, a stored frame, few-shot examples), `POST
//! /api/search` (an uploaded picture) and `POST /api/eval`. The query string is read
//! into `search::params` (the same builder the CLI fills), which parses and checks it.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;

use super::Result;
use super::upload::sanitize;
use crate::api::dto::ErrorBody;
use crate::api::dto::search::{
    EvalParams, EvalReport, GroupBy, SearchForm, SearchQueryString, SearchResponse, TruthDto,
};
use crate::api::{ApiError, AppState};
use crate::search::params::{self, SearchParams, TemplatesArg};
use crate::search::{self, ImageQuery, MinScore};

#[utoipa::path(get, path = "/api/search", tag = "search", params(SearchQueryString),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Search by text (the query language) or by a stored frame: moments (time spans) in
/// videos, best first; by default only credible matches.
pub async fn search(state: web::Data<AppState>, p: web::Query<SearchQueryString>) -> Result<HttpResponse> {
    let p = p.into_inner();
    let group = p.group == Some(GroupBy::Video);
    run_search(&state, params_of(p)?, group).await
}

/// The search the query string asks for (its own syntax: `like=12,40`).
pub(super) fn params_of(p: SearchQueryString) -> Result<SearchParams> {
    Ok(SearchParams {
        video: p.video,
        min_score: p.min_score,
        frame: p.frame,
        image_weight: p.image_weight,
        // Written out only: the API never names a file of templates.
        templates: p.templates.map(TemplatesArg::Written),
        tags: p.tag.into_iter().collect(),
        like: frame_ids("like", p.like.as_deref())?,
        unlike: frame_ids("unlike", p.unlike.as_deref())?,
        ..SearchParams::new(p.q, p.k.unwrap_or(20))
    })
}

/// `1,2,3`: frame ids.
fn frame_ids(what: &str, v: Option<&str>) -> Result<Vec<i64>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    if v.split(',').count() > 50 {
        return Err(ApiError::bad_request(format!("{what} takes at most 50 frame ids")));
    }
    v.split(',')
        .map(|t| t.trim().parse::<i64>().ok().filter(|id| *id > 0))
        .collect::<Option<Vec<i64>>>()
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{what} takes frame ids separated by commas, e.g. {what}=12,40 (got {v:?})"
            ))
        })
}

#[utoipa::path(post, path = "/api/search", tag = "search", params(SearchQueryString),
    request_body(content = SearchForm, content_type = "multipart/form-data"),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
/// Search by an uploaded picture (the `image` field), optionally with text (`q`): a
/// weighted sum of the two. The parameters are those of `GET /api/search`.
pub async fn search_image(
    state: web::Data<AppState>,
    p: web::Query<SearchQueryString>,
    payload: actix_multipart::Multipart,
) -> Result<HttpResponse> {
    let p = p.into_inner();
    let group = p.group == Some(GroupBy::Video);
    let mut params = params_of(p)?;
    let (name, bytes) = read_image(payload).await?;
    params.image = Some(ImageQuery::Bytes { name, bytes });
    run_search(&state, params, group).await
}

/// The form's one file field, `image`: its name for messages and its bytes.
async fn read_image(mut payload: actix_multipart::Multipart) -> Result<(String, Vec<u8>)> {
    let mut image: Option<(String, Vec<u8>)> = None;
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| ApiError::bad_request(format!("malformed form: {e}")))?;
        let key = field.name().unwrap_or_default().to_string();
        if key != "image" {
            return Err(ApiError::bad_request(format!(
                "unknown form field {key:?}: the form has one file field, image (the other parameters go in the query, as for GET)"
            )));
        }
        let name = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(sanitize);
        let limit = search::MAX_IMAGE_BYTES;
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("the image is larger than {limit} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        image = Some((name.unwrap_or_else(|| "the uploaded image".into()), bytes));
    }
    image.ok_or_else(|| {
        ApiError::bad_request(
            "no image in the form (send multipart/form-data with an \"image\" file field; for text alone use GET /api/search)",
        )
    })
}

/// Builds and checks the request, takes a search permit, searches (once more when a
/// model switch finished meanwhile), records the metrics.
async fn run_search(state: &AppState, params: SearchParams, group: bool) -> Result<HttpResponse> {
    let res = searched(state, params).await?;
    Ok(HttpResponse::Ok().json(SearchResponse::new(res, group)))
}

/// The answer to `params` (what `run_search` and the timeline export share).
pub(in crate::api) async fn searched(state: &AppState, params: SearchParams) -> Result<search::SearchResponse> {
    let t = Instant::now();
    let res = match params.request() {
        Ok(req) => {
            // A permit per search: indexing cannot crowd searches out, searches queue fairly.
            let _permit = state.permits.acquire().await.map_err(ApiError::internal)?;
            match search::search(&state.catalog, state.runner.model(), &req).await {
                // A switch completed while the query was embedded: once more with the new model.
                Err(search::SearchError::Catalog(crate::catalog::CatalogError::ModelMismatch { .. })) => {
                    search::search(&state.catalog, state.runner.model(), &req).await
                }
                other => other,
            }
        }
        Err(e) => Err(e),
    };
    state.metrics.observe_query(t.elapsed(), res.is_ok());
    Ok(res?)
}

#[utoipa::path(post, path = "/api/eval", tag = "search", params(EvalParams),
    request_body(content = Vec<TruthDto>, description = "known moments: at most 1000"),
    responses((status = 200, body = EvalReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Evaluate search against known moments: R@1/5/10, mAP, the median peak error, misses.
pub async fn eval(
    state: web::Data<AppState>,
    p: web::Query<EvalParams>,
    body: web::Json<Vec<TruthDto>>,
) -> Result<HttpResponse> {
    let truth: Vec<search::eval::Truth> = body.into_inner().into_iter().map(Into::into).collect();
    if truth.len() > 1000 {
        return Err(ApiError::bad_request(format!(
            "{} truth entries; the API takes at most 1000 (use vidseek eval)",
            truth.len()
        )));
    }
    search::eval::check(&truth)?;
    let p = p.into_inner();
    let min_score = params::min_score(p.min_score.as_deref(), MinScore::Off)?;
    let templates = params::templates(p.templates.map(TemplatesArg::Written).as_ref())?;
    let _permit = state.permits.acquire().await.map_err(ApiError::internal)?;
    let report = search::eval::run(&state.catalog, state.runner.model(), &truth, min_score, &templates).await?;
    Ok(HttpResponse::Ok().json(EvalReport::from(report)))
}
