//! `AccountStore` on the registry's database: users, tokens, owners and key bindings in the
//! tables of migration 4, each write one transaction on the writer connection.

use async_trait::async_trait;
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    AccountStore, Claim, Error, KeyId, OwnerTarget, PackagePattern, Result, TokenHash, TokenRecord,
    User, UserName,
};
use marketplace_registry_encoding as encoding;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};

use crate::SqliteRegistry;
use crate::queries::{At, QResult, corrupt, format_time, parse_time};

fn require_user(conn: &Connection, location: &str, user: &UserName) -> QResult<()> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM users WHERE name = ?1")
        .and_then(|mut s| s.query_row([user.as_str()], |r| r.get(0)).optional())
        .at(location)?;
    match found {
        Some(_) => Ok(()),
        None => Err(Error::not_found(format!("user {user}")).into()),
    }
}

fn user_row(location: &str, row: &Row<'_>) -> QResult<User> {
    let name: String = row.get(0).at(location)?;
    let admin: bool = row.get(1).at(location)?;
    let created: String = row.get(2).at(location)?;
    let name = UserName::new(&name).map_err(|e| corrupt(location, "user name", e))?;
    let mut user = User::new(name, admin);
    user.created_at = parse_time(location, &created)?;
    Ok(user)
}

const TOKEN_COLUMNS: &str =
    "id, user, name, scopes, pattern, created_at, expires_at, revoked_at FROM tokens";

fn token_row(location: &str, row: &Row<'_>) -> QResult<TokenRecord> {
    let text = |i: usize| row.get::<_, String>(i).at(location);
    let optional = |i: usize| row.get::<_, Option<String>>(i).at(location);
    let bad = |what: &str, e: Error| corrupt(location, what, e);
    let user = UserName::new(&text(1)?).map_err(|e| bad("token user", e))?;
    let scopes =
        encoding::decode_scopes(&text(3)?).map_err(|e| corrupt(location, "token scopes", e))?;
    let pattern = optional(4)?
        .map(|p| PackagePattern::new(&p))
        .transpose()
        .map_err(|e| bad("token pattern", e))?;
    let time = |t: Option<String>| t.map(|t| parse_time(location, &t)).transpose();
    let mut token = TokenRecord::new(text(0)?, user, &text(2)?, scopes)
        .map_err(|e| bad("token", e))?
        .with_pattern(pattern)
        .with_expiry(time(optional(6)?)?);
    token.created_at = parse_time(location, &text(5)?)?;
    token.revoked_at = time(optional(7)?)?;
    Ok(token)
}

fn owner_target(location: &str, kind: &str, spelled: &str) -> QResult<OwnerTarget> {
    encoding::decode_owner_target(kind, spelled).map_err(|e| corrupt(location, "owner target", e))
}

