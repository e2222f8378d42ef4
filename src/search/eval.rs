//! `vidseek eval`: how well search finds known moments.
//!
//! A truth file is a JSON list of `{"query", "path", "start", "end"}`: the moment of
//! `path` between `start` and `end` seconds answers `query`. Entries with the same query
//! are that query's relevant moments. Each query is searched once (the first
//! [`DEPTH`] results; the cut-off `off` unless asked otherwise).
//!
//! The overlap rule (the same as the tests'): a result answers a truth moment when it is
//! of the same file (the truth path equals the result's path, or is its tail after a
//! `/`) and it overlaps the moment by at least half the shorter of the two, or its peak
//! lies inside the moment. Each truth moment is answered by its first such result.
//!
//! - R@k: the share of truth moments answered within the first k results.
//! - mAP: the mean over queries of average precision (the precision at each result that
//!   answers a new truth moment, summed, over the query's number of truth moments).
//! - Peak error: for answered moments, how far the answering result's peak lies outside
//!   the moment (0 inside); the median is reported.
//! - Misses: each truth moment not answered at rank 1, with its rank (if within the
//!   depth) and what came first.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{MinScore, SearchError, SearchRequest, Segment};
use crate::catalog::Catalog;
use crate::embed::Embedder;

/// Results looked at per query.
pub const DEPTH: usize = 10;
/// Most truth entries one file may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// Errors of an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("the truth file is not a JSON list of {{\"query\", \"path\", \"start\", \"end\"}} (seconds): {0}")]
    BadTruth(String),
    #[error("truth entry {index} ({query:?}): {reason}")]
    BadEntry {
        index: usize,
        query: String,
        reason: String,
    },
    #[error("truth entry {index} ({query:?}): {source}")]
    Search {
        index: usize,
        query: String,
        #[source]
        source: SearchError,
    },
}

impl crate::error::Classified for EvalError {
    fn fault(&self) -> crate::error::Fault {
        match self {
            EvalError::BadTruth(_) | EvalError::BadEntry { .. } => crate::error::Fault::BadInput,
            EvalError::Search { source, .. } => source.fault(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            EvalError::BadTruth(_) | EvalError::BadEntry { .. } => "bad_truth",
            EvalError::Search { source, .. } => source.code(),
        }
    }
}

/// One known moment.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Truth {
    /// What is searched for (the query language).
    pub query: String,
    /// The file: its path, or its tail after a `/`.
    pub path: String,
    /// Seconds.
    pub start: f64,
    /// Seconds, after `start`.
    pub end: f64,
}

/// A result, as a miss reports it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Seen {
    pub path: String,
    pub start: f64,
    pub end: f64,
    pub score: f32,
}

/// A truth moment not answered first.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Miss {
    pub query: String,
    pub path: String,
    pub start: f64,
    pub end: f64,
    /// Its rank when found within the depth (2..=DEPTH), else None.
    pub rank: Option<usize>,
    /// The first result (None when the query found nothing).
    pub first: Option<Seen>,
    /// Whether that first result is another moment of the same query's truth.
    pub first_is_truth: bool,
}

/// What `vidseek eval` reports.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    /// Distinct queries.
    pub queries: usize,
    /// Truth moments.
    pub moments: usize,
    /// The share of truth moments answered first.
    pub recall_at_1: f64,
    /// ... within the first 5 results.
    pub recall_at_5: f64,
    /// ... within the first 10 results.
    pub recall_at_10: f64,
    /// Mean average precision over queries.
    pub map: f64,
    /// Seconds; None when nothing was answered.
    pub median_peak_error: Option<f64>,
    /// The cut-off searched with.
    pub cutoff: String,
    /// The prompt templates searched with: auto, none or "N templates".
    pub templates: String,
    /// Truth moments not answered first.
    pub misses: Vec<Miss>,
}

/// Reads a truth file's text.
pub fn parse_truth(text: &str) -> Result<Vec<Truth>, EvalError> {
    let list: Vec<Truth> = serde_json::from_str(text).map_err(|e| EvalError::BadTruth(e.to_string()))?;
    check(&list)?;
    Ok(list)
}

/// Checks a list of truth entries (as parsed, or as the API received them).
pub fn check(list: &[Truth]) -> Result<(), EvalError> {
    if list.is_empty() {
        return Err(EvalError::BadTruth("the list is empty".into()));
    }
    if list.len() > MAX_ENTRIES {
        return Err(EvalError::BadTruth(format!(
            "{} entries; the limit is {MAX_ENTRIES}",
            list.len()
        )));
    }
    for (index, t) in list.iter().enumerate() {
        let bad = |reason: &str| EvalError::BadEntry {
            index,
            query: t.query.clone(),
            reason: reason.into(),
        };
        if t.query.trim().is_empty() {
            return Err(bad("the query is empty"));
        }
        if t.path.trim().is_empty() {
            return Err(bad("the path is empty"));
        }
        if !(t.start.is_finite() && t.end.is_finite() && t.start >= 0.0 && t.end > t.start) {
            return Err(bad("start and end must be seconds with 0 <= start < end"));
        }
    }
    Ok(())
}

