//! `search::request`: what a search asks for (`SearchRequest`, its cut-off `MinScore`, a
//! picture `ImageQuery`), the limits on it, and `validate`, which checks a request and
//! parses its query once. Running it is `search::search`'s; the vectors are `vectors`'.

use std::path::PathBuf;

use super::query::{self, Query};
use super::{SearchError, probe, prompts, tags};

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Most results one query may ask for.
pub const MAX_K: usize = 1000;
/// Largest image a query may upload.
pub const MAX_IMAGE_BYTES: usize = 32 * 1024 * 1024;
/// Largest weight of an image against the text of a query.
pub const MAX_IMAGE_WEIGHT: f32 = 10.0;

/// Which results are returned.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum MinScore {
    /// Only credible matches (see `calibrate`).
    #[default]
    Auto,
    /// Everything, best first.
    Off,
    /// Moments whose best frame scores at least this cosine.
    Value(f32),
}

impl std::str::FromStr for MinScore {
    type Err = SearchError;
    fn from_str(s: &str) -> Result<Self, SearchError> {
        // Exactly the documented forms (the API's schema says the same).
        match s {
            "auto" => Ok(MinScore::Auto),
            "off" => Ok(MinScore::Off),
            t => match t.parse::<f32>() {
                Ok(x) if x.is_finite() && (-1.0..=1.0).contains(&x) => Ok(MinScore::Value(x)),
                _ => Err(SearchError::BadMinScore(s.to_string())),
            },
        }
    }
}

impl std::fmt::Display for MinScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MinScore::Auto => f.write_str("auto"),
            MinScore::Off => f.write_str("off"),
            MinScore::Value(x) => write!(f, "{x}"),
        }
    }
}

/// A picture to search by.
#[derive(Clone, Debug)]
pub enum ImageQuery {
    /// A file on this machine (the CLI).
    File(PathBuf),
    /// Uploaded bytes (the API), with a name for messages.
    Bytes { name: String, bytes: Vec<u8> },
}

/// What to look for.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    /// The query, in the query language (`search::query`); may be empty with an image
    /// or a frame.
    pub query: String,
    /// Most results.
    pub k: i64,
    /// Only this video (the same as `video:ID`).
    pub video: Option<i64>,
    /// The cut-off.
    pub min_score: MinScore,
    /// Search by a picture (combined with the text when there is one).
    pub image: Option<ImageQuery>,
    /// Search by a stored frame ("more like this").
    pub frame: Option<i64>,
    /// The weight of the picture against the text's 1.
    pub image_weight: f32,
    /// Prompt templates for short queries.
    pub templates: prompts::Templates,
    /// Only moments with these tags (the same as `tag:LABEL`).
    pub tags: Vec<String>,
    /// Few-shot: frames the results should look like ("more like these"; see `probe`).
    pub like: Vec<i64>,
    /// Frames the results should not look like.
    pub unlike: Vec<i64>,
}

impl SearchRequest {
    /// A search for `query` with up to `k` results, the calibrated cut-off, no filter.
    pub fn new(query: impl Into<String>, k: i64) -> Self {
        Self {
            query: query.into(),
            k,
            video: None,
            min_score: MinScore::Auto,
            image: None,
            frame: None,
            image_weight: 1.0,
            templates: prompts::Templates::Auto,
            tags: Vec::new(),
            like: Vec::new(),
            unlike: Vec::new(),
        }
    }
}

/// Checks a request; returns the parsed query.
pub fn validate(req: &SearchRequest) -> Result<Query, SearchError> {
    // The limit is on what was sent, blanks included.
    let n = req.query.chars().count();
    let q = req.query.trim();
    if n > MAX_QUERY_CHARS {
        return Err(SearchError::QueryTooLong(n));
    }
    if req.k < 1 || req.k > MAX_K as i64 {
        return Err(SearchError::BadK(req.k));
    }
    if let MinScore::Value(m) = req.min_score
        && !(m.is_finite() && (-1.0..=1.0).contains(&m))
    {
        return Err(SearchError::BadMinScore(m.to_string()));
    }
    if !(req.image_weight.is_finite() && req.image_weight > 0.0 && req.image_weight <= MAX_IMAGE_WEIGHT) {
        return Err(SearchError::BadImageWeight(req.image_weight));
    }
    let mut parsed = query::parse(q)?;
    parsed
        .filters
        .tags
        .extend(req.tags.iter().map(|t| t.trim().to_string()));
    if let Some(t) = parsed
        .filters
        .tags
        .iter()
        .chain(&parsed.filters.not_tags)
        .find(|t| t.is_empty() || t.chars().count() > tags::MAX_LABEL_CHARS)
    {
        return Err(SearchError::BadLabels(format!(
            "a tag filter needs a label of 1 to {} characters (got {:?})",
            tags::MAX_LABEL_CHARS,
            t.chars().take(40).collect::<String>()
        )));
    }
    probe::check(&req.like, &req.unlike)?;
    let by_picture = req.image.is_some() || req.frame.is_some() || !req.like.is_empty();
    if !parsed.has_terms() && !by_picture && parsed.filters.tags.is_empty() {
        return Err(if q.is_empty() {
            SearchError::EmptyQuery
        } else {
            SearchError::NothingToLookFor
        });
    }
    if parsed.steps.len() > 1 && parsed.steps.iter().any(|c| c.terms.is_empty()) {
        return Err(SearchError::NothingToLookFor);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_bad_requests() {
        assert!(matches!(
            validate(&SearchRequest::new("   ", 5)),
            Err(SearchError::EmptyQuery)
        ));
        assert!(matches!(
            validate(&SearchRequest::new("x".repeat(1001), 5)),
            Err(SearchError::QueryTooLong(1001))
        ));
        assert!(matches!(
            validate(&SearchRequest::new("ok", 0)),
            Err(SearchError::BadK(0))
        ));
        assert!(matches!(
            validate(&SearchRequest::new("ok", 1001)),
            Err(SearchError::BadK(1001))
        ));
        assert!(matches!(
            validate(&SearchRequest::new("-cat path:x", 5)),
            Err(SearchError::NothingToLookFor)
        ));
        assert!(matches!(
            validate(&SearchRequest::new("a \"star", 5)),
            Err(SearchError::Query(_))
        ));
        let mut by_frame = SearchRequest::new("path:x", 5);
        by_frame.frame = Some(3);
        assert!(validate(&by_frame).is_ok(), "filters with a frame are a query");
        by_frame.image_weight = 0.0;
        assert!(matches!(validate(&by_frame), Err(SearchError::BadImageWeight(_))));
        assert_eq!(
            validate(&SearchRequest::new("  a red circle. ", 5))
                .unwrap()
                .clause()
                .sentence(),
            "a red circle."
        );
    }

    #[test]
    fn min_score_forms() {
        assert_eq!("auto".parse::<MinScore>().unwrap(), MinScore::Auto);
        assert_eq!("off".parse::<MinScore>().unwrap(), MinScore::Off);
        assert!("".parse::<MinScore>().is_err(), "empty is not auto");
        assert!("OFF".parse::<MinScore>().is_err());
        assert_eq!("0.25".parse::<MinScore>().unwrap(), MinScore::Value(0.25));
        assert!("2".parse::<MinScore>().is_err());
        assert!("high".parse::<MinScore>().is_err());
    }
}
