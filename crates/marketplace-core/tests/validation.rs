//! Table-driven checks that bad input gives `Invalid` naming the field and the rule.

use marketplace_core::{
    ContentHash, Error, License, MetadataUpdate, Name, PackageId, PackageMetadata, PackageRef,
    RenamedDependency, parse_requirement, parse_url, parse_version,
};

/// Asserts `result` is `Invalid` for `field`, with `rule_part` in the rule and the message.
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Error>, field: &str, rule_part: &str) {
    match result {
        Err(Error::Invalid {
            field: f,
            rule,
            value,
        }) => {
            assert_eq!(f, field, "wrong field for value {value:?} (rule: {rule})");
            assert!(
                rule.contains(rule_part),
                "rule {rule:?} for {value:?} does not mention {rule_part:?}"
            );
        }
        other => panic!("expected Invalid {field} ({rule_part}), got {other:?}"),
    }
}

#[test]
fn invalid_names() {
    let cases = [
        ("", "must not be empty"),
        ("1abc", "must start with an ASCII letter"),
        ("-abc", "must start with an ASCII letter"),
        ("a b", "may contain only"),
        ("naïve", "may contain only"),
        ("a.b", "may contain only"),
        (&"a".repeat(65), "at most 64"),
        ("nul", "reserved"),
        ("CON", "reserved"),
        ("Lpt1", "reserved"),
    ];
    for (value, rule) in cases {
        assert_invalid(Name::new(value), "name", rule);
    }
    assert!(Name::new(&"a".repeat(64)).is_ok());
    assert!(Name::new("Web_Framework-2").is_ok());
}

#[test]
fn invalid_namespaces_name_the_namespace() {
    assert_invalid(
        "1acme/web".parse::<PackageRef>(),
        "name namespace",
        "must start",
    );
    assert_invalid("acme/".parse::<PackageRef>(), "name", "must not be empty");
    assert_invalid(Name::for_field("namespace", "nul"), "namespace", "reserved");
}

#[test]
fn invalid_versions() {
    for value in [
        "", "1", "1.2", "v1.2.3", "1.2.3.4", "01.2.3", "1.2.x", "latest",
    ] {
        assert_invalid(parse_version(value), "version", "semantic version");
    }
    assert_invalid(
        "web@1.x".parse::<PackageId>(),
        "version",
        "semantic version",
    );
    assert_invalid("web".parse::<PackageId>(), "package id", "name@version");
}

#[test]
fn invalid_requirements() {
    for value in ["", "abc", ">>1", "^1.2.3.4", "1.2.3 2.0", "=>1", "*.1"] {
        assert_invalid(
            parse_requirement(value),
            "requirement",
            "version requirement",
        );
    }
    assert_eq!(parse_requirement("1.2").unwrap().to_string(), "^1.2");
}

#[test]
fn invalid_hashes() {
    let good = ContentHash::sha256(b"x").to_string();
    let cases = [
        ("", "form <algorithm>:<lowercase hex>"),
        ("deadbeef", "form <algorithm>:<lowercase hex>"),
        ("md5:d41d8cd98f00b204e9800998ecf8427e", "one of sha256"),
        ("sha256:abc", "64 hex digits"),
        ("sha256:", "64 hex digits"),
        (
            &good.to_uppercase().replace("SHA256", "sha256"),
            "lowercase hex",
        ),
        (&good.replace(&good[7..9], "zz"), "lowercase hex"),
        (&format!("{good}00"), "64 hex digits"),
    ];
    for (value, rule) in cases {
        let field = if rule == "one of sha256" {
            "hash algorithm"
        } else {
            "content hash"
        };
        assert_invalid(value.parse::<ContentHash>(), field, rule);
    }
}

