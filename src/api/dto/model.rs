//! The model searches use and the switch to another one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::jobs::JobStateDto;
use crate::catalog;

/// `POST /api/model`.
#[derive(Deserialize, ToSchema)]
pub struct SwitchBody {
    /// A model package folder on the server.
    #[schema(min_length = 1, pattern = r"\S")]
    pub dir: String,
}

/// The model searches use.
#[derive(Serialize, ToSchema)]
pub struct ActiveModel {
    pub name: String,
    pub dim: usize,
    pub image_size: u32,
    /// Its package folder, when the library recorded it.
    pub dir: Option<String>,
    pub provider: String,
    pub layout: Option<String>,
    pub variant: Option<String>,
}

/// A switch to another model under way.
#[derive(Serialize, ToSchema)]
pub struct SwitchDto {
    pub model: String,
    pub dir: String,
    pub job_id: i64,
    pub state: Option<JobStateDto>,
    pub frames_done: i64,
    pub frames_total: i64,
    /// An estimate from the rate so far.
    pub eta_seconds: Option<f64>,
}

impl From<catalog::SwitchStatus> for SwitchDto {
    fn from(s: catalog::SwitchStatus) -> Self {
        Self {
            model: s.model,
            dir: s.dir.display().to_string(),
            job_id: s.job_id,
            state: s.state.map(Into::into),
            frames_done: s.frames_done,
            frames_total: s.frames_total,
            eta_seconds: s.eta_seconds,
        }
    }
}

/// `GET /api/model`.
#[derive(Serialize, ToSchema)]
pub struct ModelDto {
    pub active: ActiveModel,
    pub switch: Option<SwitchDto>,
}
