-- On-screen text read by OCR (issue 35): a text row may be of kind 'ocr', and such a
-- row keeps where the words are: `quad`, the four corners (top-left, top-right,
-- bottom-right, bottom-left) as fractions of the frame, JSON `[[x, y], ...]`.
-- SQLite cannot change a CHECK constraint in place: the table is copied.
CREATE TABLE texts_new (
    id       INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    kind     TEXT NOT NULL CHECK (kind IN ('subtitle', 'title', 'filename', 'ocr')),
    start    REAL,
    "end"    REAL,
    text     TEXT NOT NULL,
    quad     TEXT
);
INSERT INTO texts_new(id, video_id, kind, start, "end", text)
    SELECT id, video_id, kind, start, "end", text FROM texts;
DROP TABLE texts;
ALTER TABLE texts_new RENAME TO texts;
CREATE INDEX texts_by_video ON texts(video_id);
