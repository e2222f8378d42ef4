-- vidseek's source of truth. Everything under the data folder besides this database
-- (vector index, text index) is derived from it and rebuilt when missing or stale.

-- Key/value facts about the whole store: model name and dimension the vectors were
-- made with, and the generation counter that ties derived indexes to this state.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE videos (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    hash        TEXT NOT NULL,
    duration    REAL,
    fps         REAL,
    width       INTEGER,
    height      INTEGER,
    codec       TEXT,
    rotation    INTEGER,
    status      TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
    error       TEXT,
    frame_count INTEGER NOT NULL DEFAULT 0,
    indexed_at  INTEGER NOT NULL
);

-- One row per stored vector: the frame stands for [start, end) seconds of its video.
CREATE TABLE frames (
    id        INTEGER PRIMARY KEY,
    video_id  INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    start     REAL NOT NULL,
    "end"     REAL NOT NULL,
    peak      REAL NOT NULL,
    shot      INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX frames_by_video ON frames(video_id, seq);

CREATE TABLE embeddings (
    frame_id INTEGER PRIMARY KEY REFERENCES frames(id) ON DELETE CASCADE,
    model    TEXT NOT NULL,
    vector   BLOB NOT NULL -- little-endian f32, L2-normalised
);

CREATE TABLE thumbnails (
    frame_id INTEGER PRIMARY KEY REFERENCES frames(id) ON DELETE CASCADE,
    jpeg     BLOB NOT NULL
);

-- Searchable text tied to a video: subtitle cues (with times), titles, file names.
CREATE TABLE texts (
    id       INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    kind     TEXT NOT NULL CHECK (kind IN ('subtitle', 'title', 'filename')),
    start    REAL,
    "end"    REAL,
    text     TEXT NOT NULL
);
CREATE INDEX texts_by_video ON texts(video_id);

-- The durable queue of indexing work.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('enqueued', 'processing', 'succeeded', 'failed', 'canceled')),
    paths       TEXT NOT NULL, -- JSON array of the paths asked for
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    files_total INTEGER NOT NULL DEFAULT 0,
    files_done  INTEGER NOT NULL DEFAULT 0,
    frames_done INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);

-- Per-file outcome of a job.
CREATE TABLE job_files (
    job_id  INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    path    TEXT NOT NULL,
    state   TEXT NOT NULL CHECK (state IN ('indexed', 'unchanged', 'failed')),
    error   TEXT,
    frames  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, path)
);
