//! Subtitle cues, titles and file names tied to videos.

use serde::Serialize;
use sqlx::Row;

use super::*;

text_enum! {
    /// What a searchable text is.
    TextKind {
        /// A subtitle cue, with its time range.
        Subtitle = "subtitle",
        /// The container's title tag.
        Title = "title",
        /// The file's name, as words.
        Filename = "filename",
    }
}

/// A text row (subtitle cue, title, file name).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Text {
    pub id: i64,
    pub video_id: i64,
    pub kind: TextKind,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct NewText {
    pub kind: TextKind,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub text: String,
}

impl Store {
    pub async fn texts(&self) -> Result<Vec<Text>> {
        sqlx::query("SELECT id, video_id, kind, start, \"end\", text FROM texts ORDER BY id")
            .fetch_all(&self.read)
            .await
            .map_err(q("reading texts"))?
            .iter()
            .map(|r| {
                Ok(Text {
                    id: r.get(0),
                    video_id: r.get(1),
                    kind: TextKind::parse(r.get(2))?,
                    start: r.get(3),
                    end: r.get(4),
                    text: r.get(5),
                })
            })
            .collect()
    }
}
