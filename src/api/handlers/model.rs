//! The model: `GET /api/model` and the switch to another one (`POST /api/model`).

use std::path::Path;

use actix_web::{HttpResponse, web};

use super::Result;
use super::jobs::job_dto;
use crate::api::dto::ErrorBody;
use crate::api::dto::jobs::JobDto;
use crate::api::dto::model::{ActiveModel, ModelDto, SwitchBody};
use crate::api::{ApiError, AppState};

#[utoipa::path(get, path = "/api/model", tag = "model",
    responses((status = 200, body = ModelDto), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// The active model, and the switch to another one under way (its progress and an
/// estimate of the time left).
pub async fn model(state: web::Data<AppState>) -> Result<HttpResponse> {
    let m = state.runner.model();
    let man = m.manifest();
    Ok(HttpResponse::Ok().json(ModelDto {
        active: ActiveModel {
            name: man.name.clone(),
            dim: man.embedding_dim,
            image_size: man.image.size,
            dir: state.catalog.model_dir().await?.map(|d| d.display().to_string()),
            provider: m.provider().into(),
            layout: man.origin.as_ref().map(|o| o.layout.clone()),
            variant: man.origin.as_ref().and_then(|o| o.variant.clone()),
        },
        switch: state.catalog.switch_status().await?.map(Into::into),
    }))
}

#[utoipa::path(post, path = "/api/model", tag = "model", request_body = SwitchBody,
    responses((status = 202, body = JobDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Move the library to another model package without downtime: re-embedded in the
/// background, search keeps the current model until it is done.
pub async fn switch_model(state: web::Data<AppState>, body: web::Json<SwitchBody>) -> Result<HttpResponse> {
    if body.dir.trim().is_empty() {
        return Err(ApiError::bad_request(
            "dir is empty: give the folder of a model package",
        ));
    }
    if !Path::new(&body.dir).is_dir() {
        return Err(ApiError::not_found(format!(
            "{}: no such folder on the server: give the folder of a model package",
            body.dir
        )));
    }
    let id = state
        .runner
        .switch_to(Path::new(&body.dir))
        .await
        .map_err(|e| match e {
            // The package is the client's choice: name it.
            crate::jobs::JobError::Model(m) => {
                ApiError::bad_request(format!("{}: not a usable model package: {m}", body.dir)).with_code("bad_model")
            }
            other => other.into(),
        })?;
    Ok(HttpResponse::Accepted().json(job_dto(&state, id).await?))
}
