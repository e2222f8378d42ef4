//! Thin handlers: extract, validate, call the shared service function, wrap the result
//! in the API's types (`dto`). Each carries its OpenAPI description. One file per
//! resource, as the routes are grouped.

pub(super) mod clips;
pub(in crate::api) mod jobs;
pub(super) mod model;
pub(in crate::api) mod search;
pub(super) mod status;
pub(super) mod tags;
pub(super) mod upload;
pub(in crate::api) mod videos;

use super::ApiError;

type Result<T> = std::result::Result<T, ApiError>;
