-- Schema version 4: accounts of a shared marketplace (marketplace_core::AccountStore): users,
-- API tokens (only the SHA-256 of each secret is kept), owners of packages and namespaces, and
-- the signing keys bound to users.
CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    admin      INTEGER NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE tokens (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    hash       BLOB NOT NULL UNIQUE,
    user       TEXT NOT NULL REFERENCES users(name),
    -- The holder's label for it.
    name       TEXT NOT NULL,
    -- Comma-separated: publish-new,publish-update,yank,owners,admin.
    scopes     TEXT NOT NULL,
    -- A package pattern (`acme/*`, `web-*`, `acme/web`); every package when NULL.
    pattern    TEXT,
    -- RFC 3339.
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);
CREATE INDEX tokens_by_user ON tokens(user, seq);

CREATE TABLE owners (
    -- OwnerTarget::canonical(): `package:acme/web`, `namespace:acme`.
    target  TEXT NOT NULL,
    -- The target as first spelled: `package` or `namespace`, and the name.
    kind    TEXT NOT NULL,
    spelled TEXT NOT NULL,
    user    TEXT NOT NULL REFERENCES users(name),
    PRIMARY KEY (target, user)
) WITHOUT ROWID;
CREATE INDEX owners_by_user ON owners(user, target);

CREATE TABLE user_keys (
    key_id TEXT PRIMARY KEY,
    user   TEXT NOT NULL REFERENCES users(name)
) WITHOUT ROWID;
CREATE INDEX user_keys_by_user ON user_keys(user, key_id);
