-- Schema version 1: packages, versions (metadata as the shared JSON row encoding), downloads by
-- day, the event log, and the accounts of a shared marketplace.

-- Gap-free counters. A mutation takes the `event` row's lock first (UPDATE ... RETURNING), so
-- writers on every connection and in every process are serialised at that row, numbers are
-- handed out in commit order, and a rolled-back transaction gives its numbers back (a
-- SEQUENCE would leave a gap). `version` numbers registrations (their order for paging);
-- `download` stamps downloads and is taken only by downloads, so they never wait for
-- publishes.
CREATE TABLE counters (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO counters (name, value) VALUES ('event', 0), ('version', 0), ('download', 0);

CREATE TABLE packages (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key            text NOT NULL UNIQUE,            -- canonical "namespace/name" or "name"
    downloads      bigint NOT NULL DEFAULT 0,       -- all versions, kept with each download
    download_stamp bigint NOT NULL DEFAULT 0        -- the `download` counter at its last one
);
CREATE INDEX packages_by_download_stamp ON packages (download_stamp) WHERE download_stamp > 0;

-- The rows registrations write in bulk (versions, their authors and dependencies) carry no
-- FOREIGN KEY: the registry writes each only in the transaction that writes or reads its
-- parent, and a foreign key costs a trigger per row (a third of a batch's time).
CREATE TABLE versions (
    ord         bigint PRIMARY KEY,                 -- registration order: 1, 2, 3, ... no gaps
    package_id  bigint NOT NULL,                    -- packages (id)
    id_key      text NOT NULL UNIQUE,               -- canonical "name@version-without-build"
    version     text NOT NULL,                      -- the version as registered
    metadata    text NOT NULL,                      -- marketplace-registry-encoding's row
    yank_reason text,
    yanked_at   text                                -- RFC 3339
);
CREATE INDEX versions_by_package ON versions (package_id);

-- Per author, the author's own gap-free numbering of their versions (`authors.versions` is
-- the counter), so list_by_author pages by keyset: offset N is `ord > N`.
CREATE TABLE authors (
    author   text PRIMARY KEY,
    versions bigint NOT NULL
);
CREATE TABLE version_authors (
    author      text NOT NULL,
    ord         bigint NOT NULL,
    version_ord bigint NOT NULL,                    -- versions (ord)
    PRIMARY KEY (author, ord)
);

-- Which packages each version depends on (plain and renamed, each package once): the edges
-- a resolution's prefetch follows in one recursive query.
CREATE TABLE dependencies (
    version_ord bigint NOT NULL,                    -- versions (ord)
    package_key text NOT NULL,                      -- packages (key), maybe not registered yet
    PRIMARY KEY (version_ord, package_key)
);

CREATE TABLE downloads (
    version_ord bigint NOT NULL REFERENCES versions (ord),
    day         text NOT NULL,                      -- YYYY-MM-DD, UTC
    count       bigint NOT NULL,
    PRIMARY KEY (version_ord, day)
);

CREATE TABLE events (
    seq  bigint PRIMARY KEY,                        -- the `event` counter: 1, 2, 3, ... no gaps
    at   text NOT NULL,                             -- RFC 3339
    kind text NOT NULL                              -- marketplace-registry-encoding's row
);

CREATE TABLE users (
    name       text PRIMARY KEY,
    admin      boolean NOT NULL,
    created_at text NOT NULL
);

CREATE TABLE tokens (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         text NOT NULL UNIQUE,
    hash       bytea NOT NULL UNIQUE,               -- SHA-256 of the secret, never the secret
    "user"     text NOT NULL REFERENCES users (name),
    name       text NOT NULL,
    scopes     text NOT NULL,                       -- comma-separated
    pattern    text,                                -- every package when NULL
    created_at text NOT NULL,
    expires_at text,
    revoked_at text
);
CREATE INDEX tokens_by_user ON tokens ("user", seq);

CREATE TABLE owners (
    target  text NOT NULL,                          -- OwnerTarget::canonical()
    kind    text NOT NULL,                          -- package | namespace
    spelled text NOT NULL,
    "user"  text NOT NULL REFERENCES users (name),
    PRIMARY KEY (target, "user")
);
CREATE INDEX owners_by_user ON owners ("user", target);

CREATE TABLE user_keys (
    key_id text PRIMARY KEY,
    "user" text NOT NULL REFERENCES users (name)
);
CREATE INDEX user_keys_by_user ON user_keys ("user", key_id);
