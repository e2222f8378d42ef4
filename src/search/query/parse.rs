//! `search::query::parse`: the query text read into a [`Query`]: a cursor over its
//! characters (blanks, bare words, quoted phrases, `^w` weights), the terms, the `>>` of a
//! sequence and the `key:value` filters, with errors that name the position and the
//! accepted forms. What the parts mean is the parent module's (and `filters`').

use super::filters::{Filters, PathPattern};
use super::time::{parse_date, parse_duration};
use super::{Clause, DEFAULT_GAP, FILTER_KEYS, MAX_WEIGHT, Query, QueryError, SourceFilter, Term};

/// Parses a query. Empty text gives an empty query (one empty clause).
pub fn parse(text: &str) -> Result<Query, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Cursor { chars: &chars, i: 0 };
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
            next_step(&mut p, &mut q, start)?;
            continue;
        }
        let negative = chars[start] == '-' && chars.get(start + 1).is_some_and(|c| !c.is_whitespace());
        if negative {
            p.i += 1;
        }
        item(&mut p, &mut q, negative)?;
    }
    if q.steps.len() > 1 && q.steps.last().is_some_and(|c| c.terms.is_empty()) {
        return Err(err(
            chars.len().max(1),
            "`>>` needs what to look for after it, e.g. `a car stops >> a person gets out`",
        ));
    }
    Ok(q)
}

/// `>>` or `>>GAP` at `start`: the current step ends, the next one begins.
fn next_step(p: &mut Cursor, q: &mut Query, start: usize) -> Result<(), QueryError> {
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
    Ok(())
}

/// One item at the cursor (after its `-`, if `negative`): a phrase, a `key:value`
/// filter or a word, each with its weight.
fn item(p: &mut Cursor, q: &mut Query, negative: bool) -> Result<(), QueryError> {
    let item_at = p.i;
    if p.chars[p.i] == '"' {
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
        push(q, negative, term);
        return Ok(());
    }
    let word = p.bare();
    if let Some((key, value_at)) = filter_key(&word) {
        let mut value = word[key.len() + 1..].to_string();
        if value.is_empty() && p.i < p.chars.len() && p.chars[p.i] == '"' {
            value = p.quoted()?;
        }
        return filter(&mut q.filters, key, &value, negative, item_at, item_at + value_at);
    }
    let (text, weight) = split_weight(&word, item_at)?;
    if text.is_empty() {
        return Ok(()); // a lone "-" or "^"
    }
    push(
        q,
        negative,
        Term {
            text,
            phrase: false,
            weight,
        },
    );
    Ok(())
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

/// The lexer: a position in the query's characters, and the runs it reads there.
struct Cursor<'a> {
    chars: &'a [char],
    i: usize,
}

impl Cursor<'_> {
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

/// The filter keys of the language (see `FILTER_KEYS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FilterKey {
    Path,
    Ext,
    After,
    Before,
    Longer,
    Shorter,
    Video,
    Source,
    Tag,
}

impl FilterKey {
    /// The key `key:` names (any case), checked against its value and its `-`.
    fn check(key: &str, value: &str, negative: bool, at: usize) -> Result<Self, QueryError> {
        let k = match key.to_ascii_lowercase().as_str() {
            "path" => FilterKey::Path,
            "ext" => FilterKey::Ext,
            "after" => FilterKey::After,
            "before" => FilterKey::Before,
            "longer" => FilterKey::Longer,
            "shorter" => FilterKey::Shorter,
            "video" => FilterKey::Video,
            "source" => FilterKey::Source,
            "tag" => FilterKey::Tag,
            _ => {
                return Err(err(
                    at,
                    format!(
                        "unknown filter `{key}:`; the filters are {FILTER_KEYS} (put the word in quotes to search for it: `\"{key}:{value}\"`)"
                    ),
                ));
            }
        };
        if value.is_empty() {
            return Err(err(
                at,
                format!("the filter `{key}:` needs a value, e.g. {}", k.example()),
            ));
        }
        if negative && !matches!(k, FilterKey::Path | FilterKey::Ext | FilterKey::Video | FilterKey::Tag) {
            return Err(err(
                at,
                format!("`-{key}:` cannot be negated; only path:, ext:, video: and tag: can be excluded"),
            ));
        }
        Ok(k)
    }

