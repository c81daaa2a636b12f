//! The account flows: users, API tokens, owners and the signing keys registered to users, over
//! the composition's [`AccountStore`] — and the publish that needs them: signed by a key of
//! its publisher, who owns the package or its namespace (or becomes its owner, as its first
//! publisher).
//!
//! These flows decide what a *user* may do; which *token* may act for the user (scopes,
//! package patterns, expiry) is the server's to check, before it calls them.

use std::collections::{HashMap, HashSet};
use std::fmt;

use futures_util::StreamExt as _;
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    AccountStore, Claim, Error, ErrorKind, KeyId, OwnerTarget, PackagePattern, PackageRef,
    PrivateKey, PublicKey, Result, Scope, TokenHash, TokenRecord, TrustLevel, User, UserName,
};

use crate::client::MarketplaceClient;
use crate::publish::{ManyPublished, PreparedPackage, Published, check_spelling};

/// How every token secret starts: `mkt_` and 64 hexadecimal digits (256 random bits).
pub const TOKEN_PREFIX: &str = "mkt_";

/// A token just created: its secret, shown once and stored nowhere, and its record.
#[derive(Clone)]
#[non_exhaustive]
pub struct NewToken {
    /// What its holder sends (`Authorization: Bearer mkt_…`); only its hash is kept.
    pub secret: String,
    /// Everything else about it.
    pub record: TokenRecord,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("secret", &"<redacted>")
            .field("record", &self.record)
            .finish()
    }
}

/// `n` random bytes from the operating system, as lowercase hex.
fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::backend(
            "getrandom",
            "draw random bytes for a token",
            e.to_string(),
            false,
        )
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What one publish call has found in the account store, so that a batch asks once per
/// signing key and owner target rather than once per package. Only what the publishing user
/// holds is kept: during one call that only grows (by its own claims).
struct Known {
    /// Signing keys registered to the publishing user, among those the call's packages are
    /// signed with (asked once each, before any check).
    keys: HashSet<KeyId>,
    /// Packages and namespaces the publishing user owns.
    owned: HashSet<OwnerTarget>,
}

impl Known {
    /// Starts what a publish of `prepared` as `user`'s knows: which of their signing keys
    /// are `user`'s.
    async fn of(
        accounts: &dyn AccountStore,
        user: &User,
        prepared: &[PreparedPackage],
    ) -> Result<Self> {
        let mut asked = HashSet::new();
        let mut keys = HashSet::new();
        for signature in prepared
            .iter()
            .filter_map(|p| p.metadata.signature.as_ref())
        {
            let key_id = signature.key_id();
            if asked.insert(key_id)
                && accounts.key_user(&key_id).await?.as_ref() == Some(&user.name)
            {
                keys.insert(key_id);
            }
        }
        Ok(Self {
            keys,
            owned: HashSet::new(),
        })
    }
}

/// Packages of one batch checked at once: the checks mostly wait on the registry's reads.
const CHECK_CONCURRENCY: usize = 8;

/// The target a publish of `package` claims: its namespace, or the name itself.
fn claim_target(package: &PackageRef) -> OwnerTarget {
    match &package.namespace {
        Some(namespace) => OwnerTarget::Namespace(namespace.clone()),
        None => OwnerTarget::Package(package.clone()),
    }
}

impl MarketplaceClient {
    /// The account store, or `Invalid` saying this composition has none.
    fn accounts(&self) -> Result<&dyn AccountStore> {
        self.accounts.as_deref().ok_or_else(|| {
            Error::invalid(
                "accounts",
                "",
                "this marketplace has no account store: compose one with MarketplaceBuilder::accounts",
            )
        })
    }

    /// The user named `name`, if there is one.
    pub async fn user(&self, name: &UserName) -> Result<Option<User>> {
        self.accounts()?.user(name).await
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        self.accounts()?.users().await
    }

    /// Adds the user `name`. Errors: `AlreadyExists` when the name is taken.
    pub async fn create_user(&self, name: UserName, admin: bool) -> Result<User> {
        let user = User::new(name, admin);
        self.accounts()?.create_user(user.clone()).await?;
        tracing::info!(user = %user.name, admin, "user created");
        Ok(user)
    }

