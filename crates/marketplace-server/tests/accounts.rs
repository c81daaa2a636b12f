//! Accounts over HTTP: tokens (missing, unknown, expired, revoked, wrong scope, wrong package
//! pattern), owners of packages and namespaces, yanking, users and signing keys — each refusal
//! with the right status and nothing changed.

mod common;

use common::{PUBLISHER, Running, archive, error_of, user_with_key};
use marketplace_core::{
    OwnerTarget, PackageRef, Scope, TokenHash, TokenRecord, UserName, VersionState,
};
use marketplace_protocol::v1;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Nothing is registered, stored or in the change feed.
async fn nothing_published(server: &Running) {
    let registry = server.client.registry();
    assert_eq!(registry.latest_event_seq().await.expect("seq"), 0);
    assert_eq!(
        server.client.store().stats().await.expect("stats").objects,
        0
    );
}

/// A token of alice stored with `scopes`, `pattern` and `expired`/`revoked` as asked, made
/// through the account store itself (the client refuses to make an already expired one).
async fn alice_token(
    server: &Running,
    scopes: &[Scope],
    pattern: Option<&str>,
    expired: bool,
    revoked: bool,
) -> String {
    let alice = UserName::new("alice").unwrap();
    let n = server.client.tokens(&alice).await.unwrap().len();
    let secret = format!("mkt_{:064x}", n + 1000);
    let now = marketplace_core::now_seconds();
    let mut record = TokenRecord::new(
        format!("{:016x}", n + 1000),
        alice.clone(),
        "test",
        scopes.iter().copied(),
    )
    .unwrap()
    .with_pattern(pattern.map(|p| p.parse().unwrap()));
    if expired {
        record = record.with_expiry(Some(now - marketplace_core::time::Duration::minutes(1)));
    }
    let store = server.client.account_store().expect("accounts");
    store
        .create_token(record.clone(), TokenHash::of(&secret))
        .await
        .unwrap();
    if revoked {
        store.revoke_token(&alice, &record.id, now).await.unwrap();
    }
    secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_needs_a_usable_token_with_the_scope_and_pattern() {
    let server = Running::start().await;
    let body = archive("acme/web@1.0.0", "Web", &[]);
    let signed = server.sign(&body, &server.key.private_key).await;

    let response = server.publish_as(body.clone(), &signed, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .headers()
            .get("www-authenticate")
            .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer"))
    );
    assert_eq!(error_of(response).await.kind, "unauthorized");

    let unknown = format!("mkt_{}", "0".repeat(64));
    let response = server
        .publish_as(body.clone(), &signed, Some(&unknown))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        error_of(response)
            .await
            .message
            .contains("not one this server issued")
    );

    let basic = server
        .http
        .put(server.url("/api/v1/packages"))
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);

    let cases: [(&str, String); 5] = [
        (
            "expired",
            alice_token(&server, &PUBLISHER, None, true, false).await,
        ),
        (
            "revoked",
            alice_token(&server, &PUBLISHER, None, false, true).await,
        ),
        (
            "publish-new or publish-update",
            alice_token(&server, &[Scope::Yank], None, false, false).await,
        ),
        (
            "does not cover acme/web",
            alice_token(&server, &PUBLISHER, Some("other/*"), false, false).await,
        ),
        (
            "publish-new",
            alice_token(&server, &[Scope::PublishUpdate], None, false, false).await,
        ),
    ];
    for (why, token) in &cases {
        let response = server.publish_as(body.clone(), &signed, Some(token)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{why}");
        let error = error_of(response).await;
        assert!(error.message.contains(why), "{why}: {}", error.message);
        nothing_published(&server).await;
    }
    let acme = OwnerTarget::Namespace("acme".parse().unwrap());
    assert!(server.client.owners(&acme).await.unwrap().is_empty());

    // A token for acme/* with publish-new does publish it.
    let scoped = alice_token(&server, &[Scope::PublishNew], Some("acme/*"), false, false).await;
    let response = server.publish_as(body, &signed, Some(&scoped)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_publisher_owns_the_name_and_others_need_an_owner_to_add_them() {
    let server = Running::start().await;
    let (bob_key, bob) = user_with_key(&server.client, "bob", &PUBLISHER).await;
    let web = OwnerTarget::Package("web".parse().unwrap());

    let first = archive("web@1.0.0", "Web", &[]);
    assert_eq!(server.publish(&first).await.status(), StatusCode::CREATED);
    assert_eq!(
        server.client.owners(&web).await.unwrap(),
        vec![UserName::new("alice").unwrap()]
    );

    // Bob, with his own key, may not publish web: alice owns it.
    let update = archive("web@1.1.0", "Web", &[]);
    let signed = server.sign(&update, &bob_key.private_key).await;
    let response = server.publish_as(update.clone(), &signed, Some(&bob)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        error_of(response)
            .await
            .message
            .contains("its owners are alice")
    );
    // Nor with alice's key.
    let alice_signed = server.sign(&update, &server.key.private_key).await;
    let response = server
        .publish_as(update.clone(), &alice_signed, Some(&bob))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        error_of(response)
            .await
            .message
            .contains("not registered to bob")
    );
    let versions = server
        .client
        .versions(&"web".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(server.client.store().stats().await.unwrap().objects, 1);

    // Bob may not make himself an owner; alice may.
    let owners = "/api/v1/packages/web/owners";
    let add_bob = json!({"users": ["bob"]});
    let response = server
        .call(Method::PUT, owners, Some(&bob), Some(add_bob.clone()))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = server
        .call(
            Method::PUT,
            owners,
            Some(&server.token),
            Some(add_bob.clone()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let list: v1::OwnerList = response.json().await.unwrap();
    assert_eq!(list.owners.len(), 2);
    let response = server.publish_as(update, &signed, Some(&bob)).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // Owners are public; adding a user who does not exist is 404; the last owner stays.
    let response = server.call(Method::GET, owners, None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = server
        .call(
            Method::PUT,
            owners,
            Some(&server.token),
            Some(json!({"users": ["nobody"]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = server
        .call(
            Method::DELETE,
            owners,
            Some(&bob),
            Some(json!({"users": ["alice", "bob"]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(server.client.owners(&web).await.unwrap().len(), 2);
    let response = server
        .call(
            Method::DELETE,
            owners,
            Some(&bob),
            Some(json!({"users": ["alice"]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        server.client.owners(&web).await.unwrap(),
        vec![UserName::new("bob").unwrap()]
    );

    // A namespace belongs to its first publisher: bob may not publish into acme.
    assert_eq!(
        server
            .publish(&archive("acme/a@1.0.0", "A", &[]))
            .await
            .status(),
        StatusCode::CREATED
    );
    let other = archive("acme/b@1.0.0", "B", &[]);
    let signed = server.sign(&other, &bob_key.private_key).await;
    let response = server.publish_as(other.clone(), &signed, Some(&bob)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        server
            .client
            .versions(&"acme/b".parse::<PackageRef>().unwrap())
            .await
            .map_or(true, |v| v.is_empty())
    );
    let response = server
        .call(
            Method::PUT,
            "/api/v1/namespaces/acme/owners",
            Some(&server.token),
            Some(add_bob),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = server.publish_as(other, &signed, Some(&bob)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_owner_yanks_and_a_yank_needs_a_reason() {
    let server = Running::start().await;
    let (_, bob) = user_with_key(&server.client, "bob", &PUBLISHER).await;
    assert_eq!(
        server
            .publish(&archive("web@1.0.0", "Web", &[]))
            .await
            .status(),
        StatusCode::CREATED
    );
    let yank = "/api/v1/packages/web/1.0.0/yank";
    let reason = json!({"reason": "broken build"});
    let yanked = || async {
        let states: Vec<VersionState> = server
            .client
            .versions(&"web".parse().unwrap())
            .await
            .unwrap();
        states[0].yanked.is_some()
    };

    let response = server
        .call(Method::PUT, yank, None, Some(reason.clone()))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = server
        .call(Method::PUT, yank, Some(&bob), Some(reason.clone()))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let publish_only = alice_token(&server, &[Scope::PublishUpdate], None, false, false).await;
    let response = server
        .call(Method::PUT, yank, Some(&publish_only), Some(reason.clone()))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = server
        .call(
            Method::PUT,
            yank,
            Some(&server.token),
            Some(json!({"reason": "  "})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = server
        .http
        .put(server.url(yank))
        .bearer_auth(&server.token)
        .body("reason=broken")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(!yanked().await);

    let response = server
        .call(Method::PUT, yank, Some(&server.token), Some(reason))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: v1::YankResponse = response.json().await.unwrap();
    assert!(body.yanked);
    assert!(yanked().await);
    let response = server.call(Method::DELETE, yank, Some(&bob), None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(yanked().await);
    // An admin acts as any owner.
    let response = server
        .call(Method::DELETE, yank, Some(&server.admin_token), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!yanked().await);
    let response = server
        .call(
            Method::DELETE,
            "/api/v1/packages/web/9.9.9/yank",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_shown_once_never_exceed_their_maker_and_revoke() {
    let server = Running::start().await;
    let response = server
        .call(Method::GET, "/api/v1/me", Some(&server.token), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: v1::Me = response.json().await.unwrap();
    assert_eq!(me.user.name.as_str(), "alice");
    assert!(!me.user.admin);

    let response = server
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&server.token),
            Some(json!({"name": "yank only", "scopes": ["yank"], "pattern": "web"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: v1::CreatedToken = response.json().await.unwrap();
    assert!(created.token.starts_with(marketplace_client::TOKEN_PREFIX));
    assert_eq!(created.token.len(), 4 + 64, "256 bits as hex");

    // Listed without its secret.
    let response = server
        .call(Method::GET, "/api/v1/tokens", Some(&server.token), None)
        .await;
    let text = response.text().await.unwrap();
    assert!(!text.contains(&created.token));
    let list: v1::TokenList = serde_json::from_str(&text).unwrap();
    assert_eq!(list.tokens.len(), 2);

    // The narrower token cannot mint a wider one, in scope or in pattern.
    for body in [
        json!({"name": "wider", "scopes": ["publish-new"]}),
        json!({"name": "wider", "scopes": ["yank"], "pattern": "we*"}),
        json!({"name": "wider", "scopes": ["admin"]}),
    ] {
        let response = server
            .call(
                Method::POST,
                "/api/v1/tokens",
                Some(&created.token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body}");
    }
    // Alice is no admin: no admin-scoped token, no tokens for others, no users.
    let response = server
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&server.token),
            Some(json!({"name": "x", "scopes": ["yank"], "user": "root"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = server
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&server.token),
            Some(json!({"name": "carol"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Bad bodies are 400 and name what is wrong.
    let response = server
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&server.token),
            Some(json!({"name": "x", "scopes": ["everything"]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(error_of(response).await.message.contains("everything"));
    let response = server
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&server.token),
            Some(json!({"name": "x", "scopes": ["yank"], "expires_at": "2000-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        server
            .client
            .tokens(&UserName::new("alice").unwrap())
            .await
            .unwrap()
            .len(),
        2,
        "no refused request made a token"
    );

    // Revoked, it no longer works.
    let path = format!("/api/v1/tokens/{}", created.record.id);
    let response = server
        .call(Method::DELETE, &path, Some(&server.token), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = server
        .call(Method::GET, "/api/v1/me", Some(&created.token), None)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(error_of(response).await.message.contains("revoked"));
    let response = server
        .call(
            Method::DELETE,
            "/api/v1/tokens/0000000000000000",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // The admin creates users and tokens for them.
    let response = server
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&server.admin_token),
            Some(json!({"name": "carol"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = server
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&server.admin_token),
            Some(json!({"name": "carol"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let response = server
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&server.admin_token),
            Some(json!({"name": "carol's", "scopes": ["publish-new"], "user": "carol"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let carol: v1::CreatedToken = response.json().await.unwrap();
    assert_eq!(carol.record.user.as_str(), "carol");
    let response = server
        .call(
            Method::GET,
            "/api/v1/users",
            Some(&server.admin_token),
            None,
        )
        .await;
    let users: v1::UserList = response.json().await.unwrap();
    assert_eq!(users.users.len(), 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_register_and_revoke_their_own_signing_keys() {
    let server = Running::start().await;
    let (_, bob) = user_with_key(&server.client, "bob", &PUBLISHER).await;
    let fresh = server.client.generate_keypair().await.unwrap();
    let body = serde_json::to_value(v1::KeyRequest::new(&fresh.public_key)).unwrap();

    let response = server
        .call(Method::POST, "/api/v1/me/keys", None, Some(body.clone()))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = server
        .call(
            Method::POST,
            "/api/v1/me/keys",
            Some(&bob),
            Some(body.clone()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let keys: v1::UserKeys = response.json().await.unwrap();
    assert!(keys.keys.contains(&fresh.public_key.key_id().to_string()));
    assert_eq!(keys.keys.len(), 2);

    // Alice's key cannot become bob's.
    let alices = serde_json::to_value(v1::KeyRequest::new(&server.key.public_key)).unwrap();
    let response = server
        .call(Method::POST, "/api/v1/me/keys", Some(&bob), Some(alices))
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let response = server
        .call(
            Method::POST,
            "/api/v1/me/keys",
            Some(&bob),
            Some(json!({"algorithm": "ed25519", "public_key": "abc"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = server
        .call(Method::GET, "/api/v1/users/bob/keys", None, None)
        .await;
    let public: v1::UserKeys = response.json().await.unwrap();
    assert_eq!(public, keys);

    let path = format!(
        "/api/v1/me/keys/{}?reason=rotated",
        fresh.public_key.key_id()
    );
    let response = server.call(Method::DELETE, &path, Some(&bob), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let keys: v1::UserKeys = response.json().await.unwrap();
    assert_eq!(keys.keys.len(), 1);
    assert!(
        server
            .client
            .crypto()
            .is_revoked(&fresh.public_key.key_id())
            .await
            .unwrap()
    );
    // Alice cannot revoke bob's key.
    let bobs = server
        .client
        .keys_of(&UserName::new("bob").unwrap())
        .await
        .unwrap();
    let path = format!("/api/v1/me/keys/{}", bobs[0]);
    let response = server
        .call(Method::DELETE, &path, Some(&server.token), None)
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(!server.client.crypto().is_revoked(&bobs[0]).await.unwrap());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_server_answers_reads_only_with_a_token() {
    let server =
        Running::with_config(marketplace_server::ServerConfig::default().with_private(true)).await;
    assert_eq!(
        server
            .publish(&archive("web@1.0.0", "Web", &[]))
            .await
            .status(),
        StatusCode::CREATED
    );
    for path in [
        "/api/v1/search?q=web",
        "/api/v1/packages/web/versions",
        "/api/v1/keys",
    ] {
        let response = server.call(Method::GET, path, None, None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let response = server
            .call(Method::GET, path, Some(&server.token), None)
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let response = server
        .call(
            Method::GET,
            "/api/v1/packages/web/1.0.0/download",
            None,
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = server.call(Method::GET, "/health", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_published_on_the_home_is_not_claimed_over_http() {
    let server = Running::start().await;
    server
        .client
        .publish(archive("tool@1.0.0", "Tool", &[]), &server.key.private_key)
        .await
        .expect("published on the home");
    let response = server.publish(&archive("tool@1.1.0", "Tool", &[])).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(error_of(response).await.message.contains("nobody owns"));
    let tool = OwnerTarget::Package("tool".parse().unwrap());
    assert!(server.client.owners(&tool).await.unwrap().is_empty());
    assert_eq!(
        server
            .client
            .versions(&"tool".parse().unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
    // Once the operator names an owner, the owner publishes.
    server
        .client
        .add_owner(&tool, &UserName::new("alice").unwrap())
        .await
        .unwrap();
    let response = server.publish(&archive("tool@1.1.0", "Tool", &[])).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    server.stop().await;
}
