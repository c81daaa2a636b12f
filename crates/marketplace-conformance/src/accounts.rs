//! The `AccountStore` suite: users, tokens, owners and key bindings.

use futures::future::join_all;
use marketplace_core::time::{Duration, OffsetDateTime};
use marketplace_core::{
    AccountStore, Claim, ErrorKind, KeyId, Name, OwnerTarget, PackagePattern, Scope, TokenHash,
    TokenRecord, User, UserName, now_seconds,
};

use crate::Capabilities;
use crate::report::{CheckResult, Context, SuiteReport, ensure, ensure_eq, expect_kind};

/// Runs every `AccountStore` check against `accounts`, which must be empty when the suite
/// starts.
///
/// Checks: users (duplicates refused, listing by name), tokens found by the hash of their
/// secret only and round-tripped whole (scopes, pattern, times), revocation (once, by its user
/// only), owners (claims, canonical targets, the last owner kept, packages and namespaces
/// apart), concurrent claims of one target with exactly one winner, and key bindings (one user
/// per key).
pub async fn accounts_suite(accounts: &dyn AccountStore, caps: &Capabilities) -> SuiteReport {
    let a = accounts;
    let mut report = SuiteReport::new("accounts", caps);
    report.run("users_create_and_read", users(a)).await;
    report.run("tokens_found_by_hash_only", tokens(a)).await;
    report.run("revoke_token_once_by_its_user", revoke(a)).await;
    report.run("owners_claim_add_remove", owners(a)).await;
    let n = caps.concurrent_tasks.max(2);
    report
        .run("concurrent_claims_have_one_winner", concurrent_claims(a, n))
        .await;
    report.run("keys_bind_to_one_user", keys(a)).await;
    report
}

fn user(name: &str) -> UserName {
    UserName::new(name).expect("the kit's user names are valid")
}

async fn create(a: &dyn AccountStore, name: &str, admin: bool) -> Result<UserName, String> {
    let name = user(name);
    a.create_user(User::new(name.clone(), admin))
        .await
        .ctx(format!("create user {name}"))?;
    Ok(name)
}

fn token(id: &str, user: &UserName, scopes: &[Scope]) -> TokenRecord {
    TokenRecord::new(
        id.to_owned(),
        user.clone(),
        "kit token",
        scopes.iter().copied(),
    )
    .expect("the kit's tokens are valid")
}

fn package_target(s: &str) -> OwnerTarget {
    OwnerTarget::Package(s.parse().expect("the kit's package names are valid"))
}

async fn users(a: &dyn AccountStore) -> CheckResult {
    let zed = create(a, "u-zed", false).await?;
    let amy = create(a, "u-amy", true).await?;
    let read = a.user(&amy).await.ctx("user")?;
    ensure!(
        read.as_ref().is_some_and(|u| u.admin && u.name == amy),
        "the user reads back as created: {read:?}"
    );
    expect_kind(
        a.create_user(User::new(amy.clone(), false)).await,
        ErrorKind::AlreadyExists,
        "creating a user twice",
    )?;
    let again = a.user(&amy).await.ctx("user")?;
    ensure_eq!(again, read, "a refused duplicate changes nothing");
    ensure_eq!(
        a.user(&user("u-nobody")).await.ctx("user")?,
        None,
        "a missing user"
    );
    let names: Vec<UserName> = a
        .users()
        .await
        .ctx("users")?
        .into_iter()
        .map(|u| u.name)
        .filter(|n| n.as_str().starts_with("u-"))
        .collect();
    ensure_eq!(names, vec![amy, zed], "users are listed by name");
    Ok(())
}

