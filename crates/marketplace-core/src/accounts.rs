//! The `AccountStore` trait: users, API tokens, package and namespace owners, and the signing
//! keys bound to users — what a shared marketplace decides who may do what with.
//!
//! The store keeps records; deciding is the server's job (a token's scopes and pattern, an
//! owner's rights). Tokens are kept only as [`TokenHash`]es: the secret itself is shown once
//! to whoever created it and never stored.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::keys::KeyId;
use crate::name::{Name, PackageRef, serde_via_display};

/// Longest user name.
pub const MAX_USER_LEN: usize = 39;
/// Longest token label.
pub const MAX_TOKEN_NAME_LEN: usize = 64;

/// A user's name: 1–39 lowercase ASCII letters, digits and `-`, starting with a letter, not
/// ending with `-` (as code hosts spell handles). Names are compared as given: there is one
/// spelling.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName(String);

impl UserName {
    /// Validates `value` as a user name; errors name the field `user`.
    pub fn new(value: &str) -> Result<Self> {
        let rule = |rule: &str| Err(Error::invalid("user", value, rule));
        let Some(first) = value.chars().next() else {
            return rule("must not be empty");
        };
        if value.len() > MAX_USER_LEN {
            return rule("must be at most 39 characters");
        }
        if !first.is_ascii_lowercase() {
            return rule("must start with a lowercase ASCII letter");
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(Error::invalid(
                "user",
                value,
                format!("may contain only lowercase ASCII letters, digits and '-' (found {bad:?})"),
            ));
        }
        if value.ends_with('-') {
            return rule("must not end with '-'");
        }
        Ok(UserName(value.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl FromStr for UserName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        UserName::new(s)
    }
}

serde_via_display!(UserName);

/// A user of a shared marketplace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// The user's name.
    pub name: UserName,
    /// Whether the user administers the marketplace (creates users, acts as any owner).
    pub admin: bool,
    /// When the user was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl User {
    /// A user named `name`, created now.
    pub fn new(name: UserName, admin: bool) -> Self {
        User {
            name,
            admin,
            created_at: crate::metadata::now_seconds(),
        }
    }
}

/// What a token lets its holder do. A token holds one or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scope {
    /// Publish the first version of a package (and so become its owner).
    PublishNew,
    /// Publish a new version of a package its user owns.
    PublishUpdate,
    /// Yank and unyank versions of packages its user owns.
    Yank,
    /// Add and remove owners of packages and namespaces its user owns.
    Owners,
    /// Everything, on every package, and managing users: the administrator's scope.
    Admin,
}

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 5] = [
        Scope::PublishNew,
        Scope::PublishUpdate,
        Scope::Yank,
        Scope::Owners,
        Scope::Admin,
    ];

    /// The scope's spelling (`publish-new`, `publish-update`, `yank`, `owners`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::PublishNew => "publish-new",
            Scope::PublishUpdate => "publish-update",
            Scope::Yank => "yank",
            Scope::Owners => "owners",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "scope",
                    s,
                    "must be one of publish-new, publish-update, yank, owners, admin",
                )
            })
    }
}

serde_via_display!(Scope);

/// The packages a token may act on: one package (`acme/web`, `webby`), every package of a
/// namespace (`acme/*`), or every package whose canonical name starts with a prefix (`web*`,
/// `acme/web-*`). Matching uses canonical names, so `Web_Kit` matches `web-*`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackagePattern {
    /// As written.
    text: String,
    /// The canonical form of everything before a trailing `*`.
    canonical: String,
    /// Whether the pattern ends in `*`.
    prefix: bool,
}

