//! The signing payload is byte-for-byte stable: a golden vector is committed as a fixture.

use marketplace_core::{PackageMetadata, RenamedDependency, parse_requirement, signing_payload};

const METADATA: &str = include_str!("fixtures/signing_payload_v1.json");
const GOLDEN_HEX: &str = include_str!("fixtures/signing_payload_v1.hex");

fn fixture() -> PackageMetadata {
    serde_json::from_str(METADATA).expect("fixture metadata parses")
}

#[test]
fn payload_matches_the_golden_vector() {
    let payload = signing_payload(&fixture());
    assert_eq!(hex::encode(&payload), GOLDEN_HEX.trim());
}

#[test]
fn payload_ignores_mutable_fields_and_covers_immutable_ones() {
    let base = signing_payload(&fixture());

    let mut m = fixture();
    m.description = "changed".into();
    m.keywords.clear();
    m.categories.push("other".into());
    m.homepage = None;
    m.repository = None;
    m.signature = None;
    assert_eq!(
        signing_payload(&m),
        base,
        "mutable fields must not be signed"
    );

    let changes: [fn(&mut PackageMetadata); 7] = [
        |m| m.id.version = "1.2.4".parse().unwrap(),
        |m| m.id.namespace = None,
        |m| m.authors.push("Mallory".into()),
        |m| m.license = Some("MIT".parse().unwrap()),
        |m| {
            m.dependencies.clear();
        },
        |m| m.size += 1,
        |m| m.published_at += marketplace_core::time::Duration::SECOND,
    ];
    for change in changes {
        let mut m = fixture();
        change(&mut m);
        assert_ne!(
            signing_payload(&m),
            base,
            "an immutable field change must change the payload"
        );
    }
}

#[test]
fn renamed_dependencies_append_field_10_and_leave_other_payloads_as_they_were() {
    let base = signing_payload(&fixture());
    let renamed = |req: &str| RenamedDependency {
        package: "acme/http".parse().unwrap(),
        requirement: parse_requirement(req).unwrap(),
    };
    let mut m = fixture();
    m.renamed_dependencies
        .insert("http_02".parse().unwrap(), renamed("^0.2"));
    let with = signing_payload(&m);
    // Fields 0–9 unchanged, then field 10: count, alias, package, requirement.
    let mut tail = 1u32.to_be_bytes().to_vec();
    for s in ["http_02", "acme/http", "^0.2"] {
        tail.extend_from_slice(&(s.len() as u32).to_be_bytes());
        tail.extend_from_slice(s.as_bytes());
    }
    assert_eq!(with, [base.clone(), tail].concat());
    // The requirement and the alias are covered.
    let mut other = m.clone();
    other
        .renamed_dependencies
        .insert("http_02".parse().unwrap(), renamed("^0.3"));
    assert_ne!(signing_payload(&other), with);
    let mut alias = fixture();
    alias
        .renamed_dependencies
        .insert("http_2".parse().unwrap(), renamed("^0.2"));
    assert_ne!(signing_payload(&alias), with);
}

#[test]
fn payload_starts_with_the_domain_separator() {
    let payload = signing_payload(&fixture());
    assert!(payload.starts_with(marketplace_core::SIGNING_PAYLOAD_DOMAIN));
    assert_eq!(marketplace_core::SIGNING_PAYLOAD_DOMAIN.len(), 31);
}

#[test]
fn extensions_sign_over_layout_2_with_field_10_always_present() {
    let base = signing_payload(&fixture());
    let mut m = fixture();
    m.extensions
        .insert("cargo".into(), r#"{"features":{}}"#.into());
    let extended = signing_payload(&m);
    assert!(extended.starts_with(marketplace_core::SIGNING_PAYLOAD_DOMAIN_V2));
    // Fields 1–9 are version 1's, behind the other separator.
    let fields = &base[marketplace_core::SIGNING_PAYLOAD_DOMAIN.len()..];
    let rest = &extended[marketplace_core::SIGNING_PAYLOAD_DOMAIN_V2.len()..];
    assert!(rest.starts_with(fields), "fields 1-9 unchanged");
    // Field 10 (no renamed dependencies: count 0), then field 11.
    let mut tail = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5];
    tail.extend_from_slice(b"cargo");
    tail.extend_from_slice(&15u32.to_be_bytes());
    tail.extend_from_slice(br#"{"features":{}}"#);
    assert_eq!(&rest[fields.len()..], tail.as_slice());

    // The JSON text is signed as stored: another spelling of the same value is another payload.
    let mut spaced = m.clone();
    spaced
        .extensions
        .insert("cargo".into(), r#"{"features": {}}"#.into());
    assert_ne!(signing_payload(&spaced), extended);
    m.extensions.clear();
    assert_eq!(signing_payload(&m), base, "no extensions: version 1");
}
