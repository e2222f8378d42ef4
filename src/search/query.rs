//! `search::query`: the query language, parsed once into a typed [`Query`] that the CLI,
//! the API and the UI share.
//!
//! ```text
//! a dog on the beach              words: embedded together as one sentence; lexically,
//!                                 any word that is not a stop word
//! "the lighthouse keeper"         a phrase: embedded as written; lexically, the exact phrase
//! -rain  -"a blue background"     negative terms: frames close to them are pushed down or
//!                                 dropped; lexically, must not match
//! "a beach"^2 sunset              weights (0 < w <= 10) on a word or a phrase
//! path:holiday  path:"*/2024/*"   file path contains TEXT (case-insensitive), or matches a
//!                                 glob (* any run of characters, ? one, [abc] one of)
//! ext:mp4,webm                    file extension
//! after:2024-05  before:2024-06-01T12:00   file modification time (UTC): at or after / before
//!                                 the start of YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]
//! longer:30s  shorter:1h30m       video duration: 90, 90s, 1.5m, 2m30s, 1h, 1:30, 1:02:03
//! video:12,14                     only these videos (ids)
//! source:visual|text              only moments found in the pictures, or only in subtitles,
//!                                 titles and file names
//! tag:"a red circle"  -tag:night  only moments carrying the zero-shot tag (or not); a
//!                                 query of tags alone finds their moments
//! -path:tmp  -ext:gif  -video:3   exclusions
//! A >> B   A >>30s B              a sequence: a moment matching A followed by one
//!                                 matching B within the gap (default 60 s)
//! ```
//!
//! Repeating `path:`, `ext:` or `video:` accepts any of the values; `after:`/`before:`
//! and `longer:`/`shorter:` narrow. Write a word with a colon in quotes to search for
//! it literally (`"note: red"`).

use std::fmt;

/// The largest weight a term may carry.
pub const MAX_WEIGHT: f32 = 10.0;
/// The gap of `A >> B` when none is given, in seconds.
pub const DEFAULT_GAP: f64 = 60.0;

/// The filters the language knows, for messages.
pub const FILTER_KEYS: &str = "path: ext: after: before: longer: shorter: video: source: tag:";

/// A query the parser refused: where, what, and the accepted forms.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("the query is malformed at character {pos}: {message}")]
pub struct QueryError {
    /// 1-based position (in characters) of the offending part.
    pub pos: usize,
    pub message: String,
}

/// A word or a phrase, with its weight.
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    pub text: String,
    /// Written in quotes.
    pub phrase: bool,
    /// `^w`; None when not written (weight 1).
    pub weight: Option<f32>,
}

impl Term {
    pub fn weight(&self) -> f32 {
        self.weight.unwrap_or(1.0)
    }
}

/// What one moment must look like: terms and negative terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Clause {
    pub terms: Vec<Term>,
    pub negatives: Vec<Term>,
}

/// Only visual or only lexical results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceFilter {
    Visual,
    Text,
}

/// A file-path pattern: a case-insensitive substring, or a glob (`*` `?` `[..]`) matched
/// against the whole path or, unless it starts with `/`, against its tail after any `/`.
#[derive(Clone, Debug, PartialEq)]
pub enum PathPattern {
    Contains(String),
    Glob(String),
}

impl PathPattern {
    fn new(v: &str) -> Self {
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

/// A parsed query: one clause, or several in sequence (`A >> B`), and the filters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// At least one clause (possibly empty: an image query with filters only).
    pub steps: Vec<Clause>,
    /// `gaps[i]`: the largest gap in seconds between step i and step i + 1.
    pub gaps: Vec<f64>,
    pub filters: Filters,
}

impl Query {
    /// Whether any clause says what to look for (a positive term).
    pub fn has_terms(&self) -> bool {
        self.steps.iter().any(|c| !c.terms.is_empty())
    }

