//! Zero-shot tags: the label vocabulary, the tags in use, few-shot probes saved as tags.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The library's label vocabulary for zero-shot tags.
#[derive(Serialize, ToSchema)]
pub struct Labels {
    pub labels: Vec<String>,
    /// True when the library uses the default vocabulary (the model's, else built in).
    pub default: bool,
}

/// `PUT /api/labels`: the new vocabulary.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelsBody {
    /// One label each (1 to 2000, each at most 200 characters, no braces).
    #[schema(min_items = 1, max_items = 2000)]
    pub labels: Vec<String>,
}

/// One label's use in the library.
#[derive(Serialize, ToSchema)]
pub struct TagDto {
    pub label: String,
    /// Moments (runs of consecutive tagged frames).
    pub moments: usize,
    pub videos: usize,
}

/// Every tag in use, most moments first.
#[derive(Serialize, ToSchema)]
pub struct Tags {
    pub tags: Vec<TagDto>,
}

/// A few-shot probe saved as a named tag.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeDto {
    /// The tag's name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The text the probe starts from (may be empty).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub q: String,
    /// Frame ids the tag's moments look like.
    #[schema(min_items = 1, max_items = 200)]
    pub like: Vec<i64>,
    /// Frame ids they do not.
    #[serde(default)]
    pub unlike: Vec<i64>,
}

/// Saved probes.
#[derive(Serialize, ToSchema)]
pub struct Probes {
    pub probes: Vec<ProbeDto>,
}
