//! `GET /api/health`.

use actix_web::{HttpResponse, web};

use super::Result;
use crate::api::AppState;
use crate::api::dto::ErrorBody;
use crate::api::dto::status::{Health, HealthParams};

#[utoipa::path(get, path = "/api/health", tag = "status", params(HealthParams),
    responses((status = 200, body = Health), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Status, model, execution provider, counts; with deep=true whether the store and both
/// indexes agree.
pub async fn health(state: web::Data<AppState>, p: web::Query<HealthParams>) -> Result<HttpResponse> {
    let counts = state.catalog.counts().await?;
    let consistency = match p.deep {
        Some(true) => Some(state.catalog.consistency(5_000).await?.into()),
        _ => None,
    };
    let model = state.runner.model();
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        model: model.model_name().into(),
        dim: model.dim(),
        provider: model.provider().into(),
        counts: counts.into(),
        vector_points: state.catalog.vector_points(),
        vectors_ready: state.catalog.vectors_ready(),
        libraries: state.roots.iter().map(|r| r.display().to_string()).collect(),
        watch: state.config.watch,
        consistency,
    }))
}