    /// The single clause of a query that is not a sequence.
    pub fn clause(&self) -> &Clause {
        &self.steps[0]
    }
}

impl Clause {
    /// The texts to embed with their weights: without weights, every term together as
    /// one sentence (in the order written, quotes removed); with weights, each weighted
    /// term alone and the unweighted rest together.
    pub fn visual_parts(&self) -> Vec<(String, f32)> {
        let rest: Vec<&str> = self
            .terms
            .iter()
            .filter(|t| t.weight.is_none())
            .map(|t| t.text.as_str())
            .collect();
        let mut parts = Vec::new();
        if !rest.is_empty() {
            parts.push((rest.join(" "), 1.0));
        }
        for t in self.terms.iter().filter(|t| t.weight.is_some()) {
            parts.push((t.text.clone(), t.weight()));
        }
        parts
    }

    /// The whole clause as one sentence.
    #[cfg(test)]
    pub fn sentence(&self) -> String {
        self.terms.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ")
    }

    /// What the lexical retriever looks for.
    pub fn lexical(&self) -> Lexical {
        let mut lex = Lexical::default();
        for t in &self.terms {
            if t.phrase {
                lex.phrases.push(t.text.clone());
            } else if !is_stop_word(&t.text) {
                lex.words.push((t.text.clone(), t.weight()));
            }
        }
        for t in &self.negatives {
            if t.phrase || !is_stop_word(&t.text) {
                lex.not.push(t.text.clone());
            }
        }
        lex
    }
}

/// The lexical side of a clause: words (any may match; stop words removed), phrases (all
/// must match, stop words kept), and texts that must not match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lexical {
    pub words: Vec<(String, f32)>,
    pub phrases: Vec<String>,
    pub not: Vec<String>,
}

impl Lexical {
    /// Whether there is anything to match.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.phrases.is_empty()
    }
}

/// English stop words: never matched lexically (they still shape the embedded sentence).
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does",
    "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her",
    "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more",
    "most", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out",
    "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them",
    "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was",
    "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you",
    "your", "yours",
];

/// Whether every token of `text` is a stop word (or punctuation).
pub fn is_stop_word(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .all(|w| STOP_WORDS.contains(&w.to_lowercase().as_str()))
}

/// Parses a query. Empty text gives an empty query (one empty clause).
pub fn parse(text: &str) -> Result<Query, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Parser { chars: &chars, i: 0 };
    let mut q = Query {
        steps: vec![Clause::default()],
        ..Default::default()
    };
    loop {
        p.skip_space();
        if p.i >= chars.len() {
            break;
        }
        let start = p.i;
        if p.peek_str(">>") {
            p.i += 2;
            let gap_at = p.i;
            let gap_text = p.bare();
            let gap = if gap_text.is_empty() {
                DEFAULT_GAP
            } else {
                parse_duration(&gap_text).ok_or_else(|| err(gap_at, format!("`>>{gap_text}`: {DURATION_FORMS}")))?
            };
            if q.steps.last().is_some_and(|c| c.terms.is_empty()) {
                return Err(err(
                    start,
                    "`>>` needs what to look for on both sides, e.g. `a car stops >> a person gets out`",
                ));
            }
            q.gaps.push(gap);
            q.steps.push(Clause::default());
            continue;
        }
        let negative = chars[start] == '-' && chars.get(start + 1).is_some_and(|c| !c.is_whitespace());
        if negative {
            p.i += 1;
        }
        let item_at = p.i;
        if chars[p.i] == '"' {
            let text = p.quoted()?;
            let weight = p.weight()?;
            if text.trim().is_empty() {
                return Err(err(
                    item_at,
                    "an empty phrase `\"\"`: write the words between the quotes",
                ));
            }
            let term = Term {
                text: text.trim().to_string(),
                phrase: true,
                weight,
            };
            push(&mut q, negative, term);
            continue;
        }
        let word = p.bare();
        if let Some((key, value_at)) = filter_key(&word) {
            let mut value = word[key.len() + 1..].to_string();
            if value.is_empty() && p.i < chars.len() && chars[p.i] == '"' {
                value = p.quoted()?;
            }
            filter(&mut q.filters, key, &value, negative, item_at, item_at + value_at)?;
            continue;
        }
        let (text, weight) = split_weight(&word, item_at)?;
        if text.is_empty() {
            continue; // a lone "-" or "^"
        }
        push(
            &mut q,
            negative,
            Term {
                text,
                phrase: false,
                weight,
            },
        );
    }
    if q.steps.len() > 1 && q.steps.last().is_some_and(|c| c.terms.is_empty()) {
        return Err(err(
            chars.len().max(1),
            "`>>` needs what to look for after it, e.g. `a car stops >> a person gets out`",
        ));
    }
    Ok(q)
}

