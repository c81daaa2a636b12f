//! `mkt token`, `mkt owner`, `mkt key` and `mkt user`: the accounts of a served marketplace,
//! managed on its home by its operator (who acts for every user: the first admin's token is
//! made here).

use marketplace_client::backends::remote::Remote;
use marketplace_core::time::Duration;
use marketplace_core::{Key, KeyId, Name, OwnerTarget, PackagePattern, PublicKey, Scope, UserName};
use serde_json::json;

use crate::home::Home;
use crate::output::{Output, plain};
use crate::{
    CliError, CliResult, KeyCommand, OwnerCommand, OwnerTargetArgs, TokenCommand, UserCommand, exit,
};

/// The scopes of a token made without `--scope`: everything but administration.
const DEFAULT_SCOPES: [Scope; 4] = [
    Scope::PublishNew,
    Scope::PublishUpdate,
    Scope::Yank,
    Scope::Owners,
];

fn user_name(text: &str) -> CliResult<UserName> {
    UserName::new(text).map_err(|e| {
        CliError::usage(e.to_string())
            .with_hint("a user name is 1–39 lowercase letters, digits and '-'")
    })
}

/// The user `name`, created when missing (an admin when `admin`); says so when it is.
async fn ensure_user(home: &Home, name: &UserName, admin: bool, out: &Output) -> CliResult {
    let client = &home.client;
    match client.user(name).await? {
        Some(user) if admin && !user.admin => Err(CliError::usage(format!(
            "{name} is not an admin, so no token of theirs may hold the admin scope"
        ))
        .with_hint("use another --user, or leave out --scope admin")),
        Some(_) => Ok(()),
        None => {
            client.create_user(name.clone(), admin).await?;
            out.note(&format!(
                "created user {name}{}",
                if admin { " (admin)" } else { "" }
            ));
            Ok(())
        }
    }
}

/// An existing user, or `NotFound` naming how to make one.
async fn existing_user(home: &Home, name: &UserName) -> CliResult {
    if home.client.user(name).await?.is_some() {
        return Ok(());
    }
    Err(CliError {
        code: exit::NOT_FOUND,
        message: format!("no user {name} in this marketplace"),
        hint: Some(format!("add one with `mkt user add {name}`")),
    })
}

/// What `mkt token create` asks for, checked.
struct TokenAsk {
    name: String,
    scopes: Vec<Scope>,
    pattern: Option<PackagePattern>,
    expires_at: Option<marketplace_core::time::OffsetDateTime>,
}

fn token_ask(
    name: String,
    scopes: &[String],
    pattern: Option<String>,
    expires_in_days: Option<u32>,
) -> CliResult<TokenAsk> {
    let scopes = if scopes.is_empty() {
        DEFAULT_SCOPES.to_vec()
    } else {
        scopes
            .iter()
            .map(|s| s.parse::<Scope>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                CliError::usage(e.to_string())
                    .with_hint("scopes are publish-new, publish-update, yank, owners and admin")
            })?
    };
    let pattern = pattern
        .map(|p| PackagePattern::new(&p))
        .transpose()
        .map_err(|e| {
            CliError::usage(e.to_string())
                .with_hint("a pattern is a package (acme/web), acme/* or a prefix (web-*)")
        })?;
    let expires_at = match expires_in_days {
        Some(0) => {
            return Err(CliError::usage("--expires-in-days must be at least 1"));
        }
        Some(days) => Some(marketplace_core::now_seconds() + Duration::days(i64::from(days))),
        None => None,
    };
    marketplace_core::validate_token_name(&name).map_err(|e| CliError::usage(e.to_string()))?;
    Ok(TokenAsk {
        name,
        scopes,
        pattern,
        expires_at,
    })
}

/// A new token: alone on the first line (or as JSON), and a note of whose and what it is.
fn show_created(secret: &str, record: &marketplace_core::TokenRecord, out: &Output) -> CliResult {
    if out.is_json() {
        return out.json(&json!({ "token": secret, "record": record }));
    }
    // The token alone on the first line, for `TOKEN=$(mkt token create … | head -1)`.
    out.raw(&format!("{secret}\n"));
    out.note(&format!(
        "token {} of {}: {}; shown this once (only its hash is kept)",
        record.id,
        record.user,
        scope_list(&record.scopes)
    ));
    Ok(())
}

