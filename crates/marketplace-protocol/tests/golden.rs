//! The v1 wire format is what `tests/fixtures/v1/*.json` say, byte for byte, and every fixture
//! reads back into the core value it was written from. A change to the API shows up here as a
//! diff of a fixture. `UPDATE_GOLDEN=1 cargo test -p marketplace-protocol` rewrites the
//! fixtures (review the diff: within v1, fields may only be added).

use std::collections::BTreeMap;
use std::path::PathBuf;

use marketplace_core::semver::Version;
use marketplace_core::{
    ContentHash, DailyDownloads, DependencyGraph, Error, EventKind, GraphNode, MetadataUpdate,
    PackageMetadata, PackageStats, PublicKey, RegistryEvent, SearchQuery, SearchResult, Signature,
    SignatureFailure, SortOrder, TrustLevel, TrustResult, TrustedKey, VersionState, YankInfo,
    parse_requirement,
};
use marketplace_protocol::v1;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::macros::{date, datetime};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v1")
        .join(format!("{name}.json"))
}

/// Serialises `value`, compares it with the fixture, and returns the fixture parsed back.
fn golden<T: Serialize + DeserializeOwned>(name: &str, value: &T) -> T {
    let mut json = serde_json::to_string_pretty(value).expect("serialise");
    json.push('\n');
    let path = fixture_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &json).expect("write fixture");
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(json, expected, "the wire form of {name} changed");
    serde_json::from_str(&expected).expect("the fixture parses")
}

fn signed_metadata() -> PackageMetadata {
    let mut m = PackageMetadata::new(
        "acme/web-framework@1.2.3+build.5".parse().unwrap(),
        "Routing and templates for web services",
        ContentHash::sha256(b"archive"),
        4096,
    );
    m.authors = vec!["Jane Doe <jane@example.com>".into()];
    m.license = Some("MIT OR Apache-2.0".parse().unwrap());
    m.repository = Some("https://example.com/acme/web".parse().unwrap());
    m.keywords = vec!["web".into(), "http".into()];
    m.categories = vec!["templates".into()];
    m.dependencies.insert(
        "acme/http".parse().unwrap(),
        parse_requirement("^1.2").unwrap(),
    );
    m.dependencies.insert(
        "logging".parse().unwrap(),
        parse_requirement("0.3").unwrap(),
    );
    m.signature = Some(Signature {
        public_key: PublicKey::ed25519(vec![7u8; 32]).unwrap(),
        bytes: vec![9u8; 64],
    });
    m.published_at = datetime!(2026-11-24 10:00:00.5 UTC);
    m
}

fn plain_metadata(id: &str) -> PackageMetadata {
    let mut m = PackageMetadata::new(
        id.parse().unwrap(),
        "",
        ContentHash::sha256(id.as_bytes()),
        10,
    );
    m.published_at = datetime!(2026-11-24 10:00:00 UTC);
    m
}

#[test]
fn version_metadata() {
    let m = signed_metadata();
    let back = golden("version_metadata", &v1::VersionMetadata::from(&m));
    assert_eq!(PackageMetadata::try_from(back).unwrap(), m);
}

#[test]
fn version_metadata_with_a_loose_license_and_a_renamed_dependency() {
    let mut m = signed_metadata();
    m.license = Some(marketplace_core::License::new("MIT/Apache-2.0").unwrap());
    m.renamed_dependencies.insert(
        marketplace_core::Name::new("http_02").unwrap(),
        marketplace_core::RenamedDependency {
            package: "acme/http".parse().unwrap(),
            requirement: "^0.2".parse().unwrap(),
        },
    );
    let back = golden("version_metadata_renamed", &v1::VersionMetadata::from(&m));
    assert_eq!(back.license_spdx.as_deref(), Some("MIT OR Apache-2.0"));
    assert_eq!(PackageMetadata::try_from(back).unwrap(), m);
}