fn push(q: &mut Query, negative: bool, term: Term) {
    let clause = q.steps.last_mut().expect("a query has a clause");
    if negative {
        clause.negatives.push(term);
    } else {
        clause.terms.push(term);
    }
}

fn err(pos0: usize, message: impl Into<String>) -> QueryError {
    QueryError {
        pos: pos0 + 1,
        message: message.into(),
    }
}

struct Parser<'a> {
    chars: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.i < self.chars.len() && self.chars[self.i].is_whitespace() {
            self.i += 1;
        }
    }

    fn peek_str(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(k, c)| self.chars.get(self.i + k) == Some(&c))
    }

    /// A run of characters up to whitespace or a quote.
    fn bare(&mut self) -> String {
        let start = self.i;
        while self.i < self.chars.len() && !self.chars[self.i].is_whitespace() && self.chars[self.i] != '"' {
            self.i += 1;
        }
        self.chars[start..self.i].iter().collect()
    }

    /// A quoted text starting at the current `"`.
    fn quoted(&mut self) -> Result<String, QueryError> {
        let open = self.i;
        self.i += 1;
        let start = self.i;
        while self.i < self.chars.len() && self.chars[self.i] != '"' {
            self.i += 1;
        }
        if self.i >= self.chars.len() {
            return Err(err(open, "this quote is never closed: end the phrase with `\"`"));
        }
        let text: String = self.chars[start..self.i].iter().collect();
        self.i += 1;
        Ok(text)
    }

    /// An optional `^w` right after a phrase.
    fn weight(&mut self) -> Result<Option<f32>, QueryError> {
        if self.chars.get(self.i) != Some(&'^') {
            return Ok(None);
        }
        let at = self.i;
        self.i += 1;
        let w = self.bare();
        parse_weight(&w, at).map(Some)
    }
}

fn parse_weight(w: &str, at: usize) -> Result<f32, QueryError> {
    match w.parse::<f32>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= MAX_WEIGHT => Ok(x),
        _ => Err(err(
            at,
            format!("the weight `^{w}` must be a number above 0 and at most {MAX_WEIGHT}, e.g. `\"a beach\"^2`"),
        )),
    }
}

/// `beach^2` -> ("beach", Some(2)).
fn split_weight(word: &str, at: usize) -> Result<(String, Option<f32>), QueryError> {
    match word.rfind('^') {
        Some(k) if k + 1 < word.len() => {
            let pos = at + word[..k].chars().count();
            let w = parse_weight(&word[k + 1..], pos)?;
            Ok((word[..k].to_string(), Some(w)))
        }
        Some(k) => Ok((word[..k].to_string(), None)),
        None => Ok((word.to_string(), None)),
    }
}

/// `key:...` where key is letters: Some((key, offset of the value in characters)).
fn filter_key(word: &str) -> Option<(&str, usize)> {
    let colon = word.find(':')?;
    let key = &word[..colon];
    (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphabetic() || c == '_'))
        .then(|| (key, key.chars().count() + 1))
}

const DURATION_FORMS: &str = "a duration is 90, 90s, 1.5m, 2m30s, 1h, 1:30 or 1:02:03";
const DATE_FORMS: &str = "a date is YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (UTC)";

