//! The accounts of a remote marketplace as the token's user sees them: owners of packages and
//! namespaces, and the user's own signing keys, through the server's API.

use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    Error, KeyId, OwnerTarget, PackagePattern, PublicKey, Result, Scope, TokenRecord, UserName,
};
use marketplace_protocol::v1;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;

use crate::Remote;
use crate::connection::{BACKEND, NO_QUERY, package_segment};

/// The API path of `target`'s owners.
fn owners_path(target: &OwnerTarget) -> String {
    match target {
        OwnerTarget::Package(package) => format!("/packages/{}/owners", package_segment(package)),
        OwnerTarget::Namespace(namespace) => format!("/namespaces/{namespace}/owners"),
    }
}

fn key_ids(body: v1::UserKeys) -> Result<Vec<KeyId>> {
    body.keys
        .iter()
        .map(|k| {
            k.parse()
                .map_err(|e: Error| Error::invalid("response field keys", k, e.to_string()))
        })
        .collect()
}

fn json_body(what: &str, value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| Error::backend(BACKEND, format!("encode {what}"), e, false))
}

impl Remote {
    /// Who owns `target` (public).
    pub async fn owners(&self, target: &OwnerTarget) -> Result<Vec<UserName>> {
        let list: v1::OwnerList = self
            .connection
            .get_json(
                &format!("list the owners of {target}"),
                &owners_path(target),
                NO_QUERY,
            )
            .await?;
        Ok(list.owners)
    }

    /// Adds `users` to `target`'s owners (the owners scope, and an owner or an admin); returns
    /// the owners now.
    pub async fn add_owners(
        &self,
        target: &OwnerTarget,
        users: &[UserName],
    ) -> Result<Vec<UserName>> {
        self.change_owners(Method::PUT, target, users).await
    }

    /// Removes `users` from `target`'s owners (the last owner stays); returns the owners now.
    pub async fn remove_owners(
        &self,
        target: &OwnerTarget,
        users: &[UserName],
    ) -> Result<Vec<UserName>> {
        self.change_owners(Method::DELETE, target, users).await
    }

    async fn change_owners(
        &self,
        method: Method,
        target: &OwnerTarget,
        users: &[UserName],
    ) -> Result<Vec<UserName>> {
        let body = json_body(
            "the owners",
            &v1::OwnersRequest {
                users: users.to_vec(),
            },
        )?;
        let request = self
            .connection
            .request(method, &owners_path(target))
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let list: v1::OwnerList = self
            .connection
            .json_of(&format!("change the owners of {target}"), request)
            .await?;
        Ok(list.owners)
    }

    /// The signing keys registered to the token's user.
    pub async fn my_keys(&self) -> Result<Vec<KeyId>> {
        let body: v1::UserKeys = self
            .connection
            .get_json("list your signing keys", "/me/keys", NO_QUERY)
            .await?;
        key_ids(body)
    }

    /// Registers `key` to the token's user (the server trusts it for their publishes);
    /// returns their keys now. `AlreadyExists` when the key is someone's already.
    pub async fn add_key(&self, key: &PublicKey) -> Result<Vec<KeyId>> {
        let body = json_body("the key", &v1::KeyRequest::new(key))?;
        let request = self
            .connection
            .request(Method::POST, "/me/keys")
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let keys: v1::UserKeys = self
            .connection
            .json_of(&format!("register key {}", key.key_id()), request)
            .await?;
        key_ids(keys)
    }

    /// Unregisters and revokes the token's user's key `key_id` on the server, for good;
    /// returns their keys now.
    pub async fn revoke_my_key(&self, key_id: &KeyId, reason: &str) -> Result<Vec<KeyId>> {
        let request = self
            .connection
            .request(Method::DELETE, &format!("/me/keys/{key_id}"))
            .query(&[("reason", reason)]);
        let keys: v1::UserKeys = self
            .connection
            .json_of(&format!("revoke key {key_id}"), request)
            .await?;
        key_ids(keys)
    }

    /// The tokens of `user` (an admin's token may name another user), or of the token's own
    /// user; never their secrets.
    pub async fn tokens(&self, user: Option<&UserName>) -> Result<Vec<TokenRecord>> {
        let request = self
            .connection
            .request(Method::GET, "/tokens")
            .query(&user_query(user));
        let list: v1::TokenList = self.connection.json_of("list the tokens", request).await?;
        list.tokens.into_iter().map(TokenRecord::try_from).collect()
    }

    /// A new token of `user` (or of the token's own user): never more scopes, a wider pattern
    /// or a later expiry than the token making it. Returns its secret, shown this once, and
    /// its record.
    pub async fn create_token(
        &self,
        user: Option<&UserName>,
        name: &str,
        scopes: &[Scope],
        pattern: Option<PackagePattern>,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<(String, TokenRecord)> {
        let body = json_body(
            "the token",
            &v1::TokenRequest {
                name: name.to_owned(),
                scopes: scopes.to_vec(),
                pattern,
                expires_at,
                user: user.cloned(),
            },
        )?;
        let request = self
            .connection
            .request(Method::POST, "/tokens")
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let created: v1::CreatedToken = self
            .connection
            .json_of(&format!("create the token {name:?}"), request)
            .await?;
        Ok((created.token, TokenRecord::try_from(created.record)?))
    }

    /// Revokes the token `id` of `user` (or of the token's own user); returns its record.
    pub async fn revoke_token(&self, id: &str, user: Option<&UserName>) -> Result<TokenRecord> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid("token id", id, "must be hexadecimal digits"));
        }
        let request = self
            .connection
            .request(Method::DELETE, &format!("/tokens/{id}"))
            .query(&user_query(user));
        let entry: v1::TokenEntry = self
            .connection
            .json_of(&format!("revoke the token {id}"), request)
            .await?;
        TokenRecord::try_from(entry)
    }
}

/// `?user=NAME`, or nothing.
fn user_query(user: Option<&UserName>) -> Vec<(&'static str, String)> {
    user.map(|u| ("user", u.to_string())).into_iter().collect()
}