    /// A new API token of `user`: 256 random bits, of which only the hash is stored. Errors:
    /// `NotFound` when `user` does not exist, `Invalid` for a bad name, no scope, the admin
    /// scope for a user who is not an admin, or an expiry in the past.
    pub async fn create_token(
        &self,
        user: &UserName,
        name: &str,
        scopes: impl IntoIterator<Item = Scope>,
        pattern: Option<PackagePattern>,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<NewToken> {
        let accounts = self.accounts()?;
        let holder = accounts
            .user(user)
            .await?
            .ok_or_else(|| Error::not_found(format!("user {user}")))?;
        let record = TokenRecord::new(random_hex(8)?, user.clone(), name, scopes)?
            .with_pattern(pattern)
            .with_expiry(expires_at);
        if record.scopes.contains(&Scope::Admin) && !holder.admin {
            return Err(Error::invalid(
                "scope",
                "admin",
                format!("{user} is not an admin, so no token of theirs may hold the admin scope"),
            ));
        }
        if let Some(at) = expires_at
            && at <= record.created_at
        {
            return Err(Error::invalid(
                "expires",
                at.to_string(),
                "a token's expiry must be in the future",
            ));
        }
        let secret = format!("{TOKEN_PREFIX}{}", random_hex(32)?);
        accounts
            .create_token(record.clone(), TokenHash::of(&secret))
            .await?;
        tracing::info!(user = %user, token = %record.id, "token created");
        Ok(NewToken { secret, record })
    }

    /// Every token of `user`, revoked ones included, oldest first.
    pub async fn tokens(&self, user: &UserName) -> Result<Vec<TokenRecord>> {
        self.accounts()?.tokens(user).await
    }

    /// Revokes `user`'s token `id` (revoking twice keeps the first time). Errors: `NotFound`
    /// when `user` has no such token.
    pub async fn revoke_token(&self, user: &UserName, id: &str) -> Result<TokenRecord> {
        let record = self
            .accounts()?
            .revoke_token(user, id, marketplace_core::now_seconds())
            .await?;
        tracing::info!(user = %user, token = id, "token revoked");
        Ok(record)
    }

    /// The token whose secret is `secret` and its user — revoked and expired tokens included,
    /// for the caller to refuse saying why. `None` when no token has this secret.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<(TokenRecord, User)>> {
        let accounts = self.accounts()?;
        let Some(token) = accounts.token_by_hash(&TokenHash::of(secret)).await? else {
            return Ok(None);
        };
        let user = accounts.user(&token.user).await?.ok_or_else(|| {
            Error::not_found(format!("user {} of token {}", token.user, token.id))
        })?;
        Ok(Some((token, user)))
    }

    /// The owners of `target`, by name (empty when nobody owns it).
    pub async fn owners(&self, target: &OwnerTarget) -> Result<Vec<UserName>> {
        self.accounts()?.owners(target).await
    }

    /// Every target `user` owns.
    pub async fn owned_by(&self, user: &UserName) -> Result<Vec<OwnerTarget>> {
        self.accounts()?.owned_by(user).await
    }

    /// Makes `user` an owner of `target`. Errors: `NotFound` when `user` does not exist.
    pub async fn add_owner(&self, target: &OwnerTarget, user: &UserName) -> Result<()> {
        self.accounts()?.add_owner(target, user).await?;
        tracing::info!(%target, user = %user, "owner added");
        Ok(())
    }

    /// Removes `user` from `target`'s owners; the last owner stays (`Invalid`, field
    /// `owner`). Errors: `NotFound` when `user` is not an owner.
    pub async fn remove_owner(&self, target: &OwnerTarget, user: &UserName) -> Result<()> {
        self.accounts()?.remove_owner(target, user, true).await?;
        tracing::info!(%target, user = %user, "owner removed");
        Ok(())
    }

    /// Whether `user` may change `target`'s owners: an owner of it (a package's namespace
    /// owners count as its owners), or an admin. `Unauthorized` naming the owners otherwise.
    pub async fn check_owner(&self, user: &User, target: &OwnerTarget) -> Result<()> {
        if user.admin {
            return Ok(());
        }
        let accounts = self.accounts()?;
        let mut owners = accounts.owners(target).await?;
        if let OwnerTarget::Package(package) = target
            && let Some(namespace) = &package.namespace
        {
            owners.extend(
                accounts
                    .owners(&OwnerTarget::Namespace(namespace.clone()))
                    .await?,
            );
        }
        if owners.contains(&user.name) {
            return Ok(());
        }
        let owners: Vec<String> = owners.iter().map(ToString::to_string).collect();
        Err(Error::Unauthorized {
            what: if owners.is_empty() {
                format!(
                    "{user} does not own {target}: nobody does yet",
                    user = user.name
                )
            } else {
                format!(
                    "{user} does not own {target}: its owners are {}",
                    owners.join(", "),
                    user = user.name
                )
            },
        })
    }

