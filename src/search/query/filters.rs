//! `search::query::filters`: what the filters of a query mean (`Filters`, path patterns
//! and their globs) and whether a video passes them. Reading them from the query text is
//! `parse`'s; applying them to the library is `retrieve::Scope`'s.

use super::SourceFilter;

/// A file-path pattern: a case-insensitive substring, or a glob (`*` `?` `[..]`) matched
/// against the whole path or, unless it starts with `/`, against its tail after any `/`.
#[derive(Clone, Debug, PartialEq)]
pub enum PathPattern {
    Contains(String),
    Glob(String),
}

impl PathPattern {
    pub(super) fn new(v: &str) -> Self {
        if v.contains(['*', '?', '[']) {
            PathPattern::Glob(v.to_string())
        } else {
            PathPattern::Contains(v.to_lowercase())
        }
    }

    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Contains(s) => path.to_lowercase().contains(s.as_str()),
            // Relative to any folder unless it starts at the root.
            PathPattern::Glob(g) => {
                let (g, p) = (g.as_bytes(), path.as_bytes());
                glob_match(g, p)
                    || (!g.starts_with(b"/")
                        && p.iter()
                            .enumerate()
                            .any(|(i, b)| *b == b'/' && glob_match(g, &p[i + 1..])))
            }
        }
    }
}

/// Restrictions on which videos may answer, applied before ranking.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filters {
    pub paths: Vec<PathPattern>,
    pub not_paths: Vec<PathPattern>,
    /// Lower-case, without the dot.
    pub exts: Vec<String>,
    pub not_exts: Vec<String>,
    /// Unix seconds: modified at or after.
    pub after: Option<i64>,
    /// Unix seconds: modified before.
    pub before: Option<i64>,
    /// Seconds: duration strictly above.
    pub longer: Option<f64>,
    /// Seconds: duration strictly below.
    pub shorter: Option<f64>,
    pub videos: Vec<i64>,
    pub not_videos: Vec<i64>,
    pub source: Option<SourceFilter>,
    /// `tag:LABEL`: only moments tagged with every one of these labels (frames, not
    /// videos: see `search::tags`); `-tag:LABEL`: none tagged with these.
    pub tags: Vec<String>,
    pub not_tags: Vec<String>,
}

/// What a video must be for [`Filters::accepts`].
#[derive(Clone, Copy, Debug)]
pub struct VideoFacts<'a> {
    pub id: i64,
    pub path: &'a str,
    pub mtime_ns: i64,
    pub duration: Option<f64>,
}

impl Filters {
    /// True when no filter restricts the videos (`source:` and `tag:` aside: they
    /// restrict moments).
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
            && self.not_paths.is_empty()
            && self.exts.is_empty()
            && self.not_exts.is_empty()
            && self.after.is_none()
            && self.before.is_none()
            && self.longer.is_none()
            && self.shorter.is_none()
            && self.videos.is_empty()
            && self.not_videos.is_empty()
    }

    /// Whether a video passes every filter.
    pub fn accepts(&self, v: VideoFacts<'_>) -> bool {
        let ext = std::path::Path::new(v.path)
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let secs = v.mtime_ns.div_euclid(1_000_000_000);
        (self.paths.is_empty() || self.paths.iter().any(|p| p.matches(v.path)))
            && !self.not_paths.iter().any(|p| p.matches(v.path))
            && (self.exts.is_empty() || self.exts.contains(&ext))
            && !self.not_exts.contains(&ext)
            && self.after.is_none_or(|a| secs >= a)
            && self.before.is_none_or(|b| secs < b)
            && self.longer.is_none_or(|l| v.duration.is_some_and(|d| d > l))
            && self.shorter.is_none_or(|s| v.duration.is_some_and(|d| d < s))
            && (self.videos.is_empty() || self.videos.contains(&v.id))
            && !self.not_videos.contains(&v.id)
    }
}

/// Glob match over bytes: `*` any run (including `/`), `?` one byte, `[abc]`/`[a-z]`/`[!a]`
/// one of; case-insensitive for ASCII.
pub(super) fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let (mut star, mut mark) = (None::<usize>, 0);
    while i < s.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some(p);
                    mark = i;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(pat, p, s[i]) {
                        if matched {
                            p = next;
                            i += 1;
                            continue;
                        }
                    } else if s[i] == b'[' {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
                c if c.eq_ignore_ascii_case(&s[i]) => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some(sp) => {
                p = sp + 1;
                mark += 1;
                i = mark;
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at `pat[p]`: Some((whether `c` is in it, index after it)).
fn class_match(pat: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let mut j = p + 1;
    let negate = pat.get(j).is_some_and(|&x| x == b'!' || x == b'^');
    if negate {
        j += 1;
    }
    let mut found = false;
    let first = j;
    while j < pat.len() && (pat[j] != b']' || j == first) {
        if j + 2 < pat.len() && pat[j + 1] == b'-' && pat[j + 2] != b']' {
            let (lo, hi) = (pat[j].to_ascii_lowercase(), pat[j + 2].to_ascii_lowercase());
            found |= (lo..=hi).contains(&c.to_ascii_lowercase());
            j += 3;
        } else {
            found |= pat[j].eq_ignore_ascii_case(&c);
            j += 1;
        }
    }
    if j >= pat.len() {
        return None;
    }
    Some((found != negate, j + 1))
}
