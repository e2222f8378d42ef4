-- API keys (issue 32): shared by every node of a library, so a key made once works on
-- all of them. Only a SHA-256 of the key is kept; `prefix` (its first characters) lets
-- a person tell keys apart. `scope`: `search` reads, `admin` also changes the library.
CREATE TABLE api_keys (
    name       TEXT PRIMARY KEY,
    scope      TEXT NOT NULL CHECK (scope IN ('search', 'admin')),
    hash       TEXT NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used  INTEGER,
    revoked_at INTEGER
);
