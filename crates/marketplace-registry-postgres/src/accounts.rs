//! `AccountStore` on the registry's database: users, tokens, owners and key bindings, each
//! write one transaction. Writes that read before they decide (a claim, a key binding, the
//! last owner's removal) hold a transaction-scoped advisory lock on what they decide about,
//! so two servers deciding at once decide one after the other.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    AccountStore, Claim, Error, KeyId, OwnerTarget, PackagePattern, Result, TokenHash, TokenRecord,
    User, UserName,
};
use marketplace_registry_encoding as encoding;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use crate::PostgresRegistry;
use crate::queries::{At, QResult, column, corrupt, execute, format_time, parse_time, row, rows};

/// Serialises decisions about `subject` (an owner target or a key) until the transaction ends.
async fn decide_alone(tx: &impl GenericClient, location: &str, subject: &str) -> QResult<()> {
    row(
        tx,
        location,
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&subject],
    )
    .await?;
    Ok(())
}

async fn require_user(client: &impl GenericClient, location: &str, user: &UserName) -> QResult<()> {
    match row(
        client,
        location,
        "SELECT 1 FROM users WHERE name = $1",
        &[&user.as_str()],
    )
    .await?
    {
        Some(_) => Ok(()),
        None => Err(Error::not_found(format!("user {user}")).into()),
    }
}

/// Whether `result` failed on a unique index (another writer got there first).
fn is_unique_violation<T>(result: &std::result::Result<T, tokio_postgres::Error>) -> bool {
    matches!(result, Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION))
}

fn user_row(location: &str, found: &Row) -> QResult<User> {
    let name: String = column(location, found, 0)?;
    let name = UserName::new(&name).map_err(|e| corrupt(location, "user name", e))?;
    let mut user = User::new(name, column(location, found, 1)?);
    user.created_at = parse_time(location, &column::<String>(location, found, 2)?)?;
    Ok(user)
}

const TOKEN_COLUMNS: &str =
    "id, \"user\", name, scopes, pattern, created_at, expires_at, revoked_at FROM tokens";

