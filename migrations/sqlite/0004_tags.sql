-- Zero-shot tags: the labels of the library's vocabulary a frame's vector passes
-- (search::tags). Derived from the stored vectors, the vocabulary and the model; a
-- video's tags are current when its `tagged_videos.stamp` is the stamp of those three.
CREATE TABLE frame_tags (
    frame_id INTEGER NOT NULL REFERENCES frames(id) ON DELETE CASCADE,
    label    TEXT NOT NULL,
    prob     REAL NOT NULL,
    PRIMARY KEY (frame_id, label)
) WITHOUT ROWID;
CREATE INDEX frame_tags_by_label ON frame_tags(label, frame_id);

CREATE TABLE tagged_videos (
    video_id INTEGER PRIMARY KEY REFERENCES videos(id) ON DELETE CASCADE,
    stamp    TEXT NOT NULL
);

-- Few-shot probes saved as named tags: the examples they are trained from (frame ids,
-- comma-separated) and the text they start from; retrained for each model.
CREATE TABLE probes (
    name    TEXT PRIMARY KEY NOT NULL,
    query   TEXT NOT NULL,
    likes   TEXT NOT NULL,
    unlikes TEXT NOT NULL,
    created INTEGER NOT NULL
);