#[test]
fn invalid_urls() {
    for (value, rule) in [
        ("", "absolute URL"),
        ("example.com", "absolute URL"),
        ("ftp://example.com/x", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("file:///etc/passwd", "http or https"),
    ] {
        assert_invalid(parse_url("homepage", value), "homepage", rule);
    }
    assert!(parse_url("repository", "https://example.com/acme/web").is_ok());
}

#[test]
fn invalid_licenses() {
    for value in [
        "",
        "MIT OR",
        "NotALicense-1.0",
        "MIT AND (Apache-2.0",
        "GPL-2.0+ WITH",
    ] {
        assert_invalid(License::new(value), "license", "SPDX");
    }
    for value in [
        "MIT",
        "MIT OR Apache-2.0",
        "Apache-2.0 WITH LLVM-exception",
        "LicenseRef-Acme",
    ] {
        assert!(
            License::new(value).is_ok(),
            "{value} should be a valid license"
        );
    }
}

/// Licenses as older registries wrote them are accepted, keeping the text as written beside
/// the normalised SPDX expression; a refusal names the likely fix.
#[test]
fn loose_licenses_are_normalised_and_refusals_suggest_a_fix() {
    for (written, spdx) in [
        ("MIT/Apache-2.0", "MIT OR Apache-2.0"),
        ("Apache-2.0 / MIT", "Apache-2.0 OR MIT"),
        ("MIT or Apache-2.0", "MIT OR Apache-2.0"),
        ("GPL-3.0+", "GPL-3.0-or-later"),
    ] {
        let license = License::new(written).unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(license.as_str(), written, "the text as written is kept");
        assert_eq!(license.spdx(), spdx, "{written}");
        assert!(license.was_normalised(), "{written}");
    }
    let strict = License::new("MIT OR Apache-2.0").unwrap();
    assert_eq!(strict.spdx(), "MIT OR Apache-2.0");
    assert!(!strict.was_normalised());
    assert_invalid(
        License::new("Proprietary"),
        "license",
        "write LicenseRef-Proprietary",
    );
    assert_invalid(License::new("MIT and/or Apache-2.0"), "license", "and/or");
}

/// Category slugs as crates.io has them: segments joined by `::`.
#[test]
fn categories_take_the_crates_io_grammar() {
    for ok in [
        "development-tools::debugging",
        "command-line-utilities",
        "web-programming::http-server",
        "a::b::c",
    ] {
        let mut m = metadata();
        m.categories = vec![ok.into()];
        assert!(m.validate().is_ok(), "{ok} should be a valid category");
    }
    for bad in [
        "development-tools:debugging",
        "::debugging",
        "development-tools::",
        "a:::b",
        "a::::b",
        "web dev::http",
        "a::-b",
    ] {
        let mut m = metadata();
        m.categories = vec![bad.into()];
        assert_invalid(m.validate(), "categories", "joined by '::'");
    }
}

fn metadata() -> PackageMetadata {
    PackageMetadata::new(
        "acme/web@1.0.0".parse().unwrap(),
        "A web template",
        ContentHash::sha256(b"web"),
        3,
    )
}

#[test]
fn invalid_metadata_fields() {
    type Case = (&'static str, &'static str, fn(&mut PackageMetadata));
    let cases: [Case; 9] = [
        ("keywords", "at most 10", |m| {
            m.keywords = (0..11).map(|i| format!("k{i}")).collect()
        }),
        ("keywords", "at most 32", |m| {
            m.keywords = vec!["k".repeat(33)]
        }),
        ("keywords", "must start with", |m| {
            m.keywords = vec!["-web".into()]
        }),
        ("keywords", "must not be empty", |m| {
            m.keywords = vec![String::new()]
        }),
        ("categories", "at most 5", |m| {
            m.categories = (0..6).map(|i| format!("c{i}")).collect()
        }),
        ("categories", "only letters", |m| {
            m.categories = vec!["web dev".into()]
        }),
        ("description", "at most 2000", |m| {
            m.description = "x".repeat(2001)
        }),
        ("description", "control characters", |m| {
            m.description = "bell\u{7}".into()
        }),
        ("dependencies", "depend on itself", |m| {
            m.dependencies
                .insert("Acme/Web".parse().unwrap(), parse_requirement("1").unwrap());
        }),
    ];
    for (field, rule, change) in cases {
        let mut m = metadata();
        change(&mut m);
        assert_invalid(m.validate(), field, rule);
    }
    assert!(metadata().validate().is_ok());
}

#[test]
fn dependencies_on_another_series_of_itself_and_under_other_names_are_valid() {
    let renamed = |package: &str, req: &str| RenamedDependency {
        package: package.parse().unwrap(),
        requirement: parse_requirement(req).unwrap(),
    };
    // acme/web 1.0.0 on acme/web 0.9 (the semver trick), and on acme/http twice.
    let mut m = metadata();
    m.dependencies.insert(
        "acme/web".parse().unwrap(),
        parse_requirement("^0.9").unwrap(),
    );
    m.dependencies.insert(
        "acme/http".parse().unwrap(),
        parse_requirement("^1").unwrap(),
    );
    m.renamed_dependencies
        .insert("http0".parse().unwrap(), renamed("acme/http", "^0.4"));
    m.validate().unwrap();
    assert_eq!(m.all_dependencies().count(), 3);

    // A requirement its own version meets is a dependency on itself, renamed or not.
    let mut own = metadata();
    own.renamed_dependencies
        .insert("me".parse().unwrap(), renamed("Acme/Web", ">=0.9"));
    assert_invalid(own.validate(), "dependencies.me", "cannot depend on itself");
    // An alias is a name of its own: not another dependency's.
    let mut clash = metadata();
    clash
        .dependencies
        .insert("log".parse().unwrap(), parse_requirement("^0.4").unwrap());
    clash
        .renamed_dependencies
        .insert("Log".parse().unwrap(), renamed("acme/log", "^1"));
    assert_invalid(clash.validate(), "dependencies", "same dependency name");
    // Plain dependencies on one package under two spellings stay refused.
    let mut twice = metadata();
    for spelling in ["acme/http", "acme/HTTP"] {
        twice
            .dependencies
            .insert(spelling.parse().unwrap(), parse_requirement("^1").unwrap());
    }
    assert_invalid(twice.validate(), "dependencies", "name the same package");
}

#[test]
fn metadata_updates_are_validated_with_the_same_rules() {
    let update = MetadataUpdate {
        keywords: Some(vec!["bad keyword".into()]),
        ..MetadataUpdate::default()
    };
    assert_invalid(update.validate(), "keywords", "only letters");
    let mut m = metadata();
    let good = MetadataUpdate {
        description: Some("New words".into()),
        homepage: Some(Some(parse_url("homepage", "https://example.com").unwrap())),
        ..MetadataUpdate::default()
    };
    good.validate().unwrap();
    good.apply_to(&mut m);
    assert_eq!(m.description, "New words");
    assert_eq!(m.homepage.unwrap().as_str(), "https://example.com/");
}

#[test]
fn error_messages_name_field_value_and_rule() {
    let err = Name::new("1abc").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid name "1abc": must start with an ASCII letter"#
    );
}

