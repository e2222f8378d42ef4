//! `search::error`: what can go wrong in a search, classified once (fault and code) for the
//! CLI and the API. The limits the messages quote live with the request (`request`).

use super::query::QueryError;
use super::request::{MAX_IMAGE_WEIGHT, MAX_K, MAX_QUERY_CHARS};
use crate::catalog::{CatalogError, StoreError};
use crate::embed::EmbedError;

/// Errors of a search.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("the query is empty: type what you are looking for, e.g. \"a dog catching a frisbee\"")]
    EmptyQuery,
    #[error("the query has {0} characters; the limit is {MAX_QUERY_CHARS}: shorten it")]
    QueryTooLong(usize),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(
        "the query has only negative terms or filters: say what to look for too (e.g. `a dog -cat path:holiday`), \
         or search by an image or a frame"
    )]
    NothingToLookFor,
    #[error("k must be between 1 and {MAX_K} (got {0})")]
    BadK(i64),
    #[error("min_score must be auto, off or a number between -1 and 1 (got {0})")]
    BadMinScore(String),
    #[error("the image weight must be a number above 0 and at most {MAX_IMAGE_WEIGHT} (got {0})")]
    BadImageWeight(f32),
    #[error("the prompt templates cannot be used: {0}")]
    BadTemplates(String),
    #[error("{0}")]
    BadProbe(String),
    #[error("{0}")]
    BadLabels(String),
    #[error("the query image {name} cannot be used: {reason}")]
    BadImage { name: String, reason: String },
    #[error("video {0} does not exist")]
    NoSuchVideo(i64),
    #[error("frame {0} does not exist (frame ids are in every search result); search again")]
    NoSuchFrame(i64),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("embedding the query failed: {0}")]
    Model(#[from] EmbedError),
    /// A worker thread panicked (a bug; logged).
    #[error("internal error: {0}")]
    Panicked(String),
}

impl From<StoreError> for SearchError {
    fn from(e: StoreError) -> Self {
        SearchError::Catalog(e.into())
    }
}

impl crate::error::Classified for SearchError {
    fn fault(&self) -> crate::error::Fault {
        use crate::error::Fault;
        match self {
            SearchError::EmptyQuery
            | SearchError::QueryTooLong(_)
            | SearchError::Query(_)
            | SearchError::NothingToLookFor
            | SearchError::BadK(_)
            | SearchError::BadMinScore(_)
            | SearchError::BadImageWeight(_)
            | SearchError::BadTemplates(_)
            | SearchError::BadProbe(_)
            | SearchError::BadLabels(_)
            | SearchError::BadImage { .. } => Fault::BadInput,
            SearchError::NoSuchVideo(_) | SearchError::NoSuchFrame(_) => Fault::NotFound,
            SearchError::Catalog(e) => e.fault(),
            SearchError::Model(e) => e.fault(),
            SearchError::Panicked(_) => Fault::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            SearchError::EmptyQuery => "empty_query",
            SearchError::QueryTooLong(_) => "query_too_long",
            SearchError::Query(_) => "bad_query",
            SearchError::NothingToLookFor => "nothing_to_look_for",
            SearchError::BadK(_) => "bad_k",
            SearchError::BadMinScore(_) => "bad_min_score",
            SearchError::BadImageWeight(_) => "bad_image_weight",
            SearchError::BadImage { .. } => "bad_image",
            SearchError::BadTemplates(_) => "bad_templates",
            SearchError::BadProbe(_) => "bad_probe",
            SearchError::BadLabels(_) => "bad_labels",
            SearchError::NoSuchVideo(_) | SearchError::NoSuchFrame(_) => "not_found",
            SearchError::Catalog(e) => e.code(),
            SearchError::Model(e) => e.code(),
            SearchError::Panicked(_) => "internal",
        }
    }
}