fn token_row(location: &str, found: &Row) -> QResult<TokenRecord> {
    let text = |i: usize| column::<String>(location, found, i);
    let optional = |i: usize| column::<Option<String>>(location, found, i);
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

async fn owners(
    client: &impl GenericClient,
    location: &str,
    target: &str,
) -> QResult<Vec<UserName>> {
    rows(
        client,
        location,
        "SELECT \"user\" FROM owners WHERE target = $1 ORDER BY \"user\"",
        &[&target],
    )
    .await?
    .iter()
    .map(|found| {
        let name: String = column(location, found, 0)?;
        UserName::new(&name).map_err(|e| corrupt(location, "owner", e))
    })
    .collect()
}

async fn insert_owner(
    tx: &impl GenericClient,
    location: &str,
    target: &OwnerTarget,
    user: &UserName,
) -> QResult<()> {
    let (kind, spelled) = encoding::encode_owner_target(target);
    execute(
        tx,
        location,
        "INSERT INTO owners (target, kind, spelled, \"user\") VALUES ($1, $2, $3, $4)
         ON CONFLICT (target, \"user\") DO NOTHING",
        &[&target.canonical(), &kind, &spelled, &user.as_str()],
    )
    .await?;
    Ok(())
}

async fn key_holder(
    client: &impl GenericClient,
    location: &str,
    key: &KeyId,
) -> QResult<Option<String>> {
    row(
        client,
        location,
        "SELECT \"user\" FROM user_keys WHERE key_id = $1",
        &[&key.to_string()],
    )
    .await?
    .map(|found| column(location, &found, 0))
    .transpose()
}

#[async_trait]
impl AccountStore for PostgresRegistry {
    async fn create_user(&self, user: User) -> Result<()> {
        self.write(
            || format!("create user {}", user.name),
            async |tx, location| {
                let statement = tx
                    .prepare_cached(
                        "INSERT INTO users (name, admin, created_at) VALUES ($1, $2, $3)",
                    )
                    .await
                    .at(location)?;
                let created = format_time(user.created_at);
                let inserted = tx
                    .execute(&statement, &[&user.name.as_str(), &user.admin, &created])
                    .await;
                if is_unique_violation(&inserted) {
                    return Err(Error::already_exists(format!("user {}", user.name)).into());
                }
                inserted.at(location).map(drop)
            },
        )
        .await
    }

    async fn user(&self, name: &UserName) -> Result<Option<User>> {
        self.read(
            || format!("read user {name}"),
            async |client, location| {
                row(
                    client,
                    location,
                    "SELECT name, admin, created_at FROM users WHERE name = $1",
                    &[&name.as_str()],
                )
                .await?
                .map(|found| user_row(location, &found))
                .transpose()
            },
        )
        .await
    }

    async fn users(&self) -> Result<Vec<User>> {
        self.read(
            || "list users".to_owned(),
            async |client, location| {
                rows(
                    client,
                    location,
                    "SELECT name, admin, created_at FROM users ORDER BY name",
                    &[],
                )
                .await?
                .iter()
                .map(|found| user_row(location, found))
                .collect()
            },
        )
        .await
    }

    async fn create_token(&self, token: TokenRecord, hash: TokenHash) -> Result<()> {
        self.write(
            || format!("create token {} of {}", token.id, token.user),
            async |tx, location| {
                require_user(tx, location, &token.user).await?;
                let statement = tx
                    .prepare_cached(
                        "INSERT INTO tokens (id, hash, \"user\", name, scopes, pattern, created_at,
                         expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .await
                    .at(location)?;
                let inserted = tx
                    .execute(
                        &statement,
                        &[
                            &token.id,
                            &hash.0.as_slice(),
                            &token.user.as_str(),
                            &token.name,
                            &encoding::encode_scopes(&token.scopes),
                            &token.pattern.as_ref().map(PackagePattern::as_str),
                            &format_time(token.created_at),
                            &token.expires_at.map(format_time),
                            &token.revoked_at.map(format_time),
                        ],
                    )
                    .await;
                if is_unique_violation(&inserted) {
                    return Err(Error::already_exists(format!("token {}", token.id)).into());
                }
                inserted.at(location).map(drop)
            },
        )
        .await
    }

    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>> {
        self.read(
            || "look a token up".to_owned(),
            async |client, location| {
                let sql = format!("SELECT {TOKEN_COLUMNS} WHERE hash = $1");
                row(client, location, &sql, &[&hash.0.as_slice()])
                    .await?
                    .map(|found| token_row(location, &found))
                    .transpose()
            },
        )
        .await
    }

    async fn tokens(&self, user: &UserName) -> Result<Vec<TokenRecord>> {
        self.read(
            || format!("list the tokens of {user}"),
            async |client, location| {
                let sql = format!("SELECT {TOKEN_COLUMNS} WHERE \"user\" = $1 ORDER BY seq");
                rows(client, location, &sql, &[&user.as_str()])
                    .await?
                    .iter()
                    .map(|found| token_row(location, found))
                    .collect()
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
        self.write(
            || format!("revoke token {id}"),
            async |tx, location| {
                execute(
                    tx,
                    location,
                    "UPDATE tokens SET revoked_at = $3
                     WHERE \"user\" = $1 AND id = $2 AND revoked_at IS NULL",
                    &[&user.as_str(), &id, &format_time(at)],
                )
                .await?;
                let sql = format!("SELECT {TOKEN_COLUMNS} WHERE \"user\" = $1 AND id = $2");
                match row(tx, location, &sql, &[&user.as_str(), &id]).await? {
                    Some(found) => token_row(location, &found),
                    None => Err(Error::not_found(format!("token {id} of {user}")).into()),
                }
            },
        )
        .await
    }

    async fn owners(&self, target: &OwnerTarget) -> Result<Vec<UserName>> {
        self.read(
            || format!("list the owners of {target}"),
            async |client, location| owners(client, location, &target.canonical()).await,
        )
        .await
    }

    async fn claim(&self, target: &OwnerTarget, user: &UserName) -> Result<Claim> {
        self.write(
            || format!("claim {target} for {user}"),
            async |tx, location| {
                require_user(tx, location, user).await?;
                let key = target.canonical();
                decide_alone(tx, location, &key).await?;
                let current = owners(tx, location, &key).await?;
                if current.contains(user) {
                    return Ok(Claim::AlreadyOwner);
                }
                if !current.is_empty() {
                    return Ok(Claim::OwnedByOthers);
                }
                insert_owner(tx, location, target, user).await?;
                Ok(Claim::Claimed)
            },
        )
        .await
    }

    async fn add_owner(&self, target: &OwnerTarget, user: &UserName) -> Result<()> {
        self.write(
            || format!("add {user} to the owners of {target}"),
            async |tx, location| {
                require_user(tx, location, user).await?;
                decide_alone(tx, location, &target.canonical()).await?;
                insert_owner(tx, location, target, user).await
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
        self.write(
            || format!("remove {user} from the owners of {target}"),
            async |tx, location| {
                let key = target.canonical();
                decide_alone(tx, location, &key).await?;
                let current = owners(tx, location, &key).await?;
                if !current.contains(user) {
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
                execute(
                    tx,
                    location,
                    "DELETE FROM owners WHERE target = $1 AND \"user\" = $2",
                    &[&key, &user.as_str()],
                )
                .await?;
                Ok(())
            },
        )
        .await
    }

    async fn owned_by(&self, user: &UserName) -> Result<Vec<OwnerTarget>> {
        self.read(
            || format!("list what {user} owns"),
            async |client, location| {
                rows(
                    client,
                    location,
                    "SELECT kind, spelled FROM owners WHERE \"user\" = $1 ORDER BY target",
                    &[&user.as_str()],
                )
                .await?
                .iter()
                .map(|found| {
                    let kind: String = column(location, found, 0)?;
                    let spelled: String = column(location, found, 1)?;
                    owner_target(location, &kind, &spelled)
                })
                .collect()
            },
        )
        .await
    }

    async fn bind_key(&self, user: &UserName, key: &KeyId) -> Result<()> {
        self.write(
            || format!("bind key {key} to {user}"),
            async |tx, location| {
                require_user(tx, location, user).await?;
                decide_alone(tx, location, &format!("key:{key}")).await?;
                match key_holder(tx, location, key).await? {
                    Some(holder) if holder == user.as_str() => Ok(()),
                    Some(holder) => Err(Error::already_exists(format!(
                        "key {key} (bound to user {holder})"
                    ))
                    .into()),
                    None => {
                        execute(
                            tx,
                            location,
                            "INSERT INTO user_keys (key_id, \"user\") VALUES ($1, $2)",
                            &[&key.to_string(), &user.as_str()],
                        )
                        .await?;
                        Ok(())
                    }
                }
            },
        )
        .await
    }

    async fn key_user(&self, key: &KeyId) -> Result<Option<UserName>> {
        self.read(
            || format!("find the user of key {key}"),
            async |client, location| {
                key_holder(client, location, key)
                    .await?
                    .map(|h| UserName::new(&h).map_err(|e| corrupt(location, "key user", e)))
                    .transpose()
            },
        )
        .await
    }

    async fn keys_of(&self, user: &UserName) -> Result<Vec<KeyId>> {
        self.read(
            || format!("list the keys of {user}"),
            async |client, location| {
                rows(
                    client,
                    location,
                    "SELECT key_id FROM user_keys WHERE \"user\" = $1 ORDER BY key_id",
                    &[&user.as_str()],
                )
                .await?
                .iter()
                .map(|found| {
                    let id: String = column(location, found, 0)?;
                    id.parse().map_err(|e| corrupt(location, "key id", e))
                })
                .collect()
            },
        )
        .await
    }

    async fn unbind_key(&self, user: &UserName, key: &KeyId) -> Result<()> {
        self.write(
            || format!("unbind key {key} from {user}"),
            async |tx, location| {
                let removed = execute(
                    tx,
                    location,
                    "DELETE FROM user_keys WHERE key_id = $1 AND \"user\" = $2",
                    &[&key.to_string(), &user.as_str()],
                )
                .await?;
                if removed == 0 {
                    return Err(Error::not_found(format!("key {key} of {user}")).into());
                }
                Ok(())
            },
        )
        .await
    }
}
