//! Property tests: `Display` and `FromStr` round-trip for ids, requirements and hashes, and
//! serde round-trips for metadata.

use marketplace_core::semver::{Version, VersionReq};
use marketplace_core::{ContentHash, HashAlgorithm, PackageId, PackageMetadata, PackageRef};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_-]{0,63}".prop_filter("reserved", |n| {
        !marketplace_core::RESERVED_NAMES.contains(&n.to_ascii_lowercase().as_str())
    })
}

fn version() -> impl Strategy<Value = Version> {
    (
        0u64..1000,
        0u64..1000,
        0u64..1000,
        proptest::option::of("(alpha|beta|rc)(\\.[1-9][0-9]{0,2})?"),
        proptest::option::of("build\\.[0-9]{1,3}"),
    )
        .prop_map(|(major, minor, patch, pre, build)| {
            let mut text = format!("{major}.{minor}.{patch}");
            if let Some(pre) = pre {
                text.push('-');
                text.push_str(&pre);
            }
            if let Some(build) = build {
                text.push('+');
                text.push_str(&build);
            }
            Version::parse(&text).expect("generated version parses")
        })
}

fn requirement() -> impl Strategy<Value = String> {
    let comparator = (
        prop::sample::select(vec!["", "=", ">", ">=", "<", "<=", "~", "^"]),
        0u64..50,
        proptest::option::of((0u64..50, proptest::option::of(0u64..50))),
    )
        .prop_map(|(op, major, rest)| match rest {
            None => format!("{op}{major}"),
            Some((minor, None)) => format!("{op}{major}.{minor}"),
            Some((minor, Some(patch))) => format!("{op}{major}.{minor}.{patch}"),
        });
    prop_oneof![
        Just("*".to_string()),
        proptest::collection::vec(comparator, 1..4).prop_map(|c| c.join(", ")),
    ]
}

proptest! {
    #[test]
    fn package_id_round_trips(ns in proptest::option::of(name()), n in name(), v in version()) {
        let text = match &ns {
            Some(ns) => format!("{ns}/{n}@{v}"),
            None => format!("{n}@{v}"),
        };
        let id: PackageId = text.parse().unwrap();
        prop_assert_eq!(id.to_string(), text.clone());
        prop_assert_eq!(id.to_string().parse::<PackageId>().unwrap(), id.clone());
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(serde_json::from_str::<PackageId>(&json).unwrap(), id.clone());
        let package: PackageRef = id.package().to_string().parse().unwrap();
        prop_assert_eq!(package, id.package());
    }

    #[test]
    fn requirement_round_trips(text in requirement()) {
        let req = VersionReq::parse(&text).unwrap();
        let shown = req.to_string();
        let reparsed = marketplace_core::parse_requirement(&shown).unwrap();
        prop_assert_eq!(&reparsed, &req);
        prop_assert_eq!(reparsed.to_string(), shown);
    }

    #[test]
    fn content_hash_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..256), long in any::<bool>()) {
        let hash = if long {
            ContentHash::new(HashAlgorithm::Sha512, [bytes.first().copied().unwrap_or(0); 64].to_vec()).unwrap()
        } else {
            ContentHash::sha256(&bytes)
        };
        let text = hash.to_string();
        let prefix = if long { "sha512:" } else { "sha256:" };
        prop_assert!(text.starts_with(prefix));
        prop_assert_eq!(text.parse::<ContentHash>().unwrap(), hash.clone());
        let json = serde_json::to_string(&hash).unwrap();
        prop_assert_eq!(serde_json::from_str::<ContentHash>(&json).unwrap(), hash);
    }

    #[test]
    fn any_string_parses_or_fails_cleanly(s in "\\PC{0,80}") {
        // Parsing never panics; it either succeeds or names a field.
        let errors = [
            s.parse::<PackageId>().err(),
            s.parse::<PackageRef>().err(),
            s.parse::<ContentHash>().err(),
            marketplace_core::parse_requirement(&s).err(),
        ];
        for err in errors.into_iter().flatten() {
            prop_assert_eq!(err.kind(), marketplace_core::ErrorKind::Invalid);
        }
    }
}

#[test]
fn metadata_serde_round_trips() {
    let mut m = PackageMetadata::new(
        "acme/web@1.2.3-rc.1+b7".parse().unwrap(),
        "Web template",
        ContentHash::sha256(b"x"),
        1,
    );
    m.dependencies.insert(
        "acme/http".parse().unwrap(),
        marketplace_core::parse_requirement("1.2").unwrap(),
    );
    m.license = Some("MIT OR Apache-2.0".parse().unwrap());
    let json = serde_json::to_string(&m).unwrap();
    let back: PackageMetadata = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
    // Deserialising goes through validation of every typed field.
    let bad = json.replace("acme/http", "acme/1http");
    assert!(serde_json::from_str::<PackageMetadata>(&bad).is_err());
}

#[test]
fn a_metadata_update_keeps_cleared_apart_from_unchanged_through_json() {
    use marketplace_core::{MetadataUpdate, parse_url};
    let url = parse_url("homepage", "https://example.com/").unwrap();
    for update in [
        MetadataUpdate::default(),
        MetadataUpdate {
            homepage: Some(None),
            repository: Some(Some(url.clone())),
            ..MetadataUpdate::default()
        },
        MetadataUpdate {
            description: Some("d".into()),
            homepage: Some(Some(url)),
            repository: Some(None),
            ..MetadataUpdate::default()
        },
    ] {
        let json = serde_json::to_string(&update).unwrap();
        let back: MetadataUpdate = serde_json::from_str(&json).unwrap();
        assert_eq!(back, update, "{json}");
    }
    let cleared = MetadataUpdate {
        homepage: Some(None),
        ..MetadataUpdate::default()
    };
    assert_eq!(
        serde_json::to_string(&cleared).unwrap(),
        r#"{"homepage":null}"#
    );
}