impl PackagePattern {
    /// Validates `text`: a package reference, optionally ending in `*` (a prefix; `*` is
    /// allowed nowhere else). Errors name the field `pattern`.
    pub fn new(text: &str) -> Result<Self> {
        let invalid = |rule: &str| Error::invalid("pattern", text, rule);
        let (stem, prefix) = match text.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (text, false),
        };
        if stem.contains('*') {
            return Err(invalid("may contain '*' only at its end"));
        }
        let canonical = if prefix {
            // The stem of a prefix may end anywhere: `acme/`, `web-`, `w`. Each part it has
            // must still be spelled as a name would be.
            let (namespace, name) = match stem.split_once('/') {
                Some((ns, name)) => (Some(ns), name),
                None => (None, stem),
            };
            let mut canonical = String::new();
            if let Some(ns) = namespace {
                canonical.push_str(&Name::for_field("pattern", ns)?.canonical());
                canonical.push('/');
            }
            if !name.is_empty() {
                // `web-` is a fine prefix though not a fine name: check it with a letter added.
                Name::for_field("pattern", &format!("{name}x"))
                    .map_err(|_| invalid("must be a package name or the start of one"))?;
                canonical.push_str(&name.to_ascii_lowercase().replace('_', "-"));
            }
            if canonical.is_empty() {
                return Err(invalid(
                    "must name at least the start of a package (a lone '*' is every package: leave the pattern out)",
                ));
            }
            canonical
        } else {
            PackageRef::parse_field("pattern", stem)?.canonical()
        };
        Ok(PackagePattern {
            text: text.to_owned(),
            canonical,
            prefix,
        })
    }

    /// Whether `package` is one this pattern covers.
    pub fn matches(&self, package: &PackageRef) -> bool {
        let name = package.canonical();
        if self.prefix {
            name.starts_with(&self.canonical)
        } else {
            name == self.canonical
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for PackagePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for PackagePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl FromStr for PackagePattern {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PackagePattern::new(s)
    }
}

serde_via_display!(PackagePattern);

/// The SHA-256 of a token's secret: what is stored and looked up, so a copy of the database
/// gives away no token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The hash of `secret`, the token as its holder sends it.
    pub fn of(secret: &str) -> Self {
        TokenHash(Sha256::digest(secret.as_bytes()).into())
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", hex::encode(self.0))
    }
}

/// A token's record: everything about it but its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenRecord {
    /// The token's public id (16 hexadecimal digits), for listing and revoking it.
    pub id: String,
    /// Whose token it is.
    pub user: UserName,
    /// The label its user gave it (1–64 printable characters).
    pub name: String,
    /// What it may do (at least one scope, sorted, no repeats).
    pub scopes: Vec<Scope>,
    /// The packages it may act on; every package when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<PackagePattern>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working; never when unset.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked; in force when unset.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl TokenRecord {
    /// A new token record; `scopes` are sorted and deduplicated. Errors (`Invalid`): an empty
    /// or over-long `name` (or one with control characters), no scope, an `id` that is not 16
    /// hexadecimal digits.
    pub fn new(
        id: String,
        user: UserName,
        name: &str,
        scopes: impl IntoIterator<Item = Scope>,
    ) -> Result<Self> {
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid("id", &id, "must be 16 hexadecimal digits"));
        }
        validate_token_name(name)?;
        let mut scopes: Vec<Scope> = scopes.into_iter().collect();
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(Error::invalid(
                "scope",
                "",
                "a token needs at least one scope",
            ));
        }
        Ok(TokenRecord {
            id,
            user,
            name: name.to_owned(),
            scopes,
            pattern: None,
            created_at: crate::metadata::now_seconds(),
            expires_at: None,
            revoked_at: None,
        })
    }

    /// This token, limited to the packages `pattern` covers.
    pub fn with_pattern(mut self, pattern: Option<PackagePattern>) -> Self {
        self.pattern = pattern;
        self
    }

    /// This token, expiring at `at`.
    pub fn with_expiry(mut self, at: Option<OffsetDateTime>) -> Self {
        self.expires_at = at;
        self
    }

    /// Whether the token holds `scope` (the admin scope holds every scope).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// Whether the token may act on `package` (its pattern covers it, or it has none).
    pub fn covers(&self, package: &PackageRef) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.matches(package))
    }

    /// Why the token cannot be used at `now`, if it cannot: revoked or expired.
    pub fn unusable_at(&self, now: OffsetDateTime) -> Option<&'static str> {
        if self.revoked_at.is_some() {
            Some("revoked")
        } else if self.expires_at.is_some_and(|at| at <= now) {
            Some("expired")
        } else {
            None
        }
    }
}