/// Whether a result of `path` spanning [start, end) with its peak answers `t` (the rule
/// in the module doc).
pub fn answers(path: &str, start: f64, end: f64, peak: f64, t: &Truth) -> bool {
    let want = t.path.trim_start_matches("./");
    let same = path == t.path || path == want || path.ends_with(&format!("/{want}"));
    if !same {
        return false;
    }
    let overlap = (end.min(t.end) - start.max(t.start)).max(0.0);
    let shorter = (end - start).min(t.end - t.start);
    overlap >= 0.5 * shorter || (peak >= t.start && peak < t.end)
}

/// The scores of one query's ranked results against its truth moments.
#[derive(Debug, Default, PartialEq)]
struct Scored {
    /// Per truth moment: the rank (1-based) that answered it, and the peak error.
    found: Vec<Option<(usize, f64)>>,
    average_precision: f64,
}

fn score(results: &[Segment], truths: &[&Truth]) -> Scored {
    let mut found: Vec<Option<(usize, f64)>> = vec![None; truths.len()];
    let mut hits = 0usize;
    let mut ap = 0.0;
    for (i, r) in results.iter().enumerate() {
        let new = truths
            .iter()
            .enumerate()
            .find(|(j, t)| found[*j].is_none() && answers(&r.path, r.start, r.end, r.peak, t));
        if let Some((j, t)) = new {
            let err = (t.start - r.peak).max(r.peak - t.end).max(0.0);
            found[j] = Some((i + 1, err));
            hits += 1;
            ap += hits as f64 / (i + 1) as f64;
        }
    }
    Scored {
        found,
        average_precision: ap / truths.len() as f64,
    }
}

/// Runs every query of the truth and reports.
pub async fn run(
    catalog: &Catalog,
    model: Arc<Embedder>,
    truth: &[Truth],
    min_score: MinScore,
    templates: &super::prompts::Templates,
) -> Result<Report, EvalError> {
    let (order, by_query) = by_query(truth);
    let mut tally = Tally::default();
    for q in &order {
        let entries = &by_query[q];
        let mut req = SearchRequest::new(*q, DEPTH.max(entries.len()) as i64);
        req.min_score = min_score;
        req.templates = templates.clone();
        let res = super::search(catalog, model.clone(), &req)
            .await
            .map_err(|source| EvalError::Search {
                index: entries[0].0,
                query: q.to_string(),
                source,
            })?;
        let truths: Vec<&Truth> = entries.iter().map(|(_, t)| *t).collect();
        tally.add(&res.results, &truths);
    }
    Ok(tally.report(truth.len(), order.len(), min_score, templates))
}

/// One query's truth moments, each with its index in the truth.
type Moments<'t> = Vec<(usize, &'t Truth)>;

/// Queries in order of first appearance, each with its moments.
fn by_query(truth: &[Truth]) -> (Vec<&str>, BTreeMap<&str, Moments<'_>>) {
    let mut order: Vec<&str> = Vec::new();
    let mut by_query: BTreeMap<&str, Moments<'_>> = BTreeMap::new();
    for (i, t) in truth.iter().enumerate() {
        let q = t.query.trim();
        if !by_query.contains_key(q) {
            order.push(q);
        }
        by_query.entry(q).or_default().push((i, t));
    }
    (order, by_query)
}

/// The counts an evaluation adds up over its queries.
#[derive(Default)]
struct Tally {
    at1: usize,
    at5: usize,
    at10: usize,
    ap_sum: f64,
    /// Peak errors of the answered moments.
    errors: Vec<f64>,
    misses: Vec<Miss>,
}

impl Tally {
    /// One query's ranked results against its truth moments.
    fn add(&mut self, results: &[Segment], truths: &[&Truth]) {
        let s = score(results, truths);
        self.ap_sum += s.average_precision;
        for (t, f) in truths.iter().zip(&s.found) {
            let rank = f.map(|(r, _)| r);
            self.at1 += usize::from(rank.is_some_and(|r| r <= 1));
            self.at5 += usize::from(rank.is_some_and(|r| r <= 5));
            self.at10 += usize::from(rank.is_some_and(|r| r <= 10));
            if let Some((_, e)) = f {
                self.errors.push(*e);
            }
            if rank != Some(1) {
                self.misses.push(miss(t, rank, results, truths));
            }
        }
    }