async fn tokens(a: &dyn AccountStore) -> CheckResult {
    let tom = create(a, "t-tom", false).await?;
    let expires = now_seconds() + Duration::days(30);
    let full = token(
        "00000000000000a1",
        &tom,
        &[Scope::Yank, Scope::PublishUpdate],
    )
    .with_pattern(Some(PackagePattern::new("acme/*").ctx("pattern")?))
    .with_expiry(Some(expires));
    let plain = token("00000000000000a2", &tom, &[Scope::Admin]);
    a.create_token(full.clone(), TokenHash::of("secret-one"))
        .await
        .ctx("create_token")?;
    a.create_token(plain.clone(), TokenHash::of("secret-two"))
        .await
        .ctx("create_token")?;
    ensure_eq!(
        a.token_by_hash(&TokenHash::of("secret-one"))
            .await
            .ctx("token_by_hash")?,
        Some(full.clone()),
        "a token reads back whole by the hash of its secret"
    );
    ensure_eq!(
        a.token_by_hash(&TokenHash::of("secret-three"))
            .await
            .ctx("token_by_hash")?,
        None,
        "an unknown secret finds nothing"
    );
    ensure_eq!(
        a.tokens(&tom).await.ctx("tokens")?,
        vec![full.clone(), plain.clone()],
        "a user's tokens, oldest first"
    );
    expect_kind(
        a.create_token(
            token("00000000000000a1", &tom, &[Scope::Yank]),
            TokenHash::of("x"),
        )
        .await,
        ErrorKind::AlreadyExists,
        "a token with a taken id",
    )?;
    expect_kind(
        a.create_token(
            token("00000000000000a3", &tom, &[Scope::Yank]),
            TokenHash::of("secret-one"),
        )
        .await,
        ErrorKind::AlreadyExists,
        "a token with a taken hash",
    )?;
    expect_kind(
        a.create_token(
            token("00000000000000a4", &user("t-ghost"), &[Scope::Yank]),
            TokenHash::of("ghost"),
        )
        .await,
        ErrorKind::NotFound,
        "a token of a missing user",
    )?;
    ensure_eq!(
        a.tokens(&tom).await.ctx("tokens")?.len(),
        2,
        "refused tokens change nothing"
    );
    ensure_eq!(
        a.token_by_hash(&TokenHash::of("ghost"))
            .await
            .ctx("token_by_hash")?,
        None,
        "a refused token is not stored"
    );
    Ok(())
}

async fn revoke(a: &dyn AccountStore) -> CheckResult {
    let rae = create(a, "r-rae", false).await?;
    let sam = create(a, "r-sam", false).await?;
    let mine = token("00000000000000b1", &rae, &[Scope::Yank]);
    let theirs = token("00000000000000b2", &sam, &[Scope::Yank]);
    a.create_token(mine, TokenHash::of("rae"))
        .await
        .ctx("create_token")?;
    a.create_token(theirs.clone(), TokenHash::of("sam"))
        .await
        .ctx("create_token")?;
    let first = OffsetDateTime::from_unix_timestamp(1_800_000_000).map_err(|e| e.to_string())?;
    let revoked = a
        .revoke_token(&rae, "00000000000000b1", first)
        .await
        .ctx("revoke_token")?;
    ensure_eq!(revoked.revoked_at, Some(first), "revocation time");
    let again = a
        .revoke_token(&rae, "00000000000000b1", first + Duration::hours(1))
        .await
        .ctx("revoke_token twice")?;
    ensure_eq!(
        again.revoked_at,
        Some(first),
        "revoking twice keeps the first time"
    );
    let looked_up = a
        .token_by_hash(&TokenHash::of("rae"))
        .await
        .ctx("token_by_hash")?;
    ensure!(
        looked_up.is_some_and(|t| t.revoked_at == Some(first)),
        "a revoked token is still found, marked revoked"
    );
    expect_kind(
        a.revoke_token(&rae, "00000000000000b2", first).await,
        ErrorKind::NotFound,
        "revoking another user's token",
    )?;
    expect_kind(
        a.revoke_token(&rae, "00000000000000ff", first).await,
        ErrorKind::NotFound,
        "revoking a missing token",
    )?;
    ensure_eq!(
        a.token_by_hash(&TokenHash::of("sam"))
            .await
            .ctx("token_by_hash")?,
        Some(theirs),
        "the other user's token is untouched"
    );
    Ok(())
}

