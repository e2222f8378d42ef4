//! `types`: the identifiers and small vocabularies that several modules share, named for
//! what they are. Imports no outside library: the store converts these to and from its
//! columns, the indexes to and from their own storage.
//!
//! The ids are aliases of `i64`, not newtypes: the store binds them as SQLite integers
//! and the vector index keys its points by them, so a newtype would be unwrapped at
//! every one of those edges for no check the compiler could make there. The names say
//! which id a signature means; they do not stop a frame id from being passed as a video
//! id.

/// A video's id: its row in the store. Never reused, not even after the video is
/// deleted (a link to it stays dead rather than pointing at another video).
pub type VideoId = i64;

/// A frame's id: its row in the store and its point in the vector index. Never reused: a
/// deleted frame stays a tombstone in the vector index. A video's frames have
/// consecutive ids, in order.
pub type FrameId = i64;

/// Where words are in a picture: its four corners (top-left, top-right, bottom-right,
/// bottom-left) as fractions of the picture's width and height.
pub type Quad = [[f32; 2]; 4];

/// A spoken word and when: start and end in seconds, the word.
pub type TimedWord = (f64, f64, String);

/// What a searchable text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextKind {
    /// A subtitle cue, with its time range.
    Subtitle,
    /// The container's title tag.
    Title,
    /// The file's name, as words.
    Filename,
    /// Text read on screen by OCR, with its time range and box.
    Ocr,
    /// A segment of recognised speech, with its time range and words.
    Speech,
}

impl TextKind {
    /// The name stored for it (the store's TEXT column, the text index's field).
    pub fn as_str(self) -> &'static str {
        match self {
            TextKind::Subtitle => "subtitle",
            TextKind::Title => "title",
            TextKind::Filename => "filename",
            TextKind::Ocr => "ocr",
            TextKind::Speech => "speech",
        }
    }

    /// The kind named `s` (None: not a known name).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "subtitle" => Some(TextKind::Subtitle),
            "title" => Some(TextKind::Title),
            "filename" => Some(TextKind::Filename),
            "ocr" => Some(TextKind::Ocr),
            "speech" => Some(TextKind::Speech),
            _ => None,
        }
    }
}

impl std::fmt::Display for TextKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_kind_reads_back_its_own_name() {
        for k in [
            TextKind::Subtitle,
            TextKind::Title,
            TextKind::Filename,
            TextKind::Ocr,
            TextKind::Speech,
        ] {
            assert_eq!(TextKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(TextKind::parse("Subtitle"), None);
    }
}
