//! `MemoryAccounts`: the reference `AccountStore`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    AccountStore, Claim, Error, KeyId, OwnerTarget, Result, TokenHash, TokenRecord, User, UserName,
};

use super::lock;

#[derive(Default)]
struct State {
    users: BTreeMap<UserName, User>,
    /// In creation order, with each secret's hash.
    tokens: Vec<(TokenHash, TokenRecord)>,
    /// Canonical target → (the target as first given, its owners).
    owners: BTreeMap<String, (OwnerTarget, BTreeSet<UserName>)>,
    keys: BTreeMap<KeyId, UserName>,
}

impl State {
    fn require_user(&self, user: &UserName) -> Result<()> {
        match self.users.contains_key(user) {
            true => Ok(()),
            false => Err(Error::not_found(format!("user {user}"))),
        }
    }
}

/// The reference [`AccountStore`]: maps behind one mutex.
#[derive(Default)]
pub struct MemoryAccounts {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryAccounts").finish_non_exhaustive()
    }
}

impl MemoryAccounts {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl AccountStore for MemoryAccounts {
    async fn create_user(&self, user: User) -> Result<()> {
        let mut state = lock(&self.state);
        if state.users.contains_key(&user.name) {
            return Err(Error::already_exists(format!("user {}", user.name)));
        }
        state.users.insert(user.name.clone(), user);
        Ok(())
    }

    async fn user(&self, name: &UserName) -> Result<Option<User>> {
        Ok(lock(&self.state).users.get(name).cloned())
    }

    async fn users(&self) -> Result<Vec<User>> {
        Ok(lock(&self.state).users.values().cloned().collect())
    }

    async fn create_token(&self, token: TokenRecord, hash: TokenHash) -> Result<()> {
        let mut state = lock(&self.state);
        state.require_user(&token.user)?;
        if state
            .tokens
            .iter()
            .any(|(h, t)| *h == hash || t.id == token.id)
        {
            return Err(Error::already_exists(format!("token {}", token.id)));
        }
        state.tokens.push((hash, token));
        Ok(())
    }

    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>> {
        let state = lock(&self.state);
        Ok(state
            .tokens
            .iter()
            .find(|(h, _)| h == hash)
            .map(|(_, t)| t.clone()))
    }

    async fn tokens(&self, user: &UserName) -> Result<Vec<TokenRecord>> {
        let state = lock(&self.state);
        Ok(state
            .tokens
            .iter()
            .filter(|(_, t)| &t.user == user)
            .map(|(_, t)| t.clone())
            .collect())
    }

    async fn revoke_token(
        &self,
        user: &UserName,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<TokenRecord> {
        let mut state = lock(&self.state);
        let (_, token) = state
            .tokens
            .iter_mut()
            .find(|(_, t)| &t.user == user && t.id == id)
            .ok_or_else(|| Error::not_found(format!("token {id} of {user}")))?;
        token.revoked_at.get_or_insert(at);
        Ok(token.clone())
    }

    async fn owners(&self, target: &OwnerTarget) -> Result<Vec<UserName>> {
        let state = lock(&self.state);
        Ok(state
            .owners
            .get(&target.canonical())
            .map(|(_, owners)| owners.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn claim(&self, target: &OwnerTarget, user: &UserName) -> Result<Claim> {
        let mut state = lock(&self.state);
        state.require_user(user)?;
        let (_, owners) = state
            .owners
            .entry(target.canonical())
            .or_insert_with(|| (target.clone(), BTreeSet::new()));
        Ok(if owners.contains(user) {
            Claim::AlreadyOwner
        } else if owners.is_empty() {
            owners.insert(user.clone());
            Claim::Claimed
        } else {
            Claim::OwnedByOthers
        })
    }

    async fn add_owner(&self, target: &OwnerTarget, user: &UserName) -> Result<()> {
        let mut state = lock(&self.state);
        state.require_user(user)?;
        state
            .owners
            .entry(target.canonical())
            .or_insert_with(|| (target.clone(), BTreeSet::new()))
            .1
            .insert(user.clone());
        Ok(())
    }

    async fn remove_owner(
        &self,
        target: &OwnerTarget,
        user: &UserName,
        keep_one: bool,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let owners = state
            .owners
            .get_mut(&target.canonical())
            .map(|(_, owners)| owners)
            .filter(|owners| owners.contains(user))
            .ok_or_else(|| Error::not_found(format!("{user} as an owner of {target}")))?;
        if keep_one && owners.len() == 1 {
            return Err(Error::invalid(
                "owner",
                user.as_str(),
                format!("is the last owner of {target}: add another owner first"),
            ));
        }
        owners.remove(user);
        Ok(())
    }

    async fn owned_by(&self, user: &UserName) -> Result<Vec<OwnerTarget>> {
        let state = lock(&self.state);
        Ok(state
            .owners
            .values()
            .filter(|(_, owners)| owners.contains(user))
            .map(|(target, _)| target.clone())
            .collect())
    }

    async fn bind_key(&self, user: &UserName, key: &KeyId) -> Result<()> {
        let mut state = lock(&self.state);
        state.require_user(user)?;
        match state.keys.get(key) {
            Some(holder) if holder == user => Ok(()),
            Some(holder) => Err(Error::already_exists(format!(
                "key {key} (bound to user {holder})"
            ))),
            None => {
                state.keys.insert(*key, user.clone());
                Ok(())
            }
        }
    }

    async fn key_user(&self, key: &KeyId) -> Result<Option<UserName>> {
        Ok(lock(&self.state).keys.get(key).cloned())
    }

    async fn keys_of(&self, user: &UserName) -> Result<Vec<KeyId>> {
        let state = lock(&self.state);
        Ok(state
            .keys
            .iter()
            .filter(|(_, holder)| *holder == user)
            .map(|(key, _)| *key)
            .collect())
    }

    async fn unbind_key(&self, user: &UserName, key: &KeyId) -> Result<()> {
        let mut state = lock(&self.state);
        if state.keys.get(key) != Some(user) {
            return Err(Error::not_found(format!("key {key} of {user}")));
        }
        state.keys.remove(key);
        Ok(())
    }
}
