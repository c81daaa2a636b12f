-- Schema version 1: packages, versions (metadata as JSON), downloads by day, the event log.
CREATE TABLE packages (
    id        INTEGER PRIMARY KEY,
    key       TEXT NOT NULL UNIQUE,              -- canonical "namespace/name" or "name"
    downloads INTEGER NOT NULL DEFAULT 0         -- all versions, kept with each download
);

CREATE TABLE versions (
    id           INTEGER PRIMARY KEY,            -- registration order
    package_id   INTEGER NOT NULL REFERENCES packages(id),
    id_key       TEXT NOT NULL UNIQUE,           -- canonical "namespace/name@version-without-build"
    version      TEXT NOT NULL,                  -- the version as registered
    metadata     TEXT NOT NULL,                  -- PackageMetadata as JSON, updates applied
    yank_reason  TEXT,
    yanked_at    TEXT
);
CREATE INDEX versions_by_package ON versions(package_id);

CREATE TABLE downloads (
    version_id INTEGER NOT NULL REFERENCES versions(id),
    day        TEXT NOT NULL,                    -- YYYY-MM-DD, UTC
    count      INTEGER NOT NULL,
    PRIMARY KEY (version_id, day)
) WITHOUT ROWID;
CREATE INDEX downloads_by_day ON downloads(day);

-- Append-only; INTEGER PRIMARY KEY without AUTOINCREMENT takes max+1, so a rolled-back
-- mutation leaves no gap and rows are never deleted.
CREATE TABLE events (
    seq  INTEGER PRIMARY KEY,
    at   TEXT NOT NULL,
    kind TEXT NOT NULL                           -- EventKind as JSON
);