fn show_tokens(tokens: &[marketplace_core::TokenRecord], out: &Output) -> CliResult {
    if out.is_json() {
        return out.json(&tokens);
    }
    let now = marketplace_core::now_seconds();
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                plain(&t.name),
                scope_list(&t.scopes),
                t.pattern
                    .as_ref()
                    .map_or_else(|| "*".to_owned(), |p| p.as_str().to_owned()),
                match t.unusable_at(now) {
                    Some(why) => out.bad(why),
                    None => t.expires_at.map_or_else(
                        || out.good("active"),
                        |at| out.good(&format!("until {}", at.date())),
                    ),
                },
            ]
        })
        .collect();
    out.table(&["ID", "NAME", "SCOPES", "PACKAGES", "STATE"], &rows);
    Ok(())
}

fn show_revoked(record: &marketplace_core::TokenRecord, out: &Output) -> CliResult {
    out.line(format!(
        "revoked token {} ({}) of {}",
        record.id,
        plain(&record.name),
        record.user
    ));
    out.json(record)
}

pub(crate) async fn token(home: &Home, command: TokenCommand, out: &Output) -> CliResult {
    let client = &home.client;
    match command {
        TokenCommand::Create {
            name,
            user,
            scopes,
            pattern,
            expires_in_days,
        } => {
            let user = user_name(user.as_deref().unwrap_or(crate::DEFAULT_USER))?;
            let ask = token_ask(name, &scopes, pattern, expires_in_days)?;
            ensure_user(home, &user, ask.scopes.contains(&Scope::Admin), out).await?;
            let created = client
                .create_token(&user, &ask.name, ask.scopes, ask.pattern, ask.expires_at)
                .await?;
            show_created(&created.secret, &created.record, out)
        }
        TokenCommand::List { user } => {
            let user = user_name(user.as_deref().unwrap_or(crate::DEFAULT_USER))?;
            existing_user(home, &user).await?;
            show_tokens(&client.tokens(&user).await?, out)
        }
        TokenCommand::Revoke { id, user } => {
            let user = user_name(user.as_deref().unwrap_or(crate::DEFAULT_USER))?;
            let record = client
                .revoke_token(&user, &id)
                .await
                .map_err(|e| hint_if_missing(e, format!("see `mkt token list --user {user}`")))?;
            show_revoked(&record, out)
        }
    }
}

/// `mkt token` over a registry: the token's user's tokens (an admin's may name another user),
/// through the server's API.
pub(crate) async fn token_remote(
    remote: &Remote,
    command: TokenCommand,
    out: &Output,
) -> CliResult {
    let named = |user: &Option<String>| user.as_deref().map(user_name).transpose();
    match command {
        TokenCommand::Create {
            name,
            user,
            scopes,
            pattern,
            expires_in_days,
        } => {
            let user = named(&user)?;
            let ask = token_ask(name, &scopes, pattern, expires_in_days)?;
            let (secret, record) = remote
                .create_token(
                    user.as_ref(),
                    &ask.name,
                    &ask.scopes,
                    ask.pattern,
                    ask.expires_at,
                )
                .await?;
            show_created(&secret, &record, out)
        }
        TokenCommand::List { user } => {
            show_tokens(&remote.tokens(named(&user)?.as_ref()).await?, out)
        }
        TokenCommand::Revoke { id, user } => {
            let record = remote
                .revoke_token(&id, named(&user)?.as_ref())
                .await
                .map_err(|e| hint_if_missing(e, "see `mkt token list`".into()))?;
            show_revoked(&record, out)
        }
    }
}

/// `e` as a CLI error, with `hint` in place of the generic one (which speaks of packages)
/// when something was not found.
fn hint_if_missing(e: marketplace_core::Error, hint: String) -> CliError {
    rehint(e, marketplace_core::ErrorKind::NotFound, hint)
}

/// `e` as a CLI error, with `hint` in place of the generic one when `e` is of `kind`.
fn rehint(e: marketplace_core::Error, kind: marketplace_core::ErrorKind, hint: String) -> CliError {
    let is_kind = e.kind() == kind;
    let mut e = CliError::from(e);
    if is_kind {
        e.hint = Some(hint);
    }
    e
}

fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn owner_target(args: &OwnerTargetArgs) -> CliResult<OwnerTarget> {
    if args.namespace {
        let namespace = Name::new(&args.target).map_err(|e| CliError::usage(e.to_string()))?;
        return Ok(OwnerTarget::Namespace(namespace));
    }
    let package = args.target.parse().map_err(|e: marketplace_core::Error| {
        CliError::usage(e.to_string())
            .with_hint("name a package (acme/web), or a namespace with --namespace")
    })?;
    Ok(OwnerTarget::Package(package))
}

