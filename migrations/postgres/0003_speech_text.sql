-- Speech recognised by Whisper (issue 34): a text row may be of kind 'speech' (one
-- recognised segment), and such a row keeps its words with their times: `words`, JSON
-- `[[start, end, "word"], ...]` (seconds). Same as migrations/sqlite/0008.
ALTER TABLE texts DROP CONSTRAINT texts_kind_check;
ALTER TABLE texts ADD CONSTRAINT texts_kind_check
    CHECK (kind IN ('subtitle', 'title', 'filename', 'ocr', 'speech'));
ALTER TABLE texts ADD COLUMN words TEXT;
