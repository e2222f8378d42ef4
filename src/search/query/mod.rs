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
//! source:visual|text|ocr          only moments found in the pictures, or only in subtitles,
//! source:speech|subtitle          speech, on-screen text, titles and file names, or only
//!                                 in on-screen text (OCR), recognised speech, subtitles
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

mod filters;
mod parse;
#[cfg(test)]
mod tests;
mod time;

use std::fmt;

pub use self::filters::{Filters, VideoFacts};
pub use self::parse::parse;

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

/// Only visual or only lexical results, or only one kind of timed text: on-screen text
/// (OCR), recognised speech, subtitle cues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceFilter {
    Visual,
    Text,
    Ocr,
    Speech,
    Subtitle,
}

impl SourceFilter {
    /// The one kind of text it keeps, when it keeps one.
    pub fn text_kind(self) -> Option<crate::types::TextKind> {
        use crate::types::TextKind;
        match self {
            SourceFilter::Ocr => Some(TextKind::Ocr),
            SourceFilter::Speech => Some(TextKind::Speech),
            SourceFilter::Subtitle => Some(TextKind::Subtitle),
            SourceFilter::Visual | SourceFilter::Text => None,
        }
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