/// The owners of `target`: one per line (or a note that nobody owns it yet), or JSON.
fn show_owners(target: &OwnerTarget, owners: &[UserName], out: &Output) -> CliResult {
    if out.is_json() {
        return out.json(&json!({ "target": target.to_string(), "owners": owners }));
    }
    if owners.is_empty() {
        out.line(format!(
            "nobody owns {target} yet: its first publisher will"
        ));
    }
    for owner in owners {
        out.line(owner.as_str());
    }
    Ok(())
}

pub(crate) async fn owner(home: &Home, command: OwnerCommand, out: &Output) -> CliResult {
    let client = &home.client;
    let (target, users, add) = match command {
        OwnerCommand::List(args) => {
            let target = owner_target(&args)?;
            return show_owners(&target, &client.owners(&target).await?, out);
        }
        OwnerCommand::Add { target, users } => (owner_target(&target)?, users, true),
        OwnerCommand::Remove { target, users } => (owner_target(&target)?, users, false),
    };
    let users = users
        .iter()
        .map(|u| user_name(u))
        .collect::<CliResult<Vec<_>>>()?;
    // Every name checked first: nothing changes when one is wrong.
    for user in &users {
        if add {
            existing_user(home, user).await?;
        }
    }
    for user in &users {
        if add {
            client.add_owner(&target, user).await?;
            out.line(format!("{user} owns {target}"));
        } else {
            client.remove_owner(&target, user).await?;
            out.line(format!("{user} no longer owns {target}"));
        }
    }
    out.json(&json!({ "target": target.to_string(), "owners": client.owners(&target).await? }))
}

/// The public key `key` names: a key in the home's keys directory, or a PEM file.
async fn public_key(home: &Home, key: &str) -> CliResult<PublicKey> {
    let path = std::path::Path::new(key);
    if !home.key_path(key).is_file() && path.is_file() {
        let pem = std::fs::read_to_string(path).map_err(|e| CliError {
            code: exit::NOT_FOUND,
            message: format!("cannot read {}: {e}", path.display()),
            hint: None,
        })?;
        return Ok(match home.client.import_key_pem(&pem).await? {
            Key::Public(key) => key,
            Key::Private(pair) => pair.public_key,
        });
    }
    Ok(home.load_key(key).await?.public_key)
}

pub(crate) async fn key(home: &Home, command: KeyCommand, out: &Output) -> CliResult {
    let client = &home.client;
    match command {
        KeyCommand::Add { key, user } => {
            let user = user_name(user.as_deref().unwrap_or(crate::DEFAULT_USER))?;
            let public = public_key(home, &key).await?;
            ensure_user(home, &user, false, out).await?;
            client.register_key(&user, &public).await.map_err(|e| {
                rehint(
                    e,
                    marketplace_core::ErrorKind::AlreadyExists,
                    "a key belongs to one user: `mkt key revoke` it there, or make a new one with `mkt keygen`".into(),
                )
            })?;
            out.line(format!(
                "key {} is {user}'s: packages it signs can be published as theirs",
                public.key_id()
            ));
            out.json(&json!({ "user": user, "key_id": public.key_id() }))
        }
        KeyCommand::List { user } => {
            let user = user_name(user.as_deref().unwrap_or(crate::DEFAULT_USER))?;
            existing_user(home, &user).await?;
            let keys = client.keys_of(&user).await?;
            if out.is_json() {
                return out.json(&json!({ "user": user, "keys": keys }));
            }
            for key in keys {
                out.line(key.to_string());
            }
            Ok(())
        }
        KeyCommand::Revoke {
            key_id,
            user,
            reason,
        } => {
            let user = user_name(user.as_deref().unwrap_or(crate::DEFAULT_USER))?;
            let id: KeyId = key_id.parse().map_err(|e: marketplace_core::Error| {
                CliError::usage(e.to_string())
                    .with_hint("key ids are 32 hex digits; see `mkt key list`")
            })?;
            client
                .revoke_user_key(&user, &id, &reason)
                .await
                .map_err(|e| hint_if_missing(e, format!("see `mkt key list --user {user}`")))?;
            out.line(format!("revoked key {id} of {user}: {}", plain(&reason)));
            out.json(&json!({ "user": user, "key_id": id, "revoked": true }))
        }
    }
}