#[test]
fn version_list() {
    let states = vec![
        VersionState::new(
            Version::new(1, 0, 0),
            Some(YankInfo::new(
                "unsound parser; use 1.1.0",
                datetime!(2026-11-25 08:30:00 UTC),
            )),
        ),
        VersionState::new(Version::new(1, 1, 0), None),
    ];
    let list = v1::VersionList::new(&"acme/web".parse().unwrap(), &states);
    assert_eq!(golden("version_list", &list).states().unwrap(), states);
}

#[test]
fn a_yank_without_its_reason_or_a_reason_without_a_yank_is_refused() {
    for (entry, rule) in [
        (
            r#"{"version":"1.0.0","yanked":true}"#,
            "exactly when it has yank_reason and yanked_at",
        ),
        (
            r#"{"version":"1.0.0","yanked":true,"yank_reason":"x"}"#,
            "come together",
        ),
        (
            r#"{"version":"1.0.0","yanked":false,"yank_reason":"x","yanked_at":"2026-11-25T08:30:00Z"}"#,
            "exactly when",
        ),
    ] {
        let list: v1::VersionList =
            serde_json::from_str(&format!(r#"{{"package":"acme/web","versions":[{entry}]}}"#))
                .unwrap();
        let err = list.states().unwrap_err();
        assert!(err.to_string().contains(rule), "{entry}: {err}");
    }
}

#[test]
fn package_info_with_stats() {
    let id = "acme/web@1.1.0".parse().unwrap();
    let stats = PackageStats::new(
        id,
        3,
        5,
        BTreeMap::from([(Version::new(1, 0, 0), 2), (Version::new(1, 1, 0), 3)]),
        vec![DailyDownloads::new(date!(2026 - 11 - 24), 5)],
    );
    let yank = YankInfo::new("broken build", datetime!(2026-11-26 12:00:00 UTC));
    let info = v1::PackageInfo {
        metadata: v1::VersionMetadata::from(&plain_metadata("acme/web@1.1.0")),
        yanked: true,
        yank: v1::YankFields::new(Some(&yank)),
        stats: v1::Stats::from(&stats),
    };
    let back = golden("package_info", &info);
    assert_eq!(back.yank.to_yank("yank", "1.1.0").unwrap(), Some(yank));
    assert_eq!(PackageStats::try_from(back.stats).unwrap(), stats);
    let mut bad = v1::Stats::from(&stats);
    bad.last_30_days[0].date = "2026-13-01".into();
    let err = PackageStats::try_from(bad).unwrap_err();
    assert!(err.to_string().contains("last_30_days.date"), "{err}");
}

#[test]
fn resolved_graph() {
    let app = plain_metadata("g/app@1.0.0");
    let base = plain_metadata("g/base@1.1.0");
    let graph = DependencyGraph::new(
        app.id.clone(),
        BTreeMap::from([
            (
                app.id.clone(),
                GraphNode::new(app.clone(), vec![base.id.clone()]),
            ),
            (
                base.id.clone(),
                // Pinned exactly although yanked: the node carries why.
                GraphNode::new(base, vec![]).with_yank(Some(YankInfo::new(
                    "wrong checksum algorithm",
                    datetime!(2026-11-26 12:00:00 UTC),
                ))),
            ),
        ]),
    );
    let back = golden("resolved_graph", &v1::ResolvedGraph::from(&graph));
    assert_eq!(DependencyGraph::try_from(back).unwrap(), graph);
}

#[test]
fn search_results() {
    let mut hit = SearchResult::from_record(
        &marketplace_core::PackageRecord::new(signed_metadata()),
        2.5,
        vec!["Routing and <b>templates</b>".into()],
    );
    hit.downloads = 42;
    let results = v1::SearchResults {
        hits: vec![v1::SearchHit::from(&hit)],
    };
    let back = golden("search_results", &results);
    assert_eq!(SearchResult::try_from(back.hits[0].clone()).unwrap(), hit);
}

#[test]
fn change_feed() {
    let id: marketplace_core::PackageId = "acme/web@1.0.0".parse().unwrap();
    let at = datetime!(2026-11-24 10:00:00 UTC);
    let events = vec![
        RegistryEvent::new(
            1,
            at,
            EventKind::Registered {
                id: id.clone(),
                checksum: ContentHash::sha256(b"archive"),
            },
        ),
        RegistryEvent::new(
            2,
            at,
            EventKind::Yanked {
                id: id.clone(),
                reason: "broken build".into(),
            },
        ),
        RegistryEvent::new(3, at, EventKind::Unyanked { id: id.clone() }),
        RegistryEvent::new(
            4,
            at,
            EventKind::MetadataUpdated {
                id,
                update: Box::new(MetadataUpdate {
                    description: Some("New words".into()),
                    homepage: Some(None),
                    ..MetadataUpdate::default()
                }),
            },
        ),
    ];
    let page = v1::EventPage {
        events: events
            .iter()
            .map(|e| v1::Event::try_from(e).unwrap())
            .collect(),
    };
    let back = golden("event_page", &page);
    let read: Vec<RegistryEvent> = back
        .events
        .into_iter()
        .map(|e| RegistryEvent::try_from(e).unwrap())
        .collect();
    assert_eq!(read, events);
}

#[test]
fn keys() {
    let key = PublicKey::ed25519(vec![7u8; 32]).unwrap();
    let trusted = TrustedKey::new(
        key.clone(),
        TrustResult::Trusted {
            key_id: key.key_id(),
            level: TrustLevel::Full,
            since: datetime!(2026-11-24 10:00:00 UTC),
        },
    );
    let back = golden(
        "keys",
        &v1::KeyList {
            keys: vec![v1::KeyEntry::from(&trusted)],
        },
    );
    assert_eq!(back.keys[0].public_key().unwrap(), key);
    assert_eq!(back.keys[0].level(), Some(TrustLevel::Full));
}

#[test]
fn facets() {
    let facets = marketplace_core::Facets::new(
        vec![("web".into(), 12), ("cli".into(), 3)],
        vec![("http".into(), 9)],
        vec![("acme".into(), 4)],
    );
    let back = golden("facet_counts", &v1::FacetCounts::from(&facets));
    assert_eq!(marketplace_core::Facets::from(back), facets);
}

#[test]
fn suggestions() {
    golden(
        "suggestions",
        &v1::Suggestions {
            names: vec!["acme/web".into(), "webby".into()],
        },
    );
}

/// The publish header carries the signature that `SignatureBody` spells, and reads back.
#[test]
fn signature_header() {
    let signature = signed_metadata().signature.unwrap();
    let value = v1::SignatureBody::from(&signature).header_value();
    assert_eq!(v1::SignatureBody::from_header(&value).unwrap(), signature);
    for bad in [
        "",
        "ed25519",
        "rsa 00 00",
        "ed25519 zz 00",
        &format!("{value} extra"),
    ] {
        let e = v1::SignatureBody::from_header(bad).unwrap_err();
        assert_eq!(
            e.kind(),
            marketplace_core::ErrorKind::Invalid,
            "{bad:?}: {e}"
        );
    }
}

#[test]
fn writes_and_errors() {
    golden(
        "yank_request",
        &v1::YankRequest {
            reason: "security: CVE-2026-0001".into(),
        },
    );
    golden(
        "publish_response",
        &v1::PublishResponse {
            id: "acme/web@1.0.0".into(),
            checksum: ContentHash::sha256(b"archive").to_string(),
            size: 4096,
            indexed: true,
        },
    );
    let error = Error::invalid("name", "1bad", "must start with an ASCII letter");
    let back = golden("error", &v1::ErrorResponse::from(&error));
    assert_eq!(back.error.kind(), marketplace_core::ErrorKind::Invalid);
}

#[test]
fn an_error_body_reads_back_as_the_error_it_was_written_from() {
    let errors = [
        Error::not_found("package acme/web@1.0.0"),
        Error::already_exists("package acme/web@1.0.0"),
        Error::invalid("name", "1 \"bad\"", "must start with an ASCII letter"),
        Error::integrity("sha256:ab", "sha256:ab", "sha256:cd"),
        Error::signature(
            "package acme/web@1.0.0",
            SignatureFailure::Revoked,
            "key 00ff was revoked: leaked",
        ),
        Error::Unauthorized {
            what: "publish acme/web: alice does not own acme".into(),
        },
        Error::Conflict {
            root: "acme/app@1.0.0".into(),
            explanation: "acme/a ^1 and acme/a ^2 clash".into(),
            trace: String::new(),
        },
    ];
    for error in errors {
        let body = v1::ErrorResponse::from(&error).error;
        let back = body.to_error("remote", "read", false);
        assert_eq!(back.kind(), error.kind(), "{error}");
        assert_eq!(back.to_string(), error.to_string());
        assert_eq!(back.signature_failure(), error.signature_failure());
    }
    let backend = Error::backend("sqlite", "register", "disk full", true);
    let body = v1::ErrorResponse::from(&backend).error;
    let back = body.to_error("remote", "publish", true);
    assert_eq!(back.kind(), marketplace_core::ErrorKind::Backend);
    assert!(back.is_transient());
    assert!(back.to_string().contains("disk full"), "{back}");
    // A kind a later server adds reads as a backend failure.
    let unknown = v1::ErrorBody {
        kind: "quota".into(),
        message: "over quota".into(),
        field: None,
        hint: None,
        failure: None,
    };
    assert_eq!(
        unknown.to_error("remote", "publish", false).kind(),
        marketplace_core::ErrorKind::Backend
    );
}

#[test]
fn search_parameters_say_the_whole_query() {
    let query = SearchQuery::text("web framework")
        .with_categories(vec!["web".to_owned(), "http".to_owned()])
        .with_sort(SortOrder::Downloads)
        .with_limit(50);
    let params = v1::SearchParams::from(&query);
    assert_eq!(params.q.as_deref(), Some("web framework"));
    assert_eq!(params.categories.as_deref(), Some("web,http"));
    assert_eq!(params.keywords, None);
    assert_eq!(params.sort.as_deref(), Some("downloads"));
    assert_eq!(params.limit, Some(50));
    assert_eq!(params.forgive_short_typos, Some(false));
}

#[test]
fn hostile_bodies_are_invalid_not_panics() {
    let mut wire = v1::VersionMetadata::from(&signed_metadata());
    for (field, mutate) in [
        (
            "name",
            Box::new(|w: &mut v1::VersionMetadata| w.name = "1bad".into())
                as Box<dyn Fn(&mut v1::VersionMetadata)>,
        ),
        ("version", Box::new(|w| w.version = "one".into())),
        ("checksum", Box::new(|w| w.checksum = "sha256:zz".into())),
        (
            "dependencies",
            Box::new(|w| {
                w.dependencies.insert("ok".into(), "not a req".into());
            }),
        ),
        (
            "signature.key_id",
            Box::new(|w| {
                if let Some(s) = &mut w.signature {
                    s.key_id = "00".repeat(16);
                }
            }),
        ),
        (
            "signature.public_key",
            Box::new(|w| {
                if let Some(s) = &mut w.signature {
                    s.public_key = "abc".into();
                }
            }),
        ),
        (
            "license",
            Box::new(|w| w.license = Some("Not A License".into())),
        ),
    ] {
        let mut bad = wire.clone();
        mutate(&mut bad);
        let err = PackageMetadata::try_from(bad).expect_err(field);
        assert_eq!(
            err.kind(),
            marketplace_core::ErrorKind::Invalid,
            "{field}: {err}"
        );
    }
    wire.keywords = (0..50).map(|i| format!("k{i}")).collect();
    assert!(
        PackageMetadata::try_from(wire).is_err(),
        "the core's rules apply too"
    );
}

#[test]
fn accounts() {
    use marketplace_core::{Scope, TokenRecord, User, UserName};
    let alice = UserName::new("alice").unwrap();
    let mut user = User::new(alice.clone(), true);
    user.created_at = datetime!(2026-12-01 09:00 UTC);
    let mut token = TokenRecord::new(
        "0123456789abcdef".into(),
        alice.clone(),
        "ci publish",
        [Scope::PublishUpdate, Scope::PublishNew],
    )
    .unwrap()
    .with_pattern(Some("acme/*".parse().unwrap()))
    .with_expiry(Some(datetime!(2027-12-01 09:00 UTC)));
    token.created_at = datetime!(2026-12-01 09:05 UTC);
    let entry = golden(
        "created_token",
        &v1::CreatedToken {
            token: format!("mkt_{}", "ab".repeat(32)),
            record: v1::TokenEntry::from(&token),
        },
    );
    assert_eq!(entry.record.scopes, token.scopes);
    golden(
        "me",
        &v1::Me {
            user: v1::UserEntry::from(&user),
            token: v1::TokenEntry::from(&token),
        },
    );
    let request = golden(
        "token_request",
        &v1::TokenRequest {
            name: "ci publish".into(),
            scopes: vec![Scope::PublishNew, Scope::PublishUpdate],
            pattern: Some("acme/*".parse().unwrap()),
            expires_at: Some(datetime!(2027-12-01 09:00 UTC)),
            user: None,
        },
    );
    assert_eq!(request.pattern.unwrap().as_str(), "acme/*");
    golden(
        "owners_request",
        &v1::OwnersRequest {
            users: vec![UserName::new("bob").unwrap()],
        },
    );
    let key = PublicKey::ed25519(vec![7; 32]).unwrap();
    let back = golden("key_request", &v1::KeyRequest::new(&key));
    assert_eq!(back.public_key().unwrap(), key);
    golden(
        "yank_response",
        &v1::YankResponse {
            id: "acme/web@1.0.0".into(),
            yanked: true,
        },
    );
}

#[test]
fn account_requests_with_bad_fields_are_refused_naming_them() {
    for (body, needle) in [
        (r#"{"name":"x","scopes":["publish-everything"]}"#, "scope"),
        (
            r#"{"name":"x","scopes":["yank"],"pattern":"a/b/c"}"#,
            "pattern",
        ),
        (
            r#"{"name":"x","scopes":["yank"],"user":"Bad User"}"#,
            "user",
        ),
        (
            r#"{"name":"x","scopes":["yank"],"expires_at":"tomorrow"}"#,
            "could not be parsed",
        ),
    ] {
        let e = serde_json::from_str::<v1::TokenRequest>(body).unwrap_err();
        assert!(
            e.to_string().contains(needle) || e.to_string().contains("unknown"),
            "{body}: {e}"
        );
    }
    let bad_key = v1::KeyRequest {
        algorithm: "ed25519".into(),
        public_key: "zz".into(),
    };
    assert_eq!(
        bad_key.public_key().unwrap_err().kind(),
        marketplace_core::ErrorKind::Invalid
    );
    let rsa = v1::KeyRequest {
        algorithm: "rsa".into(),
        public_key: "00".into(),
    };
    assert!(
        rsa.public_key()
            .unwrap_err()
            .to_string()
            .contains("ed25519")
    );
}

#[test]
fn batch() {
    let signature = signed_metadata().signature.expect("signed");
    let request = golden(
        "batch_request",
        &v1::BatchRequest {
            packages: vec![v1::BatchItem::new(
                b"archive bytes",
                &signature,
                datetime!(2026-12-01 09:00 UTC),
            )],
        },
    );
    assert_eq!(
        request.packages[0].archive_bytes().unwrap(),
        b"archive bytes"
    );
    let bad = v1::BatchItem {
        archive: "not base64!".into(),
        ..request.packages[0].clone()
    };
    assert_eq!(
        bad.archive_bytes().unwrap_err().kind(),
        marketplace_core::ErrorKind::Invalid
    );
    let error = Error::already_exists("package web@1.0.0");
    golden(
        "batch_response",
        &v1::BatchResponse {
            published: vec![v1::PublishResponse {
                id: "acme/web@1.0.0".into(),
                checksum: ContentHash::sha256(b"archive").to_string(),
                size: 4096,
                indexed: true,
            }],
            refused: vec![v1::BatchRefusal {
                index: 1,
                error: v1::ErrorResponse::from(&error).error,
            }],
        },
    );
}