fn filter(
    f: &mut Filters,
    key: &str,
    value: &str,
    negative: bool,
    at: usize,
    value_at: usize,
) -> Result<(), QueryError> {
    let k = key.to_ascii_lowercase();
    let known = [
        "path", "ext", "after", "before", "longer", "shorter", "video", "source", "tag",
    ];
    if !known.contains(&k.as_str()) {
        return Err(err(
            at,
            format!(
                "unknown filter `{key}:`; the filters are {FILTER_KEYS} (put the word in quotes to search for it: `\"{key}:{value}\"`)"
            ),
        ));
    }
    if value.is_empty() {
        return Err(err(
            at,
            format!("the filter `{key}:` needs a value, e.g. {}", example(&k)),
        ));
    }
    if negative && !matches!(k.as_str(), "path" | "ext" | "video" | "tag") {
        return Err(err(
            at,
            format!("`-{key}:` cannot be negated; only path:, ext:, video: and tag: can be excluded"),
        ));
    }
    match k.as_str() {
        "path" => {
            let p = PathPattern::new(value);
            if negative { f.not_paths.push(p) } else { f.paths.push(p) }
        }
        "ext" => {
            for e in value
                .split(',')
                .map(|e| e.trim().trim_start_matches('.').to_lowercase())
                .filter(|e| !e.is_empty())
            {
                if negative { f.not_exts.push(e) } else { f.exts.push(e) }
            }
        }
        "video" => {
            for part in value.split(',') {
                let id: i64 = part.trim().parse().ok().filter(|id| *id > 0).ok_or_else(|| {
                    err(
                        value_at,
                        format!("`video:{value}`: a video id is a positive whole number, e.g. video:12 or video:12,14"),
                    )
                })?;
                if negative {
                    f.not_videos.push(id)
                } else {
                    f.videos.push(id)
                }
            }
        }
        "after" | "before" => {
            let t = parse_date(value).ok_or_else(|| err(value_at, format!("`{key}:{value}`: {DATE_FORMS}")))?;
            if k == "after" {
                f.after = Some(f.after.map_or(t, |a| a.max(t)));
            } else {
                f.before = Some(f.before.map_or(t, |b| b.min(t)));
            }
        }
        "longer" | "shorter" => {
            let d = parse_duration(value).ok_or_else(|| err(value_at, format!("`{key}:{value}`: {DURATION_FORMS}")))?;
            if k == "longer" {
                f.longer = Some(f.longer.map_or(d, |l| l.max(d)));
            } else {
                f.shorter = Some(f.shorter.map_or(d, |s| s.min(d)));
            }
        }
        "tag" => {
            let label = value.trim().to_string();
            if negative {
                f.not_tags.push(label)
            } else {
                f.tags.push(label)
            }
        }
        "source" => {
            f.source = Some(match value.to_ascii_lowercase().as_str() {
                "visual" => SourceFilter::Visual,
                "text" => SourceFilter::Text,
                _ => {
                    return Err(err(
                        value_at,
                        format!("`source:{value}`: the sources are source:visual and source:text"),
                    ));
                }
            });
        }
        _ => unreachable!("checked against the known keys"),
    }
    Ok(())
}

fn example(key: &str) -> &'static str {
    match key {
        "path" => "path:holiday",
        "ext" => "ext:mp4",
        "after" => "after:2024-05-01",
        "before" => "before:2024",
        "longer" => "longer:30s",
        "shorter" => "shorter:2m",
        "video" => "video:12",
        "tag" => "tag:\"a red circle\"",
        _ => "source:visual",
    }
}

/// Seconds of `90`, `90s`, `1.5m`, `2m30s`, `1h`, `1h30m`, `1:30`, `1:02:03`.
pub fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim().to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    let ok = |x: f64| (x.is_finite() && x >= 0.0).then_some(x);
    if s.contains(':') {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let mut total = 0.0;
        for (i, p) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let v: f64 = if last {
                p.parse().ok()?
            } else {
                p.parse::<u64>().ok()? as f64
            };
            if i > 0 && v >= 60.0 {
                return None;
            }
            total = total * 60.0 + v;
        }
        return ok(total);
    }
    if let Ok(v) = s.parse::<f64>() {
        return ok(v);
    }
    let mut total = 0.0;
    let mut num = String::new();
    let mut seen = false;
    for c in s.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
        } else {
            let unit = match c {
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => return None,
            };
            total += num.parse::<f64>().ok()? * unit;
            num.clear();
            seen = true;
        }
    }
    if !num.is_empty() || !seen {
        return None;
    }
    ok(total)
}