    /// Registers `key` as a signing key of `user` and trusts it fully, so packages it signs
    /// can be published as `user`'s. Errors: `NotFound` (no such user), `AlreadyExists`
    /// (another user holds the key), `Signature` (the key is revoked).
    pub async fn register_key(&self, user: &UserName, key: &PublicKey) -> Result<()> {
        let accounts = self.accounts()?;
        let key_id = key.key_id();
        let already = accounts.key_user(&key_id).await?.as_ref() == Some(user);
        accounts.bind_key(user, &key_id).await?;
        if let Err(e) = self.trust_key(key, TrustLevel::Full).await {
            if !already {
                let _ = accounts.unbind_key(user, &key_id).await;
            }
            return Err(e);
        }
        tracing::info!(user = %user, key = %key_id, "signing key registered");
        Ok(())
    }

    /// The signing keys registered to `user`.
    pub async fn keys_of(&self, user: &UserName) -> Result<Vec<KeyId>> {
        self.accounts()?.keys_of(user).await
    }

    /// Unregisters `user`'s key `key_id` and revokes it in the trust store, permanently:
    /// packages it signed are refused from then on. Errors: `NotFound` when it is not
    /// registered to `user`.
    pub async fn revoke_user_key(
        &self,
        user: &UserName,
        key_id: &KeyId,
        reason: &str,
    ) -> Result<()> {
        self.accounts()?.unbind_key(user, key_id).await?;
        self.revoke_key(key_id, reason).await?;
        tracing::info!(user = %user, key = %key_id, "signing key revoked");
        Ok(())
    }

    /// Publishes `prepared` (its detached signature set) as `user`'s: the signing key must be
    /// registered to `user`, and `user` must own the package or its namespace — or, when
    /// nobody does, becomes its owner (the namespace for `ns/name`, else the name). Every
    /// check of [`MarketplaceClient::publish_prepared`] runs before the claim; a claim whose
    /// publish then fails is given up again while the package has no version.
    ///
    /// Errors: those of `publish_prepared`, and `Unauthorized` for a key that is not
    /// `user`'s or a package someone else owns (nothing is stored, registered or claimed).
    pub async fn publish_as(&self, user: &User, prepared: PreparedPackage) -> Result<Published> {
        let accounts = self.accounts()?;
        let id = prepared.metadata.id.clone();
        let span = tracing::info_span!("marketplace.publish", package = %id, user = %user.name);
        self.flow("publish", span, async {
            let mut known = Known::of(accounts, user, std::slice::from_ref(&prepared)).await?;
            self.check_as(user, &known.keys, &prepared).await?;
            self.claim_and_publish(accounts, user, prepared, &mut known)
                .await
        })
        .await
    }

    /// Claims the package for `user` when unowned (or checks they own it), publishes a checked
    /// package, and gives a claim made here back when the publish fails.
    async fn claim_and_publish(
        &self,
        accounts: &dyn AccountStore,
        user: &User,
        prepared: PreparedPackage,
        known: &mut Known,
    ) -> Result<Published> {
        let package = prepared.metadata.id.package();
        let claimed = self.claim_for(accounts, user, &package, known).await?;
        let result = self.publish_hooked(prepared).await;
        if result.is_err()
            && let Some(target) = claimed
        {
            self.give_up_claim(accounts, &target, &user.name, &package)
                .await;
        }
        result
    }

