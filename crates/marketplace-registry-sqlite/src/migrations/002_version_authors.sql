-- Schema version 2: authors in their own indexed table, for list_by_author; backfilled from
-- the metadata of every existing version.
CREATE TABLE version_authors (
    version_id INTEGER NOT NULL REFERENCES versions(id),
    author     TEXT NOT NULL,
    PRIMARY KEY (author, version_id)
) WITHOUT ROWID;

INSERT OR IGNORE INTO version_authors (version_id, author)
    SELECT versions.id, authors.value
    FROM versions, json_each(versions.metadata, '$.authors') AS authors;