#[test]
fn extensions_are_named_json_texts_within_bounds() {
    let mut m = marketplace_core::PackageMetadata::new(
        "ext@1.0.0".parse().unwrap(),
        "",
        marketplace_core::ContentHash::sha256(b""),
        0,
    );
    m.extensions.insert("cargo".into(), r#"{"v":2}"#.into());
    m.validate().expect("a named JSON text is valid");
    for (name, value, says) in [
        ("Cargo", "{}", "lowercase"),
        ("", "{}", "lowercase"),
        ("cargo", "{not json", "JSON text"),
        ("cargo", "", "JSON text"),
    ] {
        let mut bad = m.clone();
        bad.extensions.clear();
        bad.extensions.insert(name.into(), value.into());
        let e = bad.validate().expect_err("refused");
        assert!(e.to_string().contains(says), "{name:?}={value:?}: {e}");
    }
    let mut big = m.clone();
    big.extensions.insert(
        "big".into(),
        format!("\"{}\"", "x".repeat(marketplace_core::MAX_EXTENSION_BYTES)),
    );
    let e = big.validate().expect_err("too big");
    assert!(e.to_string().contains("at most"), "{e}");
    let mut many = m.clone();
    for i in 0..=marketplace_core::MAX_EXTENSIONS {
        many.extensions.insert(format!("x{i}"), "1".into());
    }
    assert!(many.validate().is_err(), "too many extensions");
}