    /// Publishes a prepared package that carries no author signature as `user`'s,
    /// countersigned with `key` — the marketplace's own key, which its trust store must trust
    /// (a crate sent by `cargo publish`: cargo signs nothing). The signature says the
    /// marketplace received these bytes from `user`; every other check of
    /// [`MarketplaceClient::publish_as`] is made (unchanged metadata, the version free, the
    /// key's trust, the `pre_publish` hooks, `user` an owner of the package or its first
    /// publisher).
    pub async fn publish_countersigned_as(
        &self,
        user: &User,
        mut prepared: PreparedPackage,
        key: &PrivateKey,
    ) -> Result<Published> {
        let accounts = self.accounts()?;
        let id = prepared.metadata.id.clone();
        let span = tracing::info_span!("marketplace.publish", package = %id, user = %user.name);
        self.flow("publish", span, async {
            if prepared.metadata.signature.is_some() {
                return Err(Error::invalid(
                    "signature",
                    id.to_string(),
                    "a countersigned publish carries no author signature; publish a signed one with publish_as",
                ));
            }
            prepared.check_unchanged()?;
            self.check_free(&id).await?;
            let signature = self
                .call("crypto", "sign", true, || {
                    self.crypto.sign(&prepared.metadata, key)
                })
                .await?;
            self.check_trust("publish", &id, &signature).await?;
            prepared.metadata.signature = Some(signature);
            self.pre_publish_hooks(&prepared.metadata).await?;
            let mut known = Known::of(accounts, user, &[]).await?;
            self.claim_and_publish(accounts, user, prepared, &mut known)
                .await
        })
        .await
    }

    /// Publishes many prepared packages (each with its detached signature) as `user`'s, for
    /// imports over HTTP: each is checked as [`MarketplaceClient::publish_as`] checks one, and
    /// each refused is reported with its position and why (twice in the input, another
    /// spelling of a package in it, not `user`'s to publish, …); the rest are published through
    /// the batch path (one `register_batch`, one index commit). A backend failure is an error
    /// for the whole call, and gives back the claims it made.
    pub async fn publish_many_as(
        &self,
        user: &User,
        prepared: Vec<PreparedPackage>,
    ) -> Result<ManyPublished> {
        let accounts = self.accounts()?;
        let span = tracing::info_span!(
            "marketplace.publish_many",
            count = prepared.len(),
            user = %user.name
        );
        self.flow("publish_many", span, async {
            let mut known = Known::of(accounts, user, &prepared).await?;
            let mut seen = HashSet::new();
            let twice: Vec<bool> = prepared
                .iter()
                .map(|p| !seen.insert(p.metadata.id.canonical()))
                .collect();
            // The checks that only read (the key, the signature, the version free, the hooks)
            // run a few at a time; their results are taken in order below, where the claims
            // are made one by one. (The futures are made up front, so the flow stays `Send`.)
            let checks: Vec<_> = prepared
                .iter()
                .zip(&twice)
                .map(|(p, twice)| {
                    let keys = &known.keys;
                    async move {
                        if *twice {
                            return Ok(());
                        }
                        self.check_as(user, keys, p).await
                    }
                })
                .collect();
            let checked: Vec<Result<()>> = futures_util::stream::iter(checks)
                .buffered(CHECK_CONCURRENCY)
                .collect()
                .await;
            let mut accepted = Vec::with_capacity(prepared.len());
            let mut refused = Vec::new();
            let mut spellings: HashMap<String, PackageRef> = HashMap::new();
            let mut claimed: Vec<(OwnerTarget, PackageRef)> = Vec::new();
            let items = prepared.into_iter().zip(twice).zip(checked);
            for (position, ((p, twice), checked)) in items.enumerate() {
                let package = p.metadata.id.package();
                let outcome = async {
                    if twice {
                        return Err(Error::already_exists(format!(
                            "package {} (twice in one batch)",
                            p.metadata.id
                        )));
                    }
                    if let Some(first) = spellings.get(&package.canonical()) {
                        check_spelling(&package, first)?;
                    }
                    checked?;
                    if let Some(target) =
                        self.claim_for(accounts, user, &package, &mut known).await?
                    {
                        claimed.push((target, package.clone()));
                    }
                    Ok(())
                }
                .await;
                match outcome {
                    Ok(()) => {
                        spellings.entry(package.canonical()).or_insert(package);
                        accepted.push(p);
                    }
                    Err(e) if e.kind() == ErrorKind::Backend => return Err(e),
                    Err(e) => refused.push((position, e)),
                }
            }
            if accepted.is_empty() {
                return Ok(ManyPublished {
                    published: Vec::new(),
                    refused,
                });
            }
            match self.commit_batch(accepted).await {
                Ok(published) => Ok(ManyPublished { published, refused }),
                Err(e) => {
                    for (target, package) in &claimed {
                        self.give_up_claim(accounts, target, &user.name, package)
                            .await;
                    }
                    Err(e)
                }
            }
        })
        .await
    }

