-- Two models' vectors may coexist (a model switch re-embeds the library into a second
-- vector set while search keeps using the first): one row per frame and model.
CREATE TABLE embeddings_by_model (
    frame_id INTEGER NOT NULL REFERENCES frames(id) ON DELETE CASCADE,
    model    TEXT NOT NULL,
    vector   BLOB NOT NULL, -- little-endian f32, L2-normalised
    PRIMARY KEY (frame_id, model)
) WITHOUT ROWID;
INSERT INTO embeddings_by_model(frame_id, model, vector) SELECT frame_id, model, vector FROM embeddings;
DROP TABLE embeddings;
ALTER TABLE embeddings_by_model RENAME TO embeddings;
CREATE INDEX embeddings_by_model_name ON embeddings(model, frame_id);
