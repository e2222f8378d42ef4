//! `index::text`: full-text search over subtitle cues, titles and file names (the only
//! importer of tantivy). Each document keeps its video id and, for cues, the time range
//! it is shown, so a word match comes back as a moment in a video (`source:ocr` asks for
//! on-screen text as a required term). The store generation
//! is saved as the commit payload.

use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, PhraseQuery, Query, TermQuery, TermSetQuery,
};
use tantivy::schema::{Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, Value};
use tantivy::tokenizer::TokenStream;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc};

use super::IndexError;
use crate::types::{Quad, TextKind};

/// Words this long or longer in a query also match on-screen text one character away.
pub const MISREAD_MIN_CHARS: usize = 5;
/// The weight of such a near match against an exact one.
pub const MISREAD_WEIGHT: f32 = 0.5;

/// A searchable text with where it belongs.
#[derive(Clone, Debug, PartialEq)]
pub struct TextDoc {
    pub text_id: i64,
    pub video_id: i64,
    /// Stored in tantivy as its name.
    pub kind: TextKind,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub text: String,
    /// Where on-screen text is (OCR), stored beside it.
    pub quad: Option<Quad>,
}

/// A structured lexical query (the query language's lexical side; see `search::query`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LexicalQuery {
    /// Any may match; each with its weight.
    pub words: Vec<(String, f32)>,
    /// All must match, as phrases.
    pub phrases: Vec<String>,
    /// None may match (words or phrases).
    pub not: Vec<String>,
    /// Only texts of this kind (`source:ocr`): a required term of the query, so the
    /// best `limit` are the best of that kind.
    pub kind: Option<TextKind>,
}

/// A match with its BM25 score.
#[derive(Clone, Debug, PartialEq)]
pub struct TextHit {
    pub doc: TextDoc,
    pub score: f32,
}

struct Fields {
    text_id: Field,
    video_id: Field,
    kind: Field,
    start: Field,
    end: Field,
    text: Field,
    quad: Field,
}

pub struct TextIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl std::fmt::Debug for TextIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TextIndex")
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        text_id: b.add_i64_field("text_id", INDEXED | STORED),
        video_id: b.add_i64_field("video_id", INDEXED | STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        start: b.add_f64_field("start", STORED),
        end: b.add_f64_field("end", STORED),
        text: b.add_text_field("text", TEXT | STORED),
        quad: b.add_text_field("quad", STORED),
    };
    (b.build(), fields)
}

fn terr(e: impl std::fmt::Display) -> IndexError {
    IndexError::Text(e.to_string())
}

impl TextIndex {
    /// Opens the index in `dir` (creating it when missing) and returns it with the store
    /// generation it was committed at (None when unknown: new or damaged, rebuild it).
    pub fn open(dir: &Path) -> Result<(Self, Option<u64>), IndexError> {
        std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let (schema, fields) = schema();
        let opened = Index::open_in_dir(dir).ok().filter(|i| i.schema() == schema);
        let (index, generation) = match opened {
            Some(index) => {
                let g = index
                    .load_metas()
                    .ok()
                    .and_then(|m| m.payload)
                    .and_then(|p| p.parse().ok());
                (index, g)
            }
            None => {
                // Missing or unreadable: start over (the store has everything).
                if dir.exists() {
                    std::fs::remove_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
                    std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
                }
                (Index::create_in_dir(dir, schema).map_err(terr)?, None)
            }
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(terr)?;
        Ok((Self { index, reader, fields }, generation))
    }

    /// An empty index in memory, for a data folder that cannot be written (searching a
    /// read-only copy): the caller fills it from the store.
    pub fn in_memory() -> Result<Self, IndexError> {
        let (schema, fields) = schema();
        let index = Index::create_in_ram(schema);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(terr)?;
        Ok(Self { index, reader, fields })
    }

    fn writer(&self) -> Result<IndexWriter, IndexError> {
        self.index.writer_with_num_threads(1, 15_000_000).map_err(terr)
    }

    /// Replaces everything with `docs` and commits at `generation`.
    pub fn rebuild(&self, docs: &[TextDoc], generation: u64) -> Result<(), IndexError> {
        let w = self.writer()?;
        w.delete_all_documents().map_err(terr)?;
        for d in docs {
            w.add_document(self.to_doc(d)).map_err(terr)?;
        }
        self.commit(w, generation)
    }

    /// Removes the documents of `remove` videos, adds `docs`, commits at `generation`.
    pub fn update(&self, remove: &[i64], docs: &[TextDoc], generation: u64) -> Result<(), IndexError> {
        let w = self.writer()?;
        for v in remove {
            w.delete_term(Term::from_field_i64(self.fields.video_id, *v));
        }
        for d in docs {
            w.add_document(self.to_doc(d)).map_err(terr)?;
        }
        self.commit(w, generation)
    }

    fn commit(&self, mut w: IndexWriter, generation: u64) -> Result<(), IndexError> {
        let mut prepared = w.prepare_commit().map_err(terr)?;
        prepared.set_payload(&generation.to_string());
        prepared.commit().map_err(terr)?;
        w.wait_merging_threads().map_err(terr)?;
        self.reader.reload().map_err(terr)
    }

    fn to_doc(&self, d: &TextDoc) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = doc!(
            f.text_id => d.text_id,
            f.video_id => d.video_id,
            f.kind => d.kind.as_str(),
            f.text => d.text.as_str(),
        );
        if let Some(s) = d.start {
            doc.add_f64(f.start, s);
        }
        if let Some(e) = d.end {
            doc.add_f64(f.end, e);
        }
        if let Some(q) = &d.quad {
            doc.add_text(f.quad, serde_json::to_string(q).expect("four pairs of numbers"));
        }
        doc
    }