/// Checks a token's label: 1–64 characters, none of them control characters.
pub fn validate_token_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid("name", name, "must not be empty"));
    }
    if name.chars().count() > MAX_TOKEN_NAME_LEN {
        return Err(Error::invalid(
            "name",
            name,
            "must be at most 64 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            name,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// What is owned: one package, or a namespace (every package in it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OwnerTarget {
    /// A package (`acme/web`, `webby`).
    Package(PackageRef),
    /// A namespace (`acme`).
    Namespace(Name),
}

impl OwnerTarget {
    /// The key ownership is decided on: `package:acme/web` or `namespace:acme`, canonical.
    pub fn canonical(&self) -> String {
        match self {
            OwnerTarget::Package(package) => format!("package:{}", package.canonical()),
            OwnerTarget::Namespace(ns) => format!("namespace:{}", ns.canonical()),
        }
    }
}

impl fmt::Display for OwnerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnerTarget::Package(package) => write!(f, "package {package}"),
            OwnerTarget::Namespace(ns) => write!(f, "namespace {ns}"),
        }
    }
}

/// What [`AccountStore::claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// The target had no owner; the user is now its only owner.
    Claimed,
    /// The user already owns it.
    AlreadyOwner,
    /// Others own it and the user does not.
    OwnedByOthers,
}

/// Users, tokens, owners and key bindings. Backends implement every method; the kit's
/// `accounts_suite` checks them. Every write is atomic; `claim` is atomic against concurrent
/// claims of the same target (exactly one claimer of an unowned target wins).
#[async_trait]
pub trait AccountStore: Send + Sync + fmt::Debug {
    /// Adds `user`. Errors: `AlreadyExists` when the name is taken.
    async fn create_user(&self, user: User) -> Result<()>;

    /// The user named `name`, if there is one.
    async fn user(&self, name: &UserName) -> Result<Option<User>>;

    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>>;

    /// Stores `token` under `hash`. Errors: `NotFound` when its user does not exist,
    /// `AlreadyExists` when its id or hash is taken.
    async fn create_token(&self, token: TokenRecord, hash: TokenHash) -> Result<()>;

    /// The token whose secret hashes to `hash`, revoked and expired ones included.
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>>;

    /// Every token of `user` (revoked ones included), oldest first.
    async fn tokens(&self, user: &UserName) -> Result<Vec<TokenRecord>>;