async fn owners(a: &dyn AccountStore) -> CheckResult {
    let ann = create(a, "o-ann", false).await?;
    let bob = create(a, "o-bob", false).await?;
    let web = package_target("Own/Web_Kit");
    ensure_eq!(
        a.owners(&web).await.ctx("owners")?,
        vec![],
        "nobody owns a new name"
    );
    ensure_eq!(
        a.claim(&web, &ann).await.ctx("claim")?,
        Claim::Claimed,
        "first claim"
    );
    ensure_eq!(
        a.claim(&package_target("own/web-kit"), &ann)
            .await
            .ctx("claim")?,
        Claim::AlreadyOwner,
        "a claim of the same package spelled otherwise"
    );
    ensure_eq!(
        a.claim(&web, &bob).await.ctx("claim")?,
        Claim::OwnedByOthers,
        "another user's claim"
    );
    ensure_eq!(
        a.owners(&web).await.ctx("owners")?,
        vec![ann.clone()],
        "one owner"
    );
    expect_kind(
        a.claim(&package_target("own/other"), &user("o-ghost"))
            .await,
        ErrorKind::NotFound,
        "a claim by a missing user",
    )?;
    ensure_eq!(
        a.owners(&package_target("own/other")).await.ctx("owners")?,
        vec![],
        "a refused claim changes nothing"
    );
    let namespace = OwnerTarget::Namespace(Name::new("own").ctx("name")?);
    ensure_eq!(
        a.owners(&namespace).await.ctx("owners")?,
        vec![],
        "owning a package is not owning its namespace"
    );
    a.add_owner(&web, &bob).await.ctx("add_owner")?;
    a.add_owner(&web, &bob).await.ctx("add_owner twice")?;
    ensure_eq!(
        a.owners(&web).await.ctx("owners")?,
        vec![ann.clone(), bob.clone()],
        "owners by name"
    );
    expect_kind(
        a.add_owner(&web, &user("o-ghost")).await,
        ErrorKind::NotFound,
        "adding a missing user",
    )?;
    a.remove_owner(&web, &ann, true).await.ctx("remove_owner")?;
    expect_kind(
        a.remove_owner(&web, &bob, true).await,
        ErrorKind::Invalid,
        "removing the last owner",
    )?;
    ensure_eq!(
        a.owners(&web).await.ctx("owners")?,
        vec![bob.clone()],
        "the last owner is kept"
    );
    expect_kind(
        a.remove_owner(&web, &ann, false).await,
        ErrorKind::NotFound,
        "removing a user who is no owner",
    )?;
    a.claim(&namespace, &ann).await.ctx("claim a namespace")?;
    ensure_eq!(
        a.owned_by(&ann).await.ctx("owned_by")?,
        vec![namespace.clone()],
        "what a user owns"
    );
    ensure_eq!(
        a.owned_by(&bob).await.ctx("owned_by")?,
        vec![web.clone()],
        "what a user owns"
    );
    a.remove_owner(&web, &bob, false)
        .await
        .ctx("remove the last owner")?;
    ensure_eq!(
        a.owners(&web).await.ctx("owners")?,
        vec![],
        "an undone claim leaves no owner"
    );
    ensure_eq!(
        a.claim(&web, &ann).await.ctx("claim")?,
        Claim::Claimed,
        "an unowned name is claimable again"
    );
    Ok(())
}

async fn concurrent_claims(a: &dyn AccountStore, n: usize) -> CheckResult {
    let mut users = Vec::new();
    for i in 0..n {
        users.push(create(a, &format!("c-user{i}"), false).await?);
    }
    let target = package_target("race/name");
    let results = join_all(users.iter().map(|u| a.claim(&target, u))).await;
    let mut claimed = 0;
    for result in results {
        match result.ctx("claim")? {
            Claim::Claimed => claimed += 1,
            Claim::OwnedByOthers => {}
            other => return Err(format!("a concurrent first claim answered {other:?}")),
        }
    }
    ensure_eq!(claimed, 1, "claims that won");
    ensure_eq!(
        a.owners(&target).await.ctx("owners")?.len(),
        1,
        "owners after the race"
    );
    Ok(())
}

async fn keys(a: &dyn AccountStore) -> CheckResult {
    let kim = create(a, "k-kim", false).await?;
    let lee = create(a, "k-lee", false).await?;
    let (one, two) = (KeyId([2; 16]), KeyId([1; 16]));
    a.bind_key(&kim, &one).await.ctx("bind_key")?;
    a.bind_key(&kim, &two).await.ctx("bind_key")?;
    a.bind_key(&kim, &one).await.ctx("bind_key twice")?;
    ensure_eq!(
        a.keys_of(&kim).await.ctx("keys_of")?,
        vec![two, one],
        "keys in id order"
    );
    ensure_eq!(
        a.key_user(&one).await.ctx("key_user")?,
        Some(kim.clone()),
        "the key's user"
    );
    expect_kind(
        a.bind_key(&lee, &one).await,
        ErrorKind::AlreadyExists,
        "binding another user's key",
    )?;
    ensure_eq!(
        a.key_user(&one).await.ctx("key_user")?,
        Some(kim.clone()),
        "a refused bind changes nothing"
    );
    expect_kind(
        a.bind_key(&user("k-ghost"), &KeyId([3; 16])).await,
        ErrorKind::NotFound,
        "binding a key to a missing user",
    )?;
    expect_kind(
        a.unbind_key(&lee, &one).await,
        ErrorKind::NotFound,
        "unbinding another user's key",
    )?;
    a.unbind_key(&kim, &one).await.ctx("unbind_key")?;
    ensure_eq!(
        a.key_user(&one).await.ctx("key_user")?,
        None,
        "an unbound key"
    );
    a.bind_key(&lee, &one).await.ctx("bind a freed key")?;
    ensure_eq!(
        a.keys_of(&lee).await.ctx("keys_of")?,
        vec![one],
        "the freed key's new user"
    );
    Ok(())
}