    /// The report over `moments` truth moments of `queries` queries.
    fn report(
        self,
        moments: usize,
        queries: usize,
        min_score: MinScore,
        templates: &super::prompts::Templates,
    ) -> Report {
        let n = moments as f64;
        Report {
            queries,
            moments,
            recall_at_1: self.at1 as f64 / n,
            recall_at_5: self.at5 as f64 / n,
            recall_at_10: self.at10 as f64 / n,
            map: self.ap_sum / queries as f64,
            median_peak_error: (!self.errors.is_empty()).then(|| crate::util::median(&self.errors)),
            cutoff: min_score.to_string(),
            templates: match templates {
                super::prompts::Templates::Given(t) => format!("{} templates", t.len()),
                t => t.to_string(),
            },
            misses: self.misses,
        }
    }
}

/// Truth moment `t`, not answered first (`rank`: where it was, if anywhere), and what
/// came first instead.
fn miss(t: &Truth, rank: Option<usize>, results: &[Segment], truths: &[&Truth]) -> Miss {
    Miss {
        query: t.query.clone(),
        path: t.path.clone(),
        start: t.start,
        end: t.end,
        rank,
        first: results.first().map(|r| Seen {
            path: r.path.clone(),
            start: r.start,
            end: r.end,
            score: r.score,
        }),
        first_is_truth: results
            .first()
            .is_some_and(|r| truths.iter().any(|o| answers(&r.path, r.start, r.end, r.peak, o))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Source;

    fn truth(path: &str, start: f64, end: f64) -> Truth {
        Truth {
            query: "q".into(),
            path: path.into(),
            start,
            end,
        }
    }

    fn result(path: &str, start: f64, end: f64) -> Segment {
        Segment {
            path: path.into(),
            start,
            end,
            peak: (start + end) / 2.0,
            ..Segment::new(1, Source::Visual)
        }
    }

    #[test]
    fn the_overlap_rule_needs_the_same_file_and_half_the_shorter_span() {
        let t = truth("clips/a.mp4", 10.0, 14.0);
        assert!(answers("/lib/clips/a.mp4", 11.0, 13.0, 12.0, &t));
        assert!(
            !answers("/lib/clips/ba.mp4", 11.0, 13.0, 12.0, &t),
            "a longer name is another file"
        );
        assert!(
            !answers("/lib/clips/a.mp4", 13.5, 20.0, 16.0, &t),
            "0.5 s of a 4 s moment, peak outside"
        );
        assert!(
            answers("/lib/clips/a.mp4", 0.0, 30.0, 12.0, &t),
            "the peak inside counts"
        );
        assert!(
            answers("/lib/clips/a.mp4", 12.0, 16.0, 15.0, &t),
            "2 s of the shorter 4 s"
        );
    }

    #[test]
    fn ranks_average_precision_and_peak_errors() {
        let t1 = truth("a.mp4", 0.0, 2.0);
        let t2 = truth("a.mp4", 10.0, 12.0);
        let results = [
            result("/x/b.mp4", 0.0, 2.0),
            result("/x/a.mp4", 10.0, 12.0),
            result("/x/a.mp4", 1.0, 3.5),
        ];
        let s = score(&results, &[&t1, &t2]);
        // t2 at rank 2, t1 at rank 3 (overlap 1 s of the shorter 2 s; peak 2.25 is 0.25 s late).
        assert_eq!(s.found[1], Some((2, 0.0)));
        assert_eq!(s.found[0].map(|f| f.0), Some(3));
        assert!((s.found[0].unwrap().1 - 0.25).abs() < 1e-9);
        assert!((s.average_precision - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-9);
        let none = score(&[], &[&t1]);
        assert_eq!(none.found, vec![None]);
        assert_eq!(none.average_precision, 0.0);
    }

    #[test]
    fn bad_truth_files_name_the_entry() {
        assert!(matches!(parse_truth("{}"), Err(EvalError::BadTruth(_))));
        assert!(matches!(parse_truth("[]"), Err(EvalError::BadTruth(_))));
        let e = parse_truth(r#"[{"query":"a","path":"x.mp4","start":3,"end":1}]"#).unwrap_err();
        assert!(e.to_string().contains("entry 0"), "{e}");
        assert!(parse_truth(r#"[{"query":"a","path":"x.mp4","start":0,"end":1,"extra":1}]"#).is_err());
        assert_eq!(
            parse_truth(r#"[{"query":"a","path":"x.mp4","start":0,"end":1.5}]"#)
                .unwrap()
                .len(),
            1
        );
    }
}
