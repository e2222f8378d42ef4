//! Subtitle cues, titles and file names tied to videos.

use sqlx::Row;

use super::*;
pub use crate::types::{Quad, TextKind, TimedWord};

/// The kind stored in a text row's `kind` column (its CHECK constraint in migrations/
/// allows exactly the names of [`TextKind`]; another is a corrupt store).
fn kind_of(s: &str) -> Result<TextKind> {
    TextKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("TextKind {s:?} is not one of the known values")))
}

/// A text row (subtitle cue, title, file name).
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    pub id: i64,
    pub video_id: VideoId,
    pub kind: TextKind,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub text: String,
    /// Where on-screen text is (OCR): corners as fractions of the frame.
    pub quad: Option<Quad>,
    /// Recognised speech: its words with their times.
    pub words: Option<Vec<TimedWord>>,
}

#[derive(Clone, Debug)]
pub struct NewText {
    pub kind: TextKind,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub text: String,
    /// Where on-screen text is (OCR): corners as fractions of the frame.
    pub quad: Option<Quad>,
    /// Recognised speech: its words with their times.
    pub words: Option<Vec<TimedWord>>,
}

impl Store {
    /// The id of every text, in order.
    pub async fn text_ids(&self) -> Result<Vec<i64>> {
        sqlx::query("SELECT id FROM texts ORDER BY id")
            .fetch_all(&self.read)
            .await
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .map_err(self.q("listing texts"))
    }

    pub async fn texts(&self) -> Result<Vec<Text>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TEXT_COLS} FROM texts ORDER BY id"
        )))
        .fetch_all(&self.read)
        .await
        .map_err(self.q("reading texts"))?
        .iter()
        .map(text_from)
        .collect()
    }
}

/// The columns [`text_from`] reads, in its order.
const TEXT_COLS: &str = "id, video_id, kind, start, \"end\", text, quad, words";

/// A row of [`TEXT_COLS`].
fn text_from(r: &sqlx::any::AnyRow) -> Result<Text> {
    Ok(Text {
        id: r.get(0),
        video_id: r.get(1),
        kind: kind_of(r.get(2))?,
        start: r.get(3),
        end: r.get(4),
        text: r.get(5),
        quad: quad_of(r.get(6))?,
        words: words_of(r.get(7))?,
    })
}

/// A stored box (JSON `[[x, y], ...]`, four corners); None stays None.
pub(super) fn quad_text(q: Option<&Quad>) -> Option<String> {
    q.map(|q| serde_json::to_string(q).expect("four pairs of numbers"))
}

/// Stored words (JSON `[[start, end, "word"], ...]`); None stays None.
pub(super) fn words_text(w: Option<&Vec<TimedWord>>) -> Option<String> {
    w.map(|w| serde_json::to_string(w).expect("numbers and strings"))
}

fn words_of(s: Option<String>) -> Result<Option<Vec<TimedWord>>> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("stored words {s:?}: {e}"))))
        .transpose()
}

fn quad_of(s: Option<String>) -> Result<Option<Quad>> {
    s.map(|s| {
        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("a text box {s:?} is not four corners: {e}")))
    })
    .transpose()
}

impl Store {
    /// Every text of one video, by id.
    pub async fn texts_of_video(&self, video: VideoId) -> Result<Vec<Text>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TEXT_COLS} FROM texts WHERE video_id = $1 ORDER BY id"
        )))
        .bind(video)
        .fetch_all(&self.read)
        .await
        .map_err(self.q("reading a video's texts"))?
        .iter()
        .map(text_from)
        .collect()
    }

    /// The texts of `kind` of one video, by start time.
    pub async fn texts_of(&self, video: VideoId, kind: TextKind) -> Result<Vec<Text>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TEXT_COLS} FROM texts WHERE video_id = $1 AND kind = $2 ORDER BY start, id"
        )))
        .bind(video)
        .bind(kind.as_str())
        .fetch_all(&self.read)
        .await
        .map_err(self.q("reading a video's texts"))?
        .iter()
        .map(text_from)
        .collect()
    }
}