fn owners(conn: &Connection, location: &str, target: &str) -> QResult<Vec<UserName>> {
    let names: Vec<String> = conn
        .prepare_cached("SELECT user FROM owners WHERE target = ?1 ORDER BY user")
        .and_then(|mut s| {
            s.query_map([target], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .at(location)?;
    names
        .iter()
        .map(|n| UserName::new(n).map_err(|e| corrupt(location, "owner", e)))
        .collect()
}

fn insert_owner(
    conn: &Connection,
    location: &str,
    target: &OwnerTarget,
    user: &UserName,
) -> QResult<()> {
    let (kind, spelled) = encoding::encode_owner_target(target);
    conn.prepare_cached(
        "INSERT OR IGNORE INTO owners (target, kind, spelled, user) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![target.canonical(), kind, spelled, user.as_str()]))
    .at(location)?;
    Ok(())
}

#[async_trait]
impl AccountStore for SqliteRegistry {
    async fn create_user(&self, user: User) -> Result<()> {
        self.write(format!("create user {}", user.name), move |tx, location| {
            let inserted = tx
                .prepare_cached("INSERT INTO users (name, admin, created_at) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| {
                    s.execute(params![
                        user.name.as_str(),
                        user.admin,
                        format_time(user.created_at)
                    ])
                });
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                    Err(Error::already_exists(format!("user {}", user.name)).into())
                }
                Err(e) => Err(e).at(location),
            }
        })
        .await
    }

    async fn user(&self, name: &UserName) -> Result<Option<User>> {
        let name = name.clone();
        self.read(format!("read user {name}"), move |conn, location| {
            let mut statement = conn
                .prepare_cached("SELECT name, admin, created_at FROM users WHERE name = ?1")
                .at(location)?;
            let mut rows = statement.query([name.as_str()]).at(location)?;
            match rows.next().at(location)? {
                Some(row) => user_row(location, row).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn users(&self) -> Result<Vec<User>> {
        self.read("list users".to_owned(), |conn, location| {
            let mut statement = conn
                .prepare_cached("SELECT name, admin, created_at FROM users ORDER BY name")
                .at(location)?;
            let mut rows = statement.query([]).at(location)?;
            let mut users = Vec::new();
            while let Some(row) = rows.next().at(location)? {
                users.push(user_row(location, row)?);
            }
            Ok(users)
        })
        .await
    }

    async fn create_token(&self, token: TokenRecord, hash: TokenHash) -> Result<()> {
        let operation = format!("create token {} of {}", token.id, token.user);
        self.write(operation, move |tx, location| {
            require_user(tx, location, &token.user)?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO tokens (id, hash, user, name, scopes, pattern, created_at, \
                     expires_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        token.id,
                        hash.0.as_slice(),
                        token.user.as_str(),
                        token.name,
                        encoding::encode_scopes(&token.scopes),
                        token.pattern.as_ref().map(PackagePattern::as_str),
                        format_time(token.created_at),
                        token.expires_at.map(format_time),
                        token.revoked_at.map(format_time),
                    ])
                });
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                    Err(Error::already_exists(format!("token {}", token.id)).into())
                }
                Err(e) => Err(e).at(location),
            }
        })
        .await
    }

    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>> {
        let hash = *hash;
        self.read("look a token up".to_owned(), move |conn, location| {
            let sql = format!("SELECT {TOKEN_COLUMNS} WHERE hash = ?1");
            let mut statement = conn.prepare_cached(&sql).at(location)?;
            let mut rows = statement.query([hash.0.as_slice()]).at(location)?;
            match rows.next().at(location)? {
                Some(row) => token_row(location, row).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn tokens(&self, user: &UserName) -> Result<Vec<TokenRecord>> {
        let user = user.clone();
        self.read(
            format!("list the tokens of {user}"),
            move |conn, location| {
                let sql = format!("SELECT {TOKEN_COLUMNS} WHERE user = ?1 ORDER BY seq");
                let mut statement = conn.prepare_cached(&sql).at(location)?;
                let mut rows = statement.query([user.as_str()]).at(location)?;
                let mut tokens = Vec::new();
                while let Some(row) = rows.next().at(location)? {
                    tokens.push(token_row(location, row)?);
                }
                Ok(tokens)
            },
        )
        .await
    }

    async fn revoke_token(
        &self,
        user: &UserName,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<TokenRecord> {
        let (user, id) = (user.clone(), id.to_owned());
        self.write(format!("revoke token {id}"), move |tx, location| {
            tx.prepare_cached(
                "UPDATE tokens SET revoked_at = ?3 \
                 WHERE user = ?1 AND id = ?2 AND revoked_at IS NULL",
            )
            .and_then(|mut s| s.execute(params![user.as_str(), id, format_time(at)]))
            .at(location)?;
            let sql = format!("SELECT {TOKEN_COLUMNS} WHERE user = ?1 AND id = ?2");
            let mut statement = tx.prepare_cached(&sql).at(location)?;
            let mut rows = statement.query(params![user.as_str(), id]).at(location)?;
            match rows.next().at(location)? {
                Some(row) => token_row(location, row),
                None => Err(Error::not_found(format!("token {id} of {user}")).into()),
            }
        })
        .await
    }

    async fn owners(&self, target: &OwnerTarget) -> Result<Vec<UserName>> {
        let key = target.canonical();
        self.read(
            format!("list the owners of {target}"),
            move |conn, location| owners(conn, location, &key),
        )
        .await
    }

    async fn claim(&self, target: &OwnerTarget, user: &UserName) -> Result<Claim> {
        let (target, user) = (target.clone(), user.clone());
        self.write(format!("claim {target} for {user}"), move |tx, location| {
            require_user(tx, location, &user)?;
            let current = owners(tx, location, &target.canonical())?;
            if current.contains(&user) {
                return Ok(Claim::AlreadyOwner);
            }
            if !current.is_empty() {
                return Ok(Claim::OwnedByOthers);
            }
            insert_owner(tx, location, &target, &user)?;
            Ok(Claim::Claimed)
        })
        .await
    }

    async fn add_owner(&self, target: &OwnerTarget, user: &UserName) -> Result<()> {
        let (target, user) = (target.clone(), user.clone());
        self.write(
            format!("add {user} to the owners of {target}"),
            move |tx, location| {
                require_user(tx, location, &user)?;
                insert_owner(tx, location, &target, &user)
            },
        )
        .await
    }

    async fn remove_owner(
        &self,
        target: &OwnerTarget,
        user: &UserName,
        keep_one: bool,
    ) -> Result<()> {
        let (target, user) = (target.clone(), user.clone());
        let operation = format!("remove {user} from the owners of {target}");
        self.write(operation, move |tx, location| {
            let key = target.canonical();
            let current = owners(tx, location, &key)?;
            if !current.contains(&user) {
                return Err(Error::not_found(format!("{user} as an owner of {target}")).into());
            }
            if keep_one && current.len() == 1 {
                return Err(Error::invalid(
                    "owner",
                    user.as_str(),
                    format!("is the last owner of {target}: add another owner first"),
                )
                .into());
            }
            tx.prepare_cached("DELETE FROM owners WHERE target = ?1 AND user = ?2")
                .and_then(|mut s| s.execute(params![key, user.as_str()]))
                .at(location)?;
            Ok(())
        })
        .await
    }

    async fn owned_by(&self, user: &UserName) -> Result<Vec<OwnerTarget>> {
        let user = user.clone();
        self.read(format!("list what {user} owns"), move |conn, location| {
            let rows: Vec<(String, String)> = conn
                .prepare_cached("SELECT kind, spelled FROM owners WHERE user = ?1 ORDER BY target")
                .and_then(|mut s| {
                    s.query_map([user.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<_>>()
                })
                .at(location)?;
            rows.iter()
                .map(|(kind, spelled)| owner_target(location, kind, spelled))
                .collect()
        })
        .await
    }

    async fn bind_key(&self, user: &UserName, key: &KeyId) -> Result<()> {
        let (user, key) = (user.clone(), *key);
        self.write(format!("bind key {key} to {user}"), move |tx, location| {
            require_user(tx, location, &user)?;
            let holder: Option<String> = tx
                .prepare_cached("SELECT user FROM user_keys WHERE key_id = ?1")
                .and_then(|mut s| s.query_row([key.to_string()], |r| r.get(0)).optional())
                .at(location)?;
            match holder {
                Some(holder) if holder == user.as_str() => Ok(()),
                Some(holder) => {
                    Err(Error::already_exists(format!("key {key} (bound to user {holder})")).into())
                }
                None => {
                    tx.prepare_cached("INSERT INTO user_keys (key_id, user) VALUES (?1, ?2)")
                        .and_then(|mut s| s.execute(params![key.to_string(), user.as_str()]))
                        .at(location)?;
                    Ok(())
                }
            }
        })
        .await
    }

    async fn key_user(&self, key: &KeyId) -> Result<Option<UserName>> {
        let key = *key;
        self.read(
            format!("find the user of key {key}"),
            move |conn, location| {
                let holder: Option<String> = conn
                    .prepare_cached("SELECT user FROM user_keys WHERE key_id = ?1")
                    .and_then(|mut s| s.query_row([key.to_string()], |r| r.get(0)).optional())
                    .at(location)?;
                holder
                    .map(|h| UserName::new(&h).map_err(|e| corrupt(location, "key user", e)))
                    .transpose()
            },
        )
        .await
    }

    async fn keys_of(&self, user: &UserName) -> Result<Vec<KeyId>> {
        let user = user.clone();
        self.read(format!("list the keys of {user}"), move |conn, location| {
            let ids: Vec<String> = conn
                .prepare_cached("SELECT key_id FROM user_keys WHERE user = ?1 ORDER BY key_id")
                .and_then(|mut s| {
                    s.query_map([user.as_str()], |r| r.get(0))?
                        .collect::<rusqlite::Result<_>>()
                })
                .at(location)?;
            ids.iter()
                .map(|id| id.parse().map_err(|e| corrupt(location, "key id", e)))
                .collect()
        })
        .await
    }

    async fn unbind_key(&self, user: &UserName, key: &KeyId) -> Result<()> {
        let (user, key) = (user.clone(), *key);
        self.write(
            format!("unbind key {key} from {user}"),
            move |tx, location| {
                let removed = tx
                    .prepare_cached("DELETE FROM user_keys WHERE key_id = ?1 AND user = ?2")
                    .and_then(|mut s| s.execute(params![key.to_string(), user.as_str()]))
                    .at(location)?;
                if removed == 0 {
                    return Err(Error::not_found(format!("key {key} of {user}")).into());
                }
                Ok(())
            },
        )
        .await
    }
}