/// Unix seconds at the start of `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or
/// `YYYY-MM-DDTHH:MM[:SS]` (UTC; a space may stand for the T).
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut it = date.split('-');
    let year: i64 = it.next().filter(|y| y.len() == 4)?.parse().ok()?;
    let month: i64 = match it.next() {
        Some(m) => m.parse().ok().filter(|m| (1..=12).contains(m))?,
        None => 1,
    };
    let day: i64 = match it.next() {
        Some(d) => d
            .parse()
            .ok()
            .filter(|d| (1..=days_in_month(year, month)).contains(d))?,
        None => 1,
    };
    if it.next().is_some() {
        return None;
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    if let Some(t) = time {
        let parts: Vec<&str> = t.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return None;
        }
        let h: i64 = parts[0].parse().ok().filter(|h| (0..24).contains(h))?;
        let m: i64 = parts[1].parse().ok().filter(|m| (0..60).contains(m))?;
        let sec: i64 = match parts.get(2) {
            Some(x) => x.parse().ok().filter(|x| (0..60).contains(x))?,
            None => 0,
        };
        secs += h * 3600 + m * 60 + sec;
    }
    Some(secs)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Glob match over bytes: `*` any run (including `/`), `?` one byte, `[abc]`/`[a-z]`/`[!a]`