    /// Revokes `user`'s token `id` at `at` and returns it (revoking twice keeps the first
    /// time). Errors: `NotFound` when `user` has no such token.
    async fn revoke_token(
        &self,
        user: &UserName,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<TokenRecord>;

    /// The owners of `target`, by name (empty when nobody owns it).
    async fn owners(&self, target: &OwnerTarget) -> Result<Vec<UserName>>;

    /// Makes `user` the owner of `target` if nobody owns it, atomically. Errors: `NotFound`
    /// when `user` does not exist.
    async fn claim(&self, target: &OwnerTarget, user: &UserName) -> Result<Claim>;

    /// Adds `user` to `target`'s owners (a no-op when already one). Errors: `NotFound` when
    /// `user` does not exist.
    async fn add_owner(&self, target: &OwnerTarget, user: &UserName) -> Result<()>;

    /// Removes `user` from `target`'s owners. With `keep_one`, refuses to remove the last
    /// owner (`Invalid`, field `owner`); without it (undoing a claim whose publish failed)
    /// the target may be left unowned. Errors: `NotFound` when `user` is not an owner.
    async fn remove_owner(
        &self,
        target: &OwnerTarget,
        user: &UserName,
        keep_one: bool,
    ) -> Result<()>;

    /// Every target `user` owns, in canonical order.
    async fn owned_by(&self, user: &UserName) -> Result<Vec<OwnerTarget>>;

    /// Binds signing key `key` to `user`, so that packages it signs are `user`'s (a no-op when
    /// already bound to `user`). Errors: `NotFound` when `user` does not exist,
    /// `AlreadyExists` when another user holds the key.
    async fn bind_key(&self, user: &UserName, key: &KeyId) -> Result<()>;

    /// The user `key` is bound to, if any.
    async fn key_user(&self, key: &KeyId) -> Result<Option<UserName>>;

    /// The keys bound to `user`, in id order.
    async fn keys_of(&self, user: &UserName) -> Result<Vec<KeyId>>;

    /// Unbinds `key` from `user`. Errors: `NotFound` when it is not bound to `user`.
    async fn unbind_key(&self, user: &UserName, key: &KeyId) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_follow_the_handle_rules() {
        for good in ["a", "alice", "bob-2", "x1-y2"] {
            assert!(UserName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "Alice", "1bob", "bob-", "bo b", "b_b", &"a".repeat(40)] {
            assert!(UserName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns_match_canonical_names() {
        let web = |s: &str| s.parse::<PackageRef>().unwrap();
        let exact = PackagePattern::new("acme/Web_Kit").unwrap();
        assert!(exact.matches(&web("acme/web-kit")));
        assert!(!exact.matches(&web("acme/web-kit2")));
        let namespace = PackagePattern::new("acme/*").unwrap();
        assert!(namespace.matches(&web("acme/anything")));
        assert!(!namespace.matches(&web("acmex/anything")));
        assert!(!namespace.matches(&web("acme")));
        let prefix = PackagePattern::new("web-*").unwrap();
        assert!(prefix.matches(&web("Web_Server")));
        assert!(!prefix.matches(&web("webby")));
        for bad in ["*", "a*b", "acme/*/x", "1bad*", "acme/-*", "bad name", ""] {
            assert!(PackagePattern::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_check_scope_expiry_and_revocation() {
        let user = UserName::new("alice").unwrap();
        let mut token = TokenRecord::new(
            "0123456789abcdef".into(),
            user.clone(),
            "ci",
            [Scope::Yank, Scope::PublishUpdate, Scope::Yank],
        )
        .unwrap();
        assert_eq!(token.scopes, [Scope::PublishUpdate, Scope::Yank]);
        assert!(token.allows(Scope::Yank));
        assert!(!token.allows(Scope::PublishNew));
        let now = crate::metadata::now_seconds();
        assert_eq!(token.unusable_at(now), None);
        token.expires_at = Some(now);
        assert_eq!(token.unusable_at(now), Some("expired"));
        token.revoked_at = Some(now);
        assert_eq!(token.unusable_at(now), Some("revoked"));
        assert!(TokenRecord::new("xyz".into(), user.clone(), "ci", [Scope::Yank]).is_err());
        assert!(
            TokenRecord::new("0123456789abcdef".into(), user.clone(), "", [Scope::Yank]).is_err()
        );
        assert!(TokenRecord::new("0123456789abcdef".into(), user, "ci", []).is_err());
        let admin = TokenRecord::new(
            "0123456789abcdef".into(),
            UserName::new("root").unwrap(),
            "root",
            [Scope::Admin],
        )
        .unwrap();
        assert!(Scope::ALL.iter().all(|s| admin.allows(*s)));
    }

    #[test]
    fn token_hashes_are_sha256_of_the_secret() {
        assert_eq!(
            hex::encode(TokenHash::of("abc").0),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
