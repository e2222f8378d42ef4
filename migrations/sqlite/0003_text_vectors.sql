-- Embeddings of texts the engine embeds again and again (the label vocabulary the
-- search cut-off competes against, prompt templates), per model. Derivable from the
-- model, kept so that a CLI run does not embed a few hundred labels each time.
CREATE TABLE text_vectors (
    model  TEXT NOT NULL,
    text   TEXT NOT NULL,
    vector BLOB NOT NULL, -- little-endian f32, L2-normalised
    PRIMARY KEY (model, text)
) WITHOUT ROWID;