    /// Every check of a publish of `prepared` as `user`'s, but ownership: unchanged metadata,
    /// a signature by a key registered to `user` that verifies and is trusted, the version
    /// free, the `pre_publish` hooks. `user_keys` are the keys known to be `user`'s.
    async fn check_as(
        &self,
        user: &User,
        user_keys: &HashSet<KeyId>,
        prepared: &PreparedPackage,
    ) -> Result<()> {
        let id = &prepared.metadata.id;
        prepared.check_unchanged()?;
        let Some(signature) = &prepared.metadata.signature else {
            return Err(Error::invalid(
                "signature",
                "",
                format!("publish {id}: a publish needs its archive's signature"),
            ));
        };
        let key_id = signature.key_id();
        if !user_keys.contains(&key_id) {
            return Err(Error::Unauthorized {
                what: format!(
                    "publish {id}: the signing key {key_id} is not registered to {}",
                    user.name
                ),
            });
        }
        self.check_free(id).await?;
        self.check_signature("publish", &prepared.metadata).await?;
        self.pre_publish_hooks(&prepared.metadata).await
    }

    /// Checks `user` may publish `package`, claiming its namespace or name when unowned;
    /// returns the target claimed now. What it finds `user` owns goes into `known`.
    async fn claim_for(
        &self,
        accounts: &dyn AccountStore,
        user: &User,
        package: &PackageRef,
        known: &mut Known,
    ) -> Result<Option<OwnerTarget>> {
        let own_package = OwnerTarget::Package(package.clone());
        let target = claim_target(package);
        if known.owned.contains(&own_package) || known.owned.contains(&target) {
            return Ok(None);
        }
        if package.namespace.is_some() && accounts.owners(&own_package).await?.contains(&user.name)
        {
            known.owned.insert(own_package);
            return Ok(None);
        }
        let owners = accounts.owners(&target).await?;
        if owners.contains(&user.name) {
            known.owned.insert(target);
            return Ok(None);
        }
        // Versions nobody owns were published on the home. A concurrent first publish claims
        // before it registers, so the owners are read again before refusing: its claim then
        // decides below (the same user's, or someone else's).
        if owners.is_empty()
            && self.has_versions(package).await
            && accounts.owners(&target).await?.is_empty()
        {
            return Err(Error::Unauthorized {
                what: format!(
                    "publish {package}: it has versions but nobody owns {target} (they were published on the marketplace's home); its operator names owners with `mkt owner add`"
                ),
            });
        }
        match accounts.claim(&target, &user.name).await? {
            Claim::Claimed => {
                tracing::info!(%target, user = %user.name, "first publish: owner claimed");
                known.owned.insert(target.clone());
                Ok(Some(target))
            }
            Claim::AlreadyOwner => {
                known.owned.insert(target);
                Ok(None)
            }
            _ => {
                let owners: Vec<String> = accounts
                    .owners(&target)
                    .await?
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                Err(Error::Unauthorized {
                    what: format!(
                        "publish {package}: {user} does not own {target} (its owners are {}); an owner can add {user} with `mkt owner add`",
                        owners.join(", "),
                        user = user.name
                    ),
                })
            }
        }
    }

    /// Whether `package` has a registered version; `true` when the registry cannot say (a
    /// claim is then neither made over nor given up from under existing versions).
    async fn has_versions(&self, package: &PackageRef) -> bool {
        match self.registry.list_version_states(package).await {
            Ok(states) => !states.is_empty(),
            Err(Error::NotFound { .. }) => false,
            Err(_) => true,
        }
    }

    /// Gives a claim back after its publish failed, unless the package has a version by now
    /// (a concurrent publish of the same user landed and needs its owner).
    async fn give_up_claim(
        &self,
        accounts: &dyn AccountStore,
        target: &OwnerTarget,
        user: &UserName,
        package: &PackageRef,
    ) {
        if self.has_versions(package).await {
            return;
        }
        if let Err(e) = accounts.remove_owner(target, user, false).await {
            tracing::warn!(%target, user = %user, error = %e, "could not give up the claim of a failed publish");
        }
    }
}