    fn tokens(&self, text: &str) -> Result<Vec<Term>, IndexError> {
        let mut analyzer = self.index.tokenizer_for_field(self.fields.text).map_err(terr)?;
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(Term::from_field_text(self.fields.text, &stream.token().text));
        }
        Ok(out)
    }

    /// A term, or a phrase of several, as one query (None: no token).
    fn phrase(&self, text: &str) -> Result<Option<Box<dyn Query>>, IndexError> {
        let mut terms = self.tokens(text)?;
        Ok(match terms.len() {
            0 => None,
            1 => Some(Box::new(TermQuery::new(terms.remove(0), IndexRecordOption::WithFreqs))),
            _ => Some(Box::new(PhraseQuery::new(terms))),
        })
    }

    fn kind_term(&self, kind: TextKind) -> Term {
        Term::from_field_text(self.fields.kind, kind.as_str())
    }

    /// Whether the index holds any on-screen text (asked once per search: the misread
    /// match is only built when it does, the fuzzy automaton is not free).
    fn has_ocr(&self, searcher: &tantivy::Searcher) -> bool {
        searcher.doc_freq(&self.kind_term(TextKind::Ocr)).is_ok_and(|n| n > 0)
    }

    /// On-screen text one misread character away from `term` (OCR readings only, words
    /// of at least [`MISREAD_MIN_CHARS`] characters): tantivy's fuzzy term at edit
    /// distance 1, a transposition counting as one edit.
    fn misread(&self, term: &Term) -> Option<Box<dyn Query>> {
        let long = term
            .value()
            .as_str()
            .is_some_and(|s| s.chars().count() >= MISREAD_MIN_CHARS);
        long.then(|| -> Box<dyn Query> {
            Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(FuzzyTermQuery::new(term.clone(), 1, true))),
                (
                    Occur::Must,
                    Box::new(TermQuery::new(self.kind_term(TextKind::Ocr), IndexRecordOption::Basic)),
                ),
            ]))
        })
    }

    /// The best `limit` matches of a structured query, only in `videos` when given: any
    /// of the words (each boosted by its weight), every phrase, none of `not`, only of
    /// `kind` when given.
    pub fn search(
        &self,
        query: &LexicalQuery,
        videos: Option<&[i64]>,
        limit: usize,
    ) -> Result<Vec<TextHit>, IndexError> {
        let f = &self.fields;
        let searcher = self.reader.searcher();
        let misreads = self.has_ocr(&searcher) && query.kind.is_none_or(|k| k == TextKind::Ocr);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut words: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (w, weight) in &query.words {
            for t in self.tokens(w)? {
                if misreads && let Some(fuzzy) = self.misread(&t) {
                    words.push((Occur::Should, Box::new(BoostQuery::new(fuzzy, weight * MISREAD_WEIGHT))));
                }
                let tq: Box<dyn Query> = Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs));
                words.push((Occur::Should, Box::new(BoostQuery::new(tq, *weight))));
            }
        }
        if !words.is_empty() {
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(words))));
        }
        for p in &query.phrases {
            if let Some(q) = self.phrase(p)? {
                clauses.push((Occur::Must, q));
            }
        }
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        for n in &query.not {
            if let Some(q) = self.phrase(n)? {
                clauses.push((Occur::MustNot, q));
            }
        }
        if let Some(videos) = videos {
            if videos.is_empty() {
                return Ok(Vec::new());
            }
            let terms = videos.iter().map(|v| Term::from_field_i64(f.video_id, *v));
            clauses.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
        }
        if let Some(kind) = query.kind {
            // Scores nothing: the hits keep the BM25 of their words.
            let only = TermQuery::new(self.kind_term(kind), IndexRecordOption::Basic);
            clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(Box::new(only), 0.0))));
        }
        let q = BooleanQuery::new(clauses);
        let top = searcher
            .search(&q, &TopDocs::with_limit(limit.max(1)).order_by_score())
            .map_err(terr)?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let d: TantivyDocument = searcher.doc(addr).map_err(terr)?;
            let i64_of = |field| d.get_first(field).and_then(|v| v.as_i64()).unwrap_or(0);
            let f64_of = |field| d.get_first(field).and_then(|v| v.as_f64());
            let str_of = |field| d.get_first(field).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let kind = str_of(f.kind);
            let kind = TextKind::parse(&kind)
                .ok_or_else(|| IndexError::Text(format!("a document of an unknown kind {kind:?}")))?;
            out.push(TextHit {
                doc: TextDoc {
                    text_id: i64_of(f.text_id),
                    video_id: i64_of(f.video_id),
                    kind,
                    start: f64_of(f.start),
                    end: f64_of(f.end),
                    text: str_of(f.text),
                    quad: d
                        .get_first(f.quad)
                        .and_then(|v| v.as_str())
                        .and_then(|s| serde_json::from_str(s).ok()),
                },
                score,
            });
        }
        Ok(out)
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The `text_id` of every document, sorted (the store/index agreement check).
    pub fn text_ids(&self) -> Result<Vec<i64>, IndexError> {
        let searcher = self.reader.searcher();
        let docs = searcher
            .search(&tantivy::query::AllQuery, &tantivy::collector::DocSetCollector)
            .map_err(terr)?;
        let mut ids = Vec::with_capacity(docs.len());
        for addr in docs {
            let d: TantivyDocument = searcher.doc(addr).map_err(terr)?;
            ids.push(d.get_first(self.fields.text_id).and_then(|v| v.as_i64()).unwrap_or(0));
        }
        ids.sort_unstable();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(id: i64, video: i64, text: &str, start: f64) -> TextDoc {
        TextDoc {
            text_id: id,
            video_id: video,
            kind: TextKind::Subtitle,
            start: Some(start),
            end: Some(start + 2.0),
            text: text.into(),
            quad: None,
        }
    }

    /// A query word one character off (a substitution, a transposition) finds on-screen
    /// text, not subtitles, and ranks below an exact match.
    #[test]
    fn a_misread_word_finds_on_screen_text_only() {
        let idx = TextIndex::in_memory().unwrap();
        let ocr = TextDoc {
            kind: TextKind::Ocr,
            quad: Some([[0.1, 0.1], [0.5, 0.1], [0.5, 0.2], [0.1, 0.2]]),
            ..cue(1, 10, "quarterly revenue forecast", 4.0)
        };
        idx.rebuild(&[ocr, cue(2, 11, "the forecast for tomorrow", 3.0)], 1)
            .unwrap();
        let q = |w: &str, kind| LexicalQuery {
            words: vec![(w.to_string(), 1.0)],
            kind,
            ..Default::default()
        };
        for misread in ["forecazt", "forceast", "revenve"] {
            let hits = idx.search(&q(misread, None), None, 10).unwrap();
            let ids: Vec<i64> = hits.iter().map(|h| h.doc.text_id).collect();
            assert_eq!(ids, [1], "{misread}");
            let only = idx.search(&q(misread, Some(TextKind::Ocr)), None, 10).unwrap();
            assert_eq!(only.len(), 1, "{misread} with source:ocr");
        }
        // Short words and two edits do not.
        assert!(idx.search(&q("forecazz", None), None, 10).unwrap().is_empty());
        let exact = idx.search(&q("forecast", None), None, 10).unwrap();
        assert_eq!(exact.len(), 2);
        let misread = idx.search(&q("forecazt", None), None, 10).unwrap();
        let exact_ocr = exact.iter().find(|h| h.doc.text_id == 1).unwrap();
        assert!(misread[0].score < exact_ocr.score);
    }

    #[test]
    fn finds_words_with_times_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (idx, g) = TextIndex::open(dir.path()).unwrap();
        assert_eq!(g, None);
        idx.rebuild(
            &[
                cue(1, 10, "the lighthouse keeper waves", 12.0),
                cue(2, 11, "a quiet harbour", 3.0),
            ],
            5,
        )
        .unwrap();
        let words = |w: &[&str]| LexicalQuery {
            words: w.iter().map(|w| (w.to_string(), 1.0)).collect(),
            ..Default::default()
        };
        let hits = idx.search(&words(&["lighthouse"]), None, 10).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].doc.video_id, hits[0].doc.start), (10, Some(12.0)));
        // Syntax characters in user text are not an error.
        assert!(idx.search(&words(&["harbour", "AND", "("]), None, 10).is_ok());
        // A phrase must match as a phrase; `not` excludes; videos restrict.
        let phrase = |p: &str| LexicalQuery {
            phrases: vec![p.into()],
            ..Default::default()
        };
        assert_eq!(idx.search(&phrase("lighthouse keeper"), None, 10).unwrap().len(), 1);
        assert!(idx.search(&phrase("keeper lighthouse"), None, 10).unwrap().is_empty());
        let mut either = words(&["lighthouse", "harbour"]);
        assert_eq!(idx.search(&either, None, 10).unwrap().len(), 2);
        assert_eq!(idx.search(&either, Some(&[11]), 10).unwrap().len(), 1);
        assert!(idx.search(&either, Some(&[]), 10).unwrap().is_empty());
        either.not = vec!["quiet harbour".into()];
        assert_eq!(idx.search(&either, None, 10).unwrap().len(), 1);
        idx.update(&[10], &[], 6).unwrap();
        assert!(idx.search(&words(&["lighthouse"]), None, 10).unwrap().is_empty());
        drop(idx);
        let (again, g) = TextIndex::open(dir.path()).unwrap();
        assert_eq!(g, Some(6));
        assert_eq!(again.search(&words(&["harbour"]), None, 10).unwrap().len(), 1);
    }
}
