//! `search::params`: a search as an adapter was given it, before it is checked. The CLI
//! fills [`SearchParams`] from its flags, the API from its query string and form, and
//! [`SearchParams::request`] turns either into a checked [`SearchRequest`] the same
//! way: both accept the same forms (`auto`, `off`, `none`, templates separated by `|`)
//! and fail with the same classified [`SearchError`]s, which the API maps to HTTP in
//! its one place and the CLI to its exit status.
//!
//! Each adapter's own syntax (clap's flags, the API's `like=12,40`) stays with the
//! adapter. A file of templates is a [`TemplatesArg::File`], which only the CLI makes:
//! nothing a client sends can make the server read a file.

use std::path::PathBuf;

use super::prompts::Templates;
use super::{ImageQuery, MinScore, SearchError, SearchRequest, validate};

/// Most characters of templates written out in a request (a file may hold more).
pub const MAX_TEMPLATES_CHARS: usize = 500;

/// Where a request's prompt templates come from.
#[derive(Clone, Debug, PartialEq)]
pub enum TemplatesArg {
    /// `auto` (the model's), `none` (text as written) or templates separated by `|`,
    /// each with `{}` once.
    Written(String),
    /// A file of templates, one a line, `#` comments (the CLI's `--templates FILE`).
    File(PathBuf),
}

impl TemplatesArg {
    /// The templates named, checked (a file is read here).
    pub fn resolve(&self) -> Result<Templates, SearchError> {
        match self {
            TemplatesArg::Written(s) => {
                let n = s.chars().count();
                if n > MAX_TEMPLATES_CHARS {
                    return Err(SearchError::BadTemplates(format!(
                        "{n} characters; templates written out take at most {MAX_TEMPLATES_CHARS} \
                         (auto uses the model's own set)"
                    )));
                }
                s.parse()
            }
            TemplatesArg::File(path) => read_templates(path),
        }
    }
}

/// A file of templates, one a line.
fn read_templates(path: &std::path::Path) -> Result<Templates, SearchError> {
    let file = path.display();
    if !path.is_file() {
        return Err(SearchError::BadTemplates(format!(
            "{file}: no such file; give auto, none, templates separated by | (each with {{}}), \
             or a file of templates (one a line, each with {{}})"
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| SearchError::BadTemplates(format!("cannot read the templates file {file}: {e}")))?;
    Templates::given(crate::embed::parse_labels(&text)).map_err(|e| match e {
        SearchError::BadTemplates(why) => SearchError::BadTemplates(format!("in {file}: {why}")),
        other => other,
    })
}

/// The cut-off named (`auto`, `off` or a cosine), or `default` when none is.
pub fn min_score(given: Option<&str>, default: MinScore) -> Result<MinScore, SearchError> {
    given.map_or(Ok(default), str::parse)
}

/// The prompt templates named, or the model's (`auto`) when none are.
pub fn templates(given: Option<&TemplatesArg>) -> Result<Templates, SearchError> {
    given.map_or(Ok(Templates::Auto), TemplatesArg::resolve)
}

/// A search as given: what each adapter fills from its own syntax. `None` is the
/// default (the calibrated cut-off, an image weight of 1, the model's templates).
#[derive(Clone, Debug)]
pub struct SearchParams {
    /// The query, in the query language; may be empty with an image, a frame or `like`.
    pub query: String,
    /// Most results (each adapter has its own default).
    pub k: i64,
    /// Only this video.
    pub video: Option<i64>,
    /// The cut-off: `auto`, `off` or a cosine between -1 and 1.
    pub min_score: Option<String>,
    /// A picture to search by.
    pub image: Option<ImageQuery>,
    /// A stored frame to search by.
    pub frame: Option<i64>,
    /// The weight of the picture against the text's 1.
    pub image_weight: Option<f32>,
    /// Prompt templates for a short query.
    pub templates: Option<TemplatesArg>,
    /// Only moments with these tags.
    pub tags: Vec<String>,
    /// Few-shot: frames the results should look like, and frames they should not.
    pub like: Vec<i64>,
    pub unlike: Vec<i64>,
}

impl SearchParams {
    /// A search for `query` with up to `k` results, everything else the default.
    pub fn new(query: impl Into<String>, k: i64) -> Self {
        Self {
            query: query.into(),
            k,
            video: None,
            min_score: None,
            image: None,
            frame: None,
            image_weight: None,
            templates: None,
            tags: Vec::new(),
            like: Vec::new(),
            unlike: Vec::new(),
        }
    }

    /// The request, parsed and checked (as `search::search` will check it), so a bad
    /// one is refused before a model is loaded or a permit taken.
    pub fn request(self) -> Result<SearchRequest, SearchError> {
        let mut req = SearchRequest::new(self.query, self.k);
        req.video = self.video;
        req.min_score = min_score(self.min_score.as_deref(), MinScore::Auto)?;
        req.image = self.image;
        req.frame = self.frame;
        if let Some(w) = self.image_weight {
            req.image_weight = w;
        }
        req.templates = templates(self.templates.as_ref())?;
        req.tags = self.tags;
        req.like = self.like;
        req.unlike = self.unlike;
        validate(&req)?;
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(s: &str) -> Result<Templates, SearchError> {
        TemplatesArg::Written(s.into()).resolve()
    }

    #[test]
    fn written_templates_and_a_file_of_them_are_the_same_templates() {
        assert_eq!(written("auto").unwrap(), Templates::Auto);
        assert_eq!(written("none").unwrap(), Templates::None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.txt");
        std::fs::write(&file, "# two\na photo of a {}.\n{} on a blue background\n").unwrap();
        assert_eq!(
            TemplatesArg::File(file).resolve().unwrap(),
            written("a photo of a {}. | {} on a blue background").unwrap()
        );
    }

    #[test]
    fn bad_templates_are_the_search_modules_error() {
        let too_long = "{} ".repeat(200);
        for bad in [written("a photo"), written(&too_long)] {
            assert!(matches!(bad, Err(SearchError::BadTemplates(_))), "{bad:?}");
        }
        let missing = TemplatesArg::File("/no/such/file".into()).resolve();
        assert!(matches!(missing, Err(SearchError::BadTemplates(m)) if m.contains("no such file")));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.txt");
        std::fs::write(&file, "a photo\n").unwrap();
        let e = TemplatesArg::File(file).resolve().unwrap_err().to_string();
        assert!(e.contains("t.txt") && e.contains("{}"), "{e}");
    }

    #[test]
    fn a_request_is_checked_as_it_is_built() {
        let mut p = SearchParams::new("a red circle", 5);
        p.min_score = Some("off".into());
        p.templates = Some(TemplatesArg::Written("none".into()));
        let req = p.request().unwrap();
        assert_eq!(
            (req.min_score, req.templates, req.k),
            (MinScore::Off, Templates::None, 5)
        );
        assert!(matches!(
            SearchParams::new("", 5).request(),
            Err(SearchError::EmptyQuery)
        ));
        let mut p = SearchParams::new("a red circle", 5);
        p.min_score = Some("2".into());
        assert!(matches!(p.request(), Err(SearchError::BadMinScore(_))));
        assert_eq!(min_score(None, MinScore::Off).unwrap(), MinScore::Off);
    }
}