/// one of; case-insensitive for ASCII.
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
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

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.phrase {
            write!(f, "\"{}\"", self.text)?;
        } else {
            f.write_str(&self.text)?;
        }
        if let Some(w) = self.weight {
            write!(f, "^{w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(text: &str, phrase: bool, weight: Option<f32>) -> Term {
        Term {
            text: text.into(),
            phrase,
            weight,
        }
    }

    #[test]
    fn words_phrases_negatives_and_weights() {
        let q = parse(r#"a dog "on the beach"^2 -rain -"a cat" sunset^0.5"#).unwrap();
        let c = q.clause();
        assert_eq!(
            c.terms,
            vec![
                term("a", false, None),
                term("dog", false, None),
                term("on the beach", true, Some(2.0)),
                term("sunset", false, Some(0.5))
            ]
        );
        assert_eq!(c.negatives, vec![term("rain", false, None), term("a cat", true, None)]);
        assert_eq!(
            c.visual_parts(),
            vec![
                ("a dog".into(), 1.0),
                ("on the beach".into(), 2.0),
                ("sunset".into(), 0.5)
            ]
        );
        let lex = c.lexical();
        assert_eq!(lex.words, vec![("dog".into(), 1.0), ("sunset".into(), 0.5)]);
        assert_eq!(lex.phrases, vec!["on the beach".to_string()]);
        assert_eq!(lex.not, vec!["rain".to_string(), "a cat".to_string()]);
    }

    #[test]
    fn an_unweighted_query_is_one_sentence() {
        let q = parse("  a red circle  on a blue background ").unwrap();
        assert_eq!(
            q.clause().visual_parts(),
            vec![("a red circle on a blue background".into(), 1.0)]
        );
        assert!(q.filters.is_empty());
    }

    #[test]
    fn filters() {
        let q = parse(r#"a star path:holiday path:"*/2024/*.MP4" ext:.MP4,webm -ext:gif after:2024-05 before:2024-06-01T12:30 longer:1m30s shorter:1:02:03 video:3,4 -video:5 source:visual"#).unwrap();
        let f = &q.filters;
        assert_eq!(
            f.paths,
            vec![
                PathPattern::Contains("holiday".into()),
                PathPattern::Glob("*/2024/*.MP4".into())
            ]
        );
        assert_eq!(f.exts, vec!["mp4".to_string(), "webm".to_string()]);
        assert_eq!(f.not_exts, vec!["gif".to_string()]);
        assert_eq!(f.after, Some(1_714_521_600)); // 2024-05-01T00:00Z
        assert_eq!(f.before, Some(1_717_245_000)); // 2024-06-01T12:30Z
        assert_eq!((f.longer, f.shorter), (Some(90.0), Some(3723.0)));
        assert_eq!((f.videos.clone(), f.not_videos.clone()), (vec![3, 4], vec![5]));
        assert_eq!(f.source, Some(SourceFilter::Visual));
        assert_eq!(
            q.clause().terms,
            vec![term("a", false, None), term("star", false, None)]
        );
        fn v(path: &str, id: i64, mtime_s: i64, d: f64) -> VideoFacts<'_> {
            VideoFacts {
                id,
                path,
                mtime_ns: mtime_s * 1_000_000_000,
                duration: Some(d),
            }
        }
        assert!(f.accepts(v("/v/holiday/2024/a.mp4", 3, 1_715_000_000, 100.0)));
        assert!(
            !f.accepts(v("/v/holiday/2024/a.mp4", 5, 1_715_000_000, 100.0)),
            "excluded id"
        );
        assert!(
            !f.accepts(v("/v/holiday/2024/a.mp4", 3, 1_714_000_000, 100.0)),
            "too early"
        );
        assert!(
            !f.accepts(v("/v/holiday/2024/a.mp4", 3, 1_715_000_000, 60.0)),
            "too short"
        );
        assert!(
            !f.accepts(v("/v/holiday/2024/a.gif", 3, 1_715_000_000, 100.0)),
            "excluded extension"
        );
        assert!(!f.accepts(v("/v/work/a.mp4", 4, 1_715_000_000, 100.0)), "path");
    }

    #[test]
    fn sequences() {
        let q = parse("a red circle >> a blue star >>30s a green square").unwrap();
        assert_eq!(q.steps.len(), 3);
        assert_eq!(q.gaps, vec![DEFAULT_GAP, 30.0]);
        assert_eq!(q.steps[1].sentence(), "a blue star");
        assert!(parse(">> a star").is_err());
        assert!(parse("a star >>").is_err());
        assert!(parse("a star >>xx a circle").is_err());
    }

    #[test]
    fn errors_name_the_position_and_the_forms() {
        let e = parse(r#"a red "circle"#).unwrap_err();
        assert_eq!(e.pos, 7);
        assert!(e.message.contains("never closed"), "{e}");
        let e = parse("a star colour:red").unwrap_err();
        assert_eq!(e.pos, 8);
        assert!(
            e.message.contains("unknown filter `colour:`") && e.message.contains("path:"),
            "{e}"
        );
        let e = parse("after:2024-13").unwrap_err();
        assert_eq!(e.pos, 7);
        assert!(e.message.contains("YYYY-MM-DD"), "{e}");
        let e = parse("x longer:soon").unwrap_err();
        assert!(e.message.contains("1h") && e.pos == 10, "{e}");
        assert!(parse("x ^0").is_err() || parse("x^0").is_err());
        assert!(parse("beach^11").is_err());
        assert!(parse("x -after:2024").is_err());
        assert!(parse("x path:").is_err());
        assert!(parse("x source:audio").is_err());
        // Quoted, a colon is just text; a time of day is a word.
        assert_eq!(parse(r#""note: red" 12:30"#).unwrap().clause().terms.len(), 2);
    }

    #[test]
    fn stop_words() {
        assert!(is_stop_word("a") && is_stop_word("The") && is_stop_word("on the"));
        assert!(!is_stop_word("beach") && !is_stop_word("a beach"));
        let q = parse("a the of").unwrap();
        assert!(q.clause().lexical().is_empty());
        assert!(q.has_terms());
    }

    #[test]
    fn durations_dates_and_globs() {
        assert_eq!(parse_duration("90"), Some(90.0));
        assert_eq!(parse_duration("2m30s"), Some(150.0));
        assert_eq!(parse_duration("1.5h"), Some(5400.0));
        assert_eq!(parse_duration("1:30"), Some(90.0));
        assert_eq!(parse_duration("1:60"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_date("1970"), Some(0));
        assert_eq!(parse_date("2000-03-01"), Some(951_868_800));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800));
        assert!(glob_match(b"*/holiday/*.mp4", b"/videos/holiday/beach.MP4"));
        assert!(!glob_match(b"*/holiday/*.mp4", b"/videos/work/beach.mp4"));
        assert!(glob_match(b"*clip[0-9].webm", b"/a/clip7.webm"));
        assert!(!glob_match(b"*clip[!0-9].webm", b"/a/clip7.webm"));
        assert!(glob_match(b"?.mp4", b"a.mp4"));
        assert!(
            PathPattern::new("holiday/*.webm").matches("/tmp/lib/holiday/beach.webm"),
            "relative to any folder"
        );
        assert!(
            !PathPattern::new("/holiday/*.webm").matches("/tmp/lib/holiday/beach.webm"),
            "rooted"
        );
        assert!(
            !PathPattern::new("oliday/*.webm").matches("/tmp/lib/holiday/beach.webm"),
            "tails start at a folder"
        );
    }
}
