-- Speech recognised by Whisper (issue 34): a text row may be of kind 'speech' (one
-- recognised segment), and such a row keeps its words with their times: `words`, JSON
-- `[[start, end, "word"], ...]` (seconds). SQLite cannot change a CHECK constraint in
-- place: the table is copied.
CREATE TABLE texts_new (
    id       INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    kind     TEXT NOT NULL CHECK (kind IN ('subtitle', 'title', 'filename', 'ocr', 'speech')),
    start    REAL,
    "end"    REAL,
    text     TEXT NOT NULL,
    quad     TEXT,
    words    TEXT
);
INSERT INTO texts_new(id, video_id, kind, start, "end", text, quad)
    SELECT id, video_id, kind, start, "end", text, quad FROM texts;
DROP TABLE texts;
ALTER TABLE texts_new RENAME TO texts;
CREATE INDEX texts_by_video ON texts(video_id);