pub(crate) async fn user(home: &Home, command: UserCommand, out: &Output) -> CliResult {
    let client = &home.client;
    match command {
        UserCommand::Add { name, admin } => {
            let user = client
                .create_user(user_name(&name)?, admin)
                .await
                .map_err(|e| {
                    rehint(
                        e,
                        marketplace_core::ErrorKind::AlreadyExists,
                        "user names are unique: see `mkt user list`".into(),
                    )
                })?;
            out.line(format!(
                "added user {}{}",
                user.name,
                if admin { " (admin)" } else { "" }
            ));
            out.json(&user)
        }
        UserCommand::List => {
            let users = client.users().await?;
            if out.is_json() {
                return out.json(&users);
            }
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    vec![
                        u.name.to_string(),
                        if u.admin {
                            "admin".into()
                        } else {
                            String::new()
                        },
                        u.created_at.date().to_string(),
                    ]
                })
                .collect();
            out.table(&["USER", "ROLE", "SINCE"], &rows);
            Ok(())
        }
    }
}

/// `mkt owner` over a registry: the server's API, as the token's user.
pub(crate) async fn owner_remote(
    remote: &Remote,
    command: OwnerCommand,
    out: &Output,
) -> CliResult {
    let (target, users, add) = match command {
        OwnerCommand::List(args) => {
            let target = owner_target(&args)?;
            return show_owners(&target, &remote.owners(&target).await?, out);
        }
        OwnerCommand::Add { target, users } => (owner_target(&target)?, users, true),
        OwnerCommand::Remove { target, users } => (owner_target(&target)?, users, false),
    };
    let users = users
        .iter()
        .map(|u| user_name(u))
        .collect::<CliResult<Vec<_>>>()?;
    let owners = if add {
        remote.add_owners(&target, &users).await?
    } else {
        remote.remove_owners(&target, &users).await?
    };
    for user in &users {
        if add {
            out.line(format!("{user} owns {target}"));
        } else {
            out.line(format!("{user} no longer owns {target}"));
        }
    }
    out.json(&json!({ "target": target.to_string(), "owners": owners }))
}

/// `mkt key` over a registry: the token's user's own keys, through the server's API.
pub(crate) async fn key_remote(
    home: &Home,
    remote: &Remote,
    command: KeyCommand,
    out: &Output,
) -> CliResult {
    let me = remote.whoami().await?;
    let named = match &command {
        KeyCommand::Add { user, .. }
        | KeyCommand::List { user }
        | KeyCommand::Revoke { user, .. } => user.clone(),
    };
    if let Some(named) = named
        && user_name(&named)? != me
    {
        return Err(CliError::usage(format!(
            "over a registry, `mkt key` works on your own keys ({me}, the token's user), not {named}'s"
        ))
        .with_hint("drop --user, or run it on the server's home, whose operator acts for every user"));
    }
    match command {
        KeyCommand::Add { key, .. } => {
            let public = public_key(home, &key).await?;
            remote.add_key(&public).await.map_err(|e| {
                rehint(
                    e,
                    marketplace_core::ErrorKind::AlreadyExists,
                    "a key belongs to one user: `mkt key revoke` it there, or make a new one with `mkt keygen`".into(),
                )
            })?;
            out.line(format!(
                "key {} is {me}'s: packages it signs can be published as theirs",
                public.key_id()
            ));
            out.json(&json!({ "user": me, "key_id": public.key_id() }))
        }
        KeyCommand::List { .. } => {
            let keys = remote.my_keys().await?;
            if out.is_json() {
                return out.json(&json!({ "user": me, "keys": keys }));
            }
            for key in keys {
                out.line(key.to_string());
            }
            Ok(())
        }
        KeyCommand::Revoke { key_id, reason, .. } => {
            let id: KeyId = key_id.parse().map_err(|e: marketplace_core::Error| {
                CliError::usage(e.to_string())
                    .with_hint("key ids are 32 hex digits; see `mkt key list`")
            })?;
            remote
                .revoke_my_key(&id, &reason)
                .await
                .map_err(|e| hint_if_missing(e, "see `mkt key list`".into()))?;
            out.line(format!("revoked key {id} of {me}: {}", plain(&reason)));
            out.json(&json!({ "user": me, "key_id": id, "revoked": true }))
        }
    }
}
