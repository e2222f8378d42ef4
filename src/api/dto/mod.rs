//! What the HTTP API takes and returns. Every type here derives its OpenAPI schema
//! (utoipa), so `/api/openapi.json` is generated from the same types the handlers
//! serialise: the document cannot drift from the routes. Domain types are converted
//! here; URLs (media, thumbnails) are built here from ids. One file per resource, as
//! the handlers are split.

pub(super) mod clips;
pub(super) mod jobs;
pub(super) mod model;
pub(super) mod search;
pub(super) mod status;
pub(super) mod tags;
pub(super) mod videos;

use serde::Serialize;
use utoipa::ToSchema;

/// An error: `code` is stable and machine-readable, `message` says what was being done
/// and what to change.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub message: String,
    pub code: String,
}

pub fn thumb_url(frame: i64) -> String {
    format!("/thumbs/{frame}")
}

pub fn media_url(video: i64) -> String {
    format!("/media/{video}")
}

/// `min_score`: `auto`, `off`, or a cosine in [-1, 1].
pub(super) fn min_score_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["auto", "off"])),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(-1.0))
                    .maximum(Some(1.0)),
            )
            .description(Some(
                "auto (only credible matches), off (everything), or a cosine between -1 and 1",
            ))
            .build(),
    )
}