    fn example(self) -> &'static str {
        match self {
            FilterKey::Path => "path:holiday",
            FilterKey::Ext => "ext:mp4",
            FilterKey::After => "after:2024-05-01",
            FilterKey::Before => "before:2024",
            FilterKey::Longer => "longer:30s",
            FilterKey::Shorter => "shorter:2m",
            FilterKey::Video => "video:12",
            FilterKey::Tag => "tag:\"a red circle\"",
            FilterKey::Source => "source:visual",
        }
    }
}

/// `key:value` (`-key:value` when `negative`) added to the filters; `at` and `value_at`
/// are where the filter and its value start, for errors.
fn filter(
    f: &mut Filters,
    key: &str,
    value: &str,
    negative: bool,
    at: usize,
    value_at: usize,
) -> Result<(), QueryError> {
    let k = FilterKey::check(key, value, negative, at)?;
    let bad = |forms: &str| err(value_at, format!("`{key}:{value}`: {forms}"));
    match k {
        FilterKey::Path => {
            let p = PathPattern::new(value);
            if negative { f.not_paths.push(p) } else { f.paths.push(p) }
        }
        FilterKey::Ext => {
            for e in value
                .split(',')
                .map(|e| e.trim().trim_start_matches('.').to_lowercase())
                .filter(|e| !e.is_empty())
            {
                if negative { f.not_exts.push(e) } else { f.exts.push(e) }
            }
        }
        FilterKey::Video => {
            for id in video_ids(value, value_at)? {
                if negative {
                    f.not_videos.push(id)
                } else {
                    f.videos.push(id)
                }
            }
        }
        FilterKey::After => {
            let t = parse_date(value).ok_or_else(|| bad(DATE_FORMS))?;
            f.after = Some(f.after.map_or(t, |a| a.max(t)));
        }
        FilterKey::Before => {
            let t = parse_date(value).ok_or_else(|| bad(DATE_FORMS))?;
            f.before = Some(f.before.map_or(t, |b| b.min(t)));
        }
        FilterKey::Longer => {
            let d = parse_duration(value).ok_or_else(|| bad(DURATION_FORMS))?;
            f.longer = Some(f.longer.map_or(d, |l| l.max(d)));
        }
        FilterKey::Shorter => {
            let d = parse_duration(value).ok_or_else(|| bad(DURATION_FORMS))?;
            f.shorter = Some(f.shorter.map_or(d, |s| s.min(d)));
        }
        FilterKey::Tag => {
            let label = value.trim().to_string();
            if negative {
                f.not_tags.push(label)
            } else {
                f.tags.push(label)
            }
        }
        FilterKey::Source => f.source = Some(source_filter(value, value_at)?),
    }
    Ok(())
}

/// The ids of `video:12,14`.
fn video_ids(value: &str, value_at: usize) -> Result<Vec<i64>, QueryError> {
    value
        .split(',')
        .map(|part| {
            part.trim().parse().ok().filter(|id| *id > 0).ok_or_else(|| {
                err(
                    value_at,
                    format!("`video:{value}`: a video id is a positive whole number, e.g. video:12 or video:12,14"),
                )
            })
        })
        .collect()
}

/// The source of `source:visual`, `source:text`, `source:ocr`, `source:speech` or
/// `source:subtitle` (any case).
fn source_filter(value: &str, value_at: usize) -> Result<SourceFilter, QueryError> {
    match value.to_ascii_lowercase().as_str() {
        "visual" => Ok(SourceFilter::Visual),
        "text" => Ok(SourceFilter::Text),
        "ocr" => Ok(SourceFilter::Ocr),
        "speech" => Ok(SourceFilter::Speech),
        "subtitle" | "subtitles" => Ok(SourceFilter::Subtitle),
        _ => Err(err(
            value_at,
            format!(
                "`source:{value}`: the sources are source:visual, source:text, source:ocr, source:speech and \
                 source:subtitle"
            ),
        )),
    }
}
