//! `GET /api/health`: the server's state and, with `deep=true`, the catalog's consistency.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::catalog::{Consistency, Counts};

/// `GET /api/health`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
    /// The model searches use.
    pub model: String,
    pub dim: usize,
    /// "CPU" or "CUDA".
    pub provider: String,
    pub counts: CountsDto,
    /// Points in the vector index (live frames and tombstones).
    pub vector_points: usize,
    /// False while the saved vector graph is still loading after start-up: searches
    /// are exact scans meanwhile (correct, slower on a large library).
    pub vectors_ready: bool,
    pub libraries: Vec<String>,
    pub watch: bool,
    /// With `deep=true`: whether the store and both indexes agree.
    pub consistency: Option<ConsistencyDto>,
}

#[derive(Serialize, ToSchema)]
pub struct CountsDto {
    pub videos: i64,
    pub indexed: i64,
    pub failed: i64,
    pub frames: i64,
    pub texts: i64,
}

impl From<Counts> for CountsDto {
    fn from(c: Counts) -> Self {
        Self {
            videos: c.videos,
            indexed: c.indexed,
            failed: c.failed,
            frames: c.frames,
            texts: c.texts,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConsistencyDto {
    pub frames: i64,
    pub texts: i64,
    pub vector_live: usize,
    pub vector_tombstones: usize,
    pub frames_not_in_vector_index: Vec<i64>,
    pub vector_points_not_in_store: Vec<i64>,
    pub frames_checked: usize,
    pub frames_unreachable: Vec<i64>,
    pub text_docs: u64,
    pub texts_not_in_text_index: Vec<i64>,
    pub text_docs_not_in_store: Vec<i64>,
    pub agree: bool,
}

impl From<Consistency> for ConsistencyDto {
    fn from(c: Consistency) -> Self {
        Self {
            frames: c.frames,
            texts: c.texts,
            vector_live: c.vector_live,
            vector_tombstones: c.vector_tombstones,
            frames_not_in_vector_index: c.frames_not_in_vector_index,
            vector_points_not_in_store: c.vector_points_not_in_store,
            frames_checked: c.frames_checked,
            frames_unreachable: c.frames_unreachable,
            text_docs: c.text_docs,
            texts_not_in_text_index: c.texts_not_in_text_index,
            text_docs_not_in_store: c.text_docs_not_in_store,
            agree: c.agree,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HealthParams {
    /// Also check that the store and both indexes agree (a lookup per frame, up to 5,000).
    pub deep: Option<bool>,
}
