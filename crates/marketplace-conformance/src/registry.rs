//! The `Registry` suite, including dependency resolution and a model-based property check.

use std::collections::BTreeMap;

use futures::future::join_all;
use marketplace_core::semver::{Version, VersionReq};
use marketplace_core::{
    DependencyGraph, Error, ErrorKind, EventKind, HashAlgorithm, MetadataUpdate, PackageId,
    PackageMetadata, PackageRef, Registry, ResolutionPolicy, ResolveOptions, parse_requirement,
    resolve_graph,
};
use proptest::prelude::*;

use crate::Capabilities;
use crate::fixtures::{full_package, package};
use crate::property::property;
use crate::report::{CheckResult, Context, SuiteReport, ensure, ensure_eq, expect_kind, same_list};

/// Runs every `Registry` check against `registry`, which must be empty when the suite starts.
///
/// Checks: registration and lookup, canonical names, duplicates (also concurrent), validation
/// that changes nothing, version listing and `resolve_version` (pre-releases, yanked, pins),
/// yank/unyank, metadata updates, listings and pagination, download statistics, the event log,
/// batches, dependency resolution (diamond, backtracking, conflicts, cycles, yanked,
/// pre-releases, a 50-package graph; an overriding backend must match the provided method),
/// and a property check against a model over random operation sequences.
pub async fn registry_suite(registry: &dyn Registry, caps: &Capabilities) -> SuiteReport {
    let r = registry;
    let mut report = SuiteReport::new("registry", caps);
    report.run("register_then_get", register_then_get(r)).await;
    report.run("get_missing_is_not_found", get_missing(r)).await;
    report
        .run("lookups_are_canonical", lookups_are_canonical(r))
        .await;
    report
        .run("duplicate_version_rejected", duplicate_version_rejected(r))
        .await;
    report
        .run(
            "invalid_registration_changes_nothing",
            invalid_registration(r),
        )
        .await;
    report
        .run("list_versions_sorted", list_versions_sorted(r))
        .await;
    report
        .run("resolve_version_semantics", resolve_version_semantics(r))
        .await;
    report
        .run(
            "resolve_version_skips_yanked",
            resolve_version_skips_yanked(r),
        )
        .await;
    report.run("yank_and_unyank", yank_and_unyank(r)).await;
    report.run("update_metadata", update_metadata(r)).await;
    report
        .run("list_paginates_in_registration_order", list_paginates(r))
        .await;
    report.run("list_by_author", list_by_author(r)).await;
    report.run("download_stats", download_stats(r)).await;
    report
        .run(
            "downloads_since_gives_each_package_once",
            downloads_since(r),
        )
        .await;
    report.run("events_log_every_mutation", events_log(r)).await;
    report.run("register_batch", register_batch(r)).await;
    if caps.atomic_batch {
        report
            .run("register_batch_is_atomic", register_batch_atomic(r))
            .await;
    } else {
        report.skip(
            "register_batch_is_atomic",
            "backend does not claim atomic_batch",
        );
    }
    let n = caps.concurrent_tasks.max(2);
    report
        .run(
            "concurrent_duplicate_registration",
            concurrent_duplicates(r, n),
        )
        .await;
    report
        .run(
            "concurrent_distinct_registration",
            concurrent_distinct(r, n),
        )
        .await;
    report.run("resolve_diamond", resolve_diamond(r)).await;
    report
        .run("resolve_needs_backtracking", resolve_backtracking(r))
        .await;
    report
        .run("resolve_conflict_names_requirements", resolve_conflict(r))
        .await;
    report
        .run("resolve_cycle_is_reported", resolve_cycle(r))
        .await;
    report
        .run(
            "resolve_semver_compatible_series_coexist",
            resolve_semver_compatible(r),
        )
        .await;
    report
        .run("resolve_yanked_only_refused_pin_allowed", resolve_yanked(r))
        .await;
    report
        .run("resolve_prerelease_rules", resolve_prerelease(r))
        .await;
    report
        .run("resolve_missing_dependency", resolve_missing(r))
        .await;
    report
        .run("resolve_direct_only", resolve_direct_only(r))
        .await;
    report
        .run("resolve_fifty_package_graph", resolve_fifty(r))
        .await;
    report
        .run(
            "model_random_operations",
            model_check(r, caps.property_cases),
        )
        .await;
    match &caps.reopen_registry {
        Some(reopen) => {
            report
                .run(
                    "state_survives_reopening",
                    survives_reopening(r, &*reopen.0),
                )
                .await;
        }
        None => report.skip(
            "state_survives_reopening",
            "no way to reopen the registry given (Capabilities::with_registry_reopen)",
        ),
    }
    report
}

/// Yanks (with their reasons), metadata updates, the event log and download statistics read
/// the same through a second handle on the registry's storage.
async fn survives_reopening(
    r: &dyn Registry,
    reopen: &crate::ReopenFn<dyn Registry>,
) -> CheckResult {
    let a = full_package("ro/web@1.0.0", HashAlgorithm::Sha512);
    let b = package("ro/web@1.1.0", &[]);
    register(r, &a).await?;
    register(r, &b).await?;
    r.yank(&b.id, "a broken build").await.ctx("yank")?;
    r.yank(&a.id, "briefly").await.ctx("yank")?;
    r.unyank(&a.id).await.ctx("unyank")?;
    r.update_metadata(
        &a.id,
        MetadataUpdate {
            description: Some("Updated before the restart.".into()),
            homepage: Some(None),
            ..MetadataUpdate::default()
        },
    )
    .await
    .ctx("update_metadata")?;
    for _ in 0..3 {
        r.record_download(&a.id).await.ctx("record_download")?;
    }
    let again = reopen().map_err(|e| format!("reopen the registry: {e}"))?;
    let again = again.as_ref();
    for id in [&a.id, &b.id] {
        ensure_eq!(
            again.get(id).await.ctx("get after reopening")?,
            r.get(id).await.ctx("get")?,
            "{id} after reopening"
        );
        ensure_eq!(
            again.is_yanked(id).await.ctx("is_yanked after reopening")?,
            r.is_yanked(id).await.ctx("is_yanked")?,
            "the yank state of {id} after reopening"
        );
        ensure_eq!(
            again.get_stats(id).await.ctx("get_stats after reopening")?,
            r.get_stats(id).await.ctx("get_stats")?,
            "the statistics of {id} after reopening"
        );
    }
    same_list(
        &again
            .list(usize::MAX, 0)
            .await
            .ctx("list after reopening")?,
        &r.list(usize::MAX, 0).await.ctx("list")?,
        "the listing (with yank reasons and downloads) after reopening",
    )?;
    same_list(
        &again
            .events_since(0, usize::MAX)
            .await
            .ctx("events_since after reopening")?,
        &r.events_since(0, usize::MAX).await.ctx("events_since")?,
        "the event log after reopening",
    )?;
    ensure_eq!(
        again
            .latest_event_seq()
            .await
            .ctx("latest_event_seq after reopening")?,
        r.latest_event_seq().await.ctx("latest_event_seq")?,
        "latest_event_seq after reopening"
    );
    Ok(())
}

async fn register(r: &dyn Registry, m: &PackageMetadata) -> Result<PackageId, String> {
    r.register(m.clone(), m.checksum.clone())
        .await
        .ctx(format!("register {}", m.id))
}

async fn register_all(r: &dyn Registry, packages: &[(&str, &[(&str, &str)])]) -> CheckResult {
    for (id, deps) in packages {
        register(r, &package(id, deps)).await?;
    }
    Ok(())
}

fn pkg(s: &str) -> PackageRef {
    s.parse().expect("kit package names parse")
}

fn pid(s: &str) -> PackageId {
    s.parse().expect("kit package ids parse")
}

fn req(s: &str) -> VersionReq {
    parse_requirement(s).expect("kit requirements parse")
}

async fn last_seq(r: &dyn Registry) -> Result<u64, String> {
    let mut after = 0;
    loop {
        let page = r
            .events_since(after, 1000)
            .await
            .ctx("read the event log")?;
        if let Some(stale) = page.iter().find(|e| e.seq <= after) {
            // Without this a log that repeats its cursor would keep the loop here forever.
            return Err(format!(
                "events_since({after}) returned event {}, at or before the cursor",
                stale.seq
            ));
        }
        match page.last() {
            Some(e) => after = e.seq,
            None => return Ok(after),
        }
    }
}

async fn register_then_get(r: &dyn Registry) -> CheckResult {
    let mut m = package("reg/web@1.2.3", &[("reg/http", "^1.2")]);
    m.keywords = vec!["web".into(), "http".into()];
    m.categories = vec!["templates".into()];
    m.homepage = Some(
        marketplace_core::parse_url("homepage", "https://example.com/web")
            .map_err(|e| e.to_string())?,
    );
    let id = register(r, &m).await?;
    ensure_eq!(id, m.id, "register returns the id");
    let got = r.get(&m.id).await.ctx("get reg/web@1.2.3")?;
    ensure_eq!(
        got,
        m,
        "get returns exactly what was registered (timestamps to the nanosecond)"
    );
    // Every field set, under each checksum algorithm: what a narrow column or a single
    // author field would lose shows here.
    for (id, algorithm) in [
        ("reg/full@2.0.0-rc.1+build.5", HashAlgorithm::Sha512),
        ("reg/full@2.0.0", HashAlgorithm::Blake3),
        ("reg/full@2.0.1", HashAlgorithm::Sha256),
    ] {
        let full = full_package(id, algorithm);
        register(r, &full).await?;
        let got = r.get(&full.id).await.ctx(format!("get {id}"))?;
        ensure_eq!(got, full, "get returns every field of {id} as registered");
        let listed = r
            .list_by_author("Grace Hopper", usize::MAX, 0)
            .await
            .ctx("list_by_author of the second author")?;
        ensure!(
            listed.iter().any(|rec| rec.metadata == full),
            "list_by_author of a second author misses {id} (or changes it)"
        );
    }
    let listed = r.list(usize::MAX, 0).await.ctx("list")?;
    let full: Vec<&PackageMetadata> = listed
        .iter()
        .map(|rec| &rec.metadata)
        .filter(|m| m.id.name.as_str() == "full")
        .collect();
    ensure_eq!(full.len(), 3, "list holds the three full versions");
    for m in full {
        ensure_eq!(
            *m,
            r.get(&m.id).await.ctx("get")?,
            "list and get agree on {}",
            m.id
        );
    }
    Ok(())
}

async fn get_missing(r: &dyn Registry) -> CheckResult {
    expect_kind(
        r.get(&pid("nope/missing@1.0.0")).await,
        ErrorKind::NotFound,
        "get a missing package",
    )?;
    register(r, &package("nope/present@1.0.0", &[])).await?;
    expect_kind(
        r.get(&pid("nope/present@1.0.1")).await,
        ErrorKind::NotFound,
        "get a missing version of a known package (not another version)",
    )?;
    expect_kind(
        r.get(&pid("other/present@1.0.0")).await,
        ErrorKind::NotFound,
        "get the same name and version in another namespace",
    )?;
    expect_kind(
        r.get(&pid("present@1.0.0")).await,
        ErrorKind::NotFound,
        "get the same name and version without a namespace",
    )?;
    expect_kind(
        r.list_versions(&pkg("other/present")).await,
        ErrorKind::NotFound,
        "list_versions of the same name in another namespace",
    )?;
    expect_kind(
        r.is_yanked(&pid("nope/missing@1.0.0")).await,
        ErrorKind::NotFound,
        "is_yanked of a missing package",
    )?;
    expect_kind(
        r.list_versions(&pkg("nope/missing")).await,
        ErrorKind::NotFound,
        "list_versions of a missing package",
    )?;
    expect_kind(
        r.get_stats(&pid("nope/missing@1.0.0")).await,
        ErrorKind::NotFound,
        "get_stats of a missing package",
    )?;
    Ok(())
}

async fn lookups_are_canonical(r: &dyn Registry) -> CheckResult {
    register(r, &package("canon/web_framework@1.0.0", &[])).await?;
    let got = r
        .get(&pid("Canon/Web-Framework@1.0.0"))
        .await
        .ctx("get with another spelling")?;
    ensure_eq!(
        got.id.to_string(),
        "canon/web_framework@1.0.0",
        "the stored spelling is kept"
    );
    let versions = r
        .list_versions(&pkg("CANON/WEB-FRAMEWORK"))
        .await
        .ctx("list_versions with another spelling")?;
    ensure_eq!(
        versions,
        vec![Version::new(1, 0, 0)],
        "versions under another spelling"
    );
    let resolved = r
        .resolve_version(&pkg("canon/Web_Framework"), &req("1"))
        .await
        .ctx("resolve_version")?;
    ensure!(
        resolved.is_some(),
        "resolve_version with another spelling found nothing"
    );
    Ok(())
}

async fn duplicate_version_rejected(r: &dyn Registry) -> CheckResult {
    let m = package("dup/web@1.0.0", &[]);
    register(r, &m).await?;
    let again = package("dup/web@1.0.0", &[]);
    expect_kind(
        r.register(again.clone(), again.checksum.clone()).await,
        ErrorKind::AlreadyExists,
        "register the same version twice",
    )?;
    let other_spelling = package("Dup/Web@1.0.0", &[]);
    expect_kind(
        r.register(other_spelling.clone(), other_spelling.checksum.clone())
            .await,
        ErrorKind::AlreadyExists,
        "register Dup/Web@1.0.0 after dup/web@1.0.0",
    )?;
    let build = package("dup/web@1.0.0+linux", &[]);
    expect_kind(
        r.register(build.clone(), build.checksum.clone()).await,
        ErrorKind::AlreadyExists,
        "register 1.0.0+linux after 1.0.0 (build metadata is ignored)",
    )?;
    r.yank(&m.id, "bad").await.ctx("yank")?;
    expect_kind(
        r.register(again.clone(), again.checksum.clone()).await,
        ErrorKind::AlreadyExists,
        "register a version that was yanked",
    )?;
    let got = r.get(&m.id).await.ctx("get after the refused duplicates")?;
    ensure_eq!(got, m, "the original is unchanged");
    Ok(())
}

async fn invalid_registration(r: &dyn Registry) -> CheckResult {
    let before = last_seq(r).await?;
    let mut bad = package("inv/web@1.0.0", &[]);
    bad.keywords = vec!["not a keyword".into()];
    expect_kind(
        r.register(bad.clone(), bad.checksum.clone()).await,
        ErrorKind::Invalid,
        "register with a bad keyword",
    )?;
    let good = package("inv/web@1.0.0", &[]);
    let other = marketplace_core::ContentHash::sha256(b"something else");
    expect_kind(
        r.register(good.clone(), other).await,
        ErrorKind::Invalid,
        "register with a content hash that differs from the checksum",
    )?;
    let mut self_dep = package("inv/web@1.0.0", &[]);
    self_dep.dependencies.insert(pkg("inv/web"), req("1"));
    expect_kind(
        r.register(self_dep.clone(), self_dep.checksum.clone())
            .await,
        ErrorKind::Invalid,
        "register a package that depends on itself",
    )?;
    expect_kind(
        r.get(&good.id).await,
        ErrorKind::NotFound,
        "get after refused registrations",
    )?;
    ensure_eq!(
        last_seq(r).await?,
        before,
        "refused registrations must not log events"
    );
    Ok(())
}

async fn list_versions_sorted(r: &dyn Registry) -> CheckResult {
    for v in ["1.10.0", "1.2.0", "0.1.0", "1.9.0-beta.1", "1.9.0"] {
        register(r, &package(&format!("lv/web@{v}"), &[])).await?;
    }
    let got = r.list_versions(&pkg("lv/web")).await.ctx("list_versions")?;
    let want: Vec<Version> = ["0.1.0", "1.2.0", "1.9.0-beta.1", "1.9.0", "1.10.0"]
        .iter()
        .map(|v| v.parse().expect("version"))
        .collect();
    ensure_eq!(got, want, "versions ascending in semver order");
    r.yank(&pid("lv/web@1.9.0"), "broken")
        .await
        .ctx("yank 1.9.0")?;
    let states = r
        .list_version_states(&pkg("lv/web"))
        .await
        .ctx("list_version_states")?;
    ensure_eq!(
        states
            .iter()
            .map(|s| (
                s.version.clone(),
                s.yanked.as_ref().map(|y| y.reason.as_str())
            ))
            .collect::<Vec<_>>(),
        want.iter()
            .map(|v| (v.clone(), (v == &Version::new(1, 9, 0)).then_some("broken")))
            .collect::<Vec<_>>(),
        "version states ascending in semver order, the yanked one marked with its reason"
    );
    let got = r.list_versions(&pkg("lv/web")).await.ctx("list_versions")?;
    ensure_eq!(got, want, "list_versions keeps a yanked version");
    Ok(())
}

async fn resolve_version_semantics(r: &dyn Registry) -> CheckResult {
    for v in ["1.0.0", "1.2.0", "1.3.0-beta.1", "2.0.0", "2.1.0-rc.1"] {
        register(r, &package(&format!("rv/web@{v}"), &[])).await?;
    }
    let p = pkg("rv/web");
    let cases: [(&str, Option<&str>); 8] = [
        ("^1", Some("1.2.0")),
        ("*", Some("2.0.0")),
        (">=2", Some("2.0.0")),
        ("^1.3.0-beta.1", Some("1.3.0-beta.1")),
        ("^2.1.0-rc.1", Some("2.1.0-rc.1")),
        ("=1.0.0", Some("1.0.0")),
        ("^3", None),
        ("~1.1", None),
    ];
    for (text, want) in cases {
        let got = r
            .resolve_version(&p, &req(text))
            .await
            .ctx(format!("resolve_version rv/web {text}"))?;
        ensure_eq!(
            got.map(|id| id.version.to_string()),
            want.map(str::to_owned),
            "resolve_version rv/web {text}"
        );
    }
    let unknown = r
        .resolve_version(&pkg("rv/unknown"), &req("*"))
        .await
        .ctx("resolve_version of an unknown package")?;
    ensure!(
        unknown.is_none(),
        "an unknown package resolved to {unknown:?}"
    );
    Ok(())
}

async fn resolve_version_skips_yanked(r: &dyn Registry) -> CheckResult {
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        register(r, &package(&format!("ry/web@{v}"), &[])).await?;
    }
    let p = pkg("ry/web");
    r.yank(&pid("ry/web@1.2.0"), "broken")
        .await
        .ctx("yank 1.2.0")?;
    let got = r.resolve_version(&p, &req("^1")).await.ctx("resolve ^1")?;
    ensure_eq!(got, Some(pid("ry/web@1.1.0")), "^1 skips the yanked 1.2.0");
    let pinned = r
        .resolve_version(&p, &req("=1.2.0"))
        .await
        .ctx("resolve =1.2.0")?;
    ensure_eq!(
        pinned,
        Some(pid("ry/web@1.2.0")),
        "an exact pin selects a yanked version"
    );
    for range in ["=1.2", ">=1.2.0, <=1.2.0", "~1.2.0"] {
        let got = r
            .resolve_version(&p, &req(range))
            .await
            .ctx(format!("resolve {range}"))?;
        ensure_eq!(
            got,
            None,
            "{range} is a range, not an exact pin: it must not select the yanked 1.2.0"
        );
    }
    r.yank(&pid("ry/web@1.1.0"), "broken")
        .await
        .ctx("yank 1.1.0")?;
    r.yank(&pid("ry/web@1.0.0"), "broken")
        .await
        .ctx("yank 1.0.0")?;
    let none = r
        .resolve_version(&p, &req("^1"))
        .await
        .ctx("resolve ^1 with all yanked")?;
    ensure_eq!(none, None, "only yanked versions match ^1");
    r.unyank(&pid("ry/web@1.0.0")).await.ctx("unyank 1.0.0")?;
    let back = r
        .resolve_version(&p, &req("^1"))
        .await
        .ctx("resolve ^1 after unyank")?;
    ensure_eq!(
        back,
        Some(pid("ry/web@1.0.0")),
        "an unyanked version is selected again"
    );
    Ok(())
}

async fn yank_and_unyank(r: &dyn Registry) -> CheckResult {
    let id = pid("yk/web@1.0.0");
    let other = pid("yk/web@1.1.0");
    for m in [package("yk/web@1.0.0", &[]), package("yk/web@1.1.0", &[])] {
        let mut m = m;
        m.authors = vec!["Yank Tester".into()];
        register(r, &m).await?;
    }
    ensure!(
        !r.is_yanked(&id).await.ctx("is_yanked")?,
        "a new version is not yanked"
    );
    let before = last_seq(r).await?;
    r.yank(&id, "security issue").await.ctx("yank")?;
    yank_seen_everywhere(r, &id, Some("security issue"), "after yank").await?;
    yank_seen_everywhere(r, &other, None, "the other version, after yank").await?;
    r.yank(&id, "again").await.ctx("yank twice")?;
    ensure_eq!(
        last_seq(r).await? - before,
        1,
        "yanking twice logs one event"
    );
    yank_seen_everywhere(
        r,
        &id,
        Some("security issue"),
        "after a second yank (which changes nothing)",
    )
    .await?;
    r.unyank(&id).await.ctx("unyank")?;
    yank_seen_everywhere(r, &id, None, "after unyank").await?;
    r.unyank(&id).await.ctx("unyank twice")?;
    ensure_eq!(
        last_seq(r).await? - before,
        2,
        "unyanking twice logs one more event"
    );
    expect_kind(
        r.yank(&pid("yk/missing@1.0.0"), "x").await,
        ErrorKind::NotFound,
        "yank a missing version",
    )?;
    expect_kind(
        r.unyank(&pid("yk/missing@1.0.0")).await,
        ErrorKind::NotFound,
        "unyank a missing version",
    )?;
    expect_kind(
        r.yank(&pid("yk/web@1.0.1"), "x").await,
        ErrorKind::NotFound,
        "yank a missing version of a known package",
    )?;
    r.yank(&id, "kept").await.ctx("yank again after unyank")?;
    yank_seen_everywhere(r, &id, Some("kept"), "yanked again with a new reason").await?;
    ensure_eq!(
        last_seq(r).await? - before,
        3,
        "a yank after an unyank logs an event"
    );
    Ok(())
}

/// Whether `id` reads as yanked with `reason` (or as not yanked) through `is_yanked`, the
/// version states, `list` and `list_by_author`.
async fn yank_seen_everywhere(
    r: &dyn Registry,
    id: &PackageId,
    reason: Option<&str>,
    when: &str,
) -> CheckResult {
    let yanked = reason.is_some();
    ensure_eq!(
        r.is_yanked(id).await.ctx("is_yanked")?,
        yanked,
        "{when}: is_yanked({id})"
    );
    let states = r
        .list_version_states(&id.package())
        .await
        .ctx("list_version_states")?;
    let state = states
        .iter()
        .find(|s| s.version == id.version)
        .ok_or(format!("{when}: {id} is missing from the version states"))?;
    ensure_eq!(
        state.yanked.as_ref().map(|y| y.reason.as_str()),
        reason,
        "{when}: the version state of {id} (yanked, with the reason)"
    );
    let listed = r.list(usize::MAX, 0).await.ctx("list")?;
    let record = listed
        .iter()
        .find(|rec| rec.metadata.id == *id)
        .ok_or(format!("{when}: {id} is missing from list"))?;
    ensure_eq!(
        record.yanked.as_ref().map(|y| y.reason.as_str()),
        reason,
        "{when}: list shows {id}'s yank"
    );
    ensure_eq!(
        state.yanked.as_ref().map(|y| y.at),
        record.yanked.as_ref().map(|y| y.at),
        "{when}: the version state and list agree on when {id} was yanked"
    );
    let by_author = r
        .list_by_author("Yank Tester", usize::MAX, 0)
        .await
        .ctx("list_by_author")?;
    let record = by_author
        .iter()
        .find(|rec| rec.metadata.id == *id)
        .ok_or(format!("{when}: {id} is missing from list_by_author"))?;
    ensure_eq!(
        record.yanked.as_ref().map(|y| y.reason.as_str()),
        reason,
        "{when}: list_by_author shows {id}'s yank"
    );
    Ok(())
}

async fn update_metadata(r: &dyn Registry) -> CheckResult {
    let m = package("upd/web@1.0.0", &[("upd/http", "^1")]);
    register(r, &m).await?;
    let before = last_seq(r).await?;
    let update = MetadataUpdate {
        description: Some("A better description".into()),
        keywords: Some(vec!["web".into()]),
        ..MetadataUpdate::default()
    };
    let updated = r
        .update_metadata(&m.id, update.clone())
        .await
        .ctx("update_metadata")?;
    ensure_eq!(
        updated.description,
        "A better description".to_owned(),
        "the new description is returned"
    );
    let got = r.get(&m.id).await.ctx("get after update")?;
    ensure_eq!(
        got.description,
        "A better description".to_owned(),
        "the new description is stored"
    );
    ensure_eq!(
        got.keywords,
        vec!["web".to_owned()],
        "the new keywords are stored"
    );
    ensure_eq!(
        got.dependencies,
        m.dependencies,
        "dependencies never change"
    );
    ensure_eq!(got.checksum, m.checksum, "the checksum never changes");
    let events = r.events_since(before, 10).await.ctx("events")?;
    ensure!(
        matches!(events.as_slice(), [e] if e.kind == EventKind::MetadataUpdated { id: m.id.clone(), update: Box::new(update.clone()) }),
        "expected one MetadataUpdated event, got {events:?}"
    );
    let bad = MetadataUpdate {
        categories: Some((0..6).map(|i| format!("c{i}")).collect()),
        ..MetadataUpdate::default()
    };
    expect_kind(
        r.update_metadata(&m.id, bad).await,
        ErrorKind::Invalid,
        "update with six categories",
    )?;
    ensure_eq!(
        r.get(&m.id).await.ctx("get")?,
        got,
        "a refused update changes nothing"
    );
    expect_kind(
        r.update_metadata(&pid("upd/missing@1.0.0"), update).await,
        ErrorKind::NotFound,
        "update a missing version",
    )?;
    every_field_changed_then_cleared(r).await
}

/// Every field `update_metadata` may change is changed, then the URLs cleared; every read path
/// (`get`, `list`, `list_by_author`) and the event log agree, and the other version of the
/// package is untouched.
async fn every_field_changed_then_cleared(r: &dyn Registry) -> CheckResult {
    let mut one = package("upd/every@1.0.0", &[]);
    one.homepage = Some(
        marketplace_core::parse_url("homepage", "https://example.com/a")
            .map_err(|e| e.to_string())?,
    );
    one.repository = Some(
        marketplace_core::parse_url("repository", "https://example.com/r")
            .map_err(|e| e.to_string())?,
    );
    let two = package("upd/every@1.1.0", &[]);
    register(r, &one).await?;
    register(r, &two).await?;
    let url = |u: &str| marketplace_core::parse_url("url", u).map_err(|e| e.to_string());
    let change = MetadataUpdate {
        description: Some("Changed everywhere".into()),
        keywords: Some(vec!["alpha".into(), "beta".into()]),
        categories: Some(vec!["tools".into()]),
        homepage: Some(Some(url("https://example.com/home")?)),
        repository: Some(Some(url("https://example.com/repo")?)),
    };
    let clear = MetadataUpdate {
        homepage: Some(None),
        repository: Some(None),
        ..MetadataUpdate::default()
    };
    let before = last_seq(r).await?;
    for (update, what) in [
        (&change, "every field changed"),
        (&clear, "both URLs cleared"),
    ] {
        let returned = r
            .update_metadata(&one.id, update.clone())
            .await
            .ctx(format!("update_metadata ({what})"))?;
        let mut expected = one.clone();
        change.apply_to(&mut expected);
        if std::ptr::eq(update, &clear) {
            clear.apply_to(&mut expected);
        }
        ensure_eq!(returned, expected, "{what}: the returned metadata");
        ensure_eq!(r.get(&one.id).await.ctx("get")?, expected, "{what}: get");
        let listed = r.list(1000, 0).await.ctx("list")?;
        let in_list = listed.iter().find(|rec| rec.metadata.id == one.id);
        ensure_eq!(
            in_list.map(|rec| &rec.metadata),
            Some(&expected),
            "{what}: list"
        );
        let author = expected.authors.first().cloned().unwrap_or_default();
        let by_author = r
            .list_by_author(&author, 1000, 0)
            .await
            .ctx("list_by_author")?;
        let in_author = by_author.iter().find(|rec| rec.metadata.id == one.id);
        ensure_eq!(
            in_author.map(|rec| &rec.metadata),
            Some(&expected),
            "{what}: list_by_author"
        );
        ensure_eq!(
            r.get(&two.id).await.ctx("get the other version")?,
            two.clone(),
            "{what}: another version of the package is untouched"
        );
    }
    let events = r.events_since(before, 10).await.ctx("events")?;
    let updates: Vec<&MetadataUpdate> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::MetadataUpdated { update, .. } => Some(update.as_ref()),
            _ => None,
        })
        .collect();
    ensure_eq!(
        updates,
        vec![&change, &clear],
        "the events record each update as made (a cleared URL is not an unchanged one)"
    );
    Ok(())
}

async fn list_paginates(r: &dyn Registry) -> CheckResult {
    let all_before = r.list(usize::MAX, 0).await.ctx("list")?;
    let names: Vec<String> = (0..7).map(|i| format!("pg/p{i}@1.0.0")).collect();
    for name in &names {
        register(r, &package(name, &[])).await?;
    }
    let all = r.list(usize::MAX, 0).await.ctx("list")?;
    ensure_eq!(
        all.len(),
        all_before.len() + 7,
        "list grows by the registered versions"
    );
    let tail: Vec<String> = all[all_before.len()..]
        .iter()
        .map(|rec| rec.metadata.id.to_string())
        .collect();
    ensure_eq!(tail, names, "new versions come last, in registration order");
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let page = r.list(3, offset).await.ctx(format!("list(3, {offset})"))?;
        ensure!(page.len() <= 3, "a page of limit 3 held {}", page.len());
        if page.is_empty() {
            break;
        }
        offset += page.len();
        paged.extend(page);
    }
    ensure_eq!(paged, all, "pages of 3 concatenate to the full list");
    Ok(())
}

async fn list_by_author(r: &dyn Registry) -> CheckResult {
    // Near misses: a longer name, another case, a name containing it.
    let authors = ["Ann", "Bob", "Anne", "Ann", "ann", "Ann", "Joann", "ANN"];
    for (i, author) in authors.iter().enumerate() {
        let mut m = package(&format!("au/p{i}@1.0.0"), &[]);
        m.authors = vec![(*author).to_owned(), "Shared Maintainer".into()];
        register(r, &m).await?;
    }
    let ann = r
        .list_by_author("Ann", 10, 0)
        .await
        .ctx("list_by_author Ann")?;
    let ids: Vec<String> = ann.iter().map(|rec| rec.metadata.id.to_string()).collect();
    ensure_eq!(
        ids,
        vec![
            "au/p0@1.0.0".to_owned(),
            "au/p3@1.0.0".into(),
            "au/p5@1.0.0".into()
        ],
        "Ann's versions in registration order (the author matches exactly: not Anne, ann, Joann)"
    );
    let page = r
        .list_by_author("Ann", 1, 1)
        .await
        .ctx("list_by_author Ann page 2")?;
    ensure_eq!(
        page.iter()
            .map(|rec| rec.metadata.id.to_string())
            .collect::<Vec<_>>(),
        vec!["au/p3@1.0.0".to_owned()],
        "second page of one"
    );
    let shared = r
        .list_by_author("Shared Maintainer", 100, 0)
        .await
        .ctx("list_by_author of a second author")?;
    ensure_eq!(
        shared.len(),
        authors.len(),
        "every version lists its second author"
    );
    let prefix = r
        .list_by_author("An", 10, 0)
        .await
        .ctx("list_by_author An")?;
    ensure!(
        prefix.is_empty(),
        "a prefix of an author matched: {:?}",
        prefix
            .iter()
            .map(|rec| rec.metadata.id.to_string())
            .collect::<Vec<_>>()
    );
    let nobody = r
        .list_by_author("Nobody", 10, 0)
        .await
        .ctx("list_by_author Nobody")?;
    ensure!(
        nobody.is_empty(),
        "an unknown author has versions: {nobody:?}"
    );
    Ok(())
}

/// The stamp of the latest download so far, paging until an empty page.
async fn latest_stamp(r: &dyn Registry) -> Result<u64, String> {
    let mut after = 0;
    loop {
        let page = r
            .downloads_since(after, 100)
            .await
            .ctx(format!("downloads_since({after}, 100)"))?;
        match page.last() {
            Some(last) => {
                ensure!(
                    last.stamp > after,
                    "downloads_since({after}) returned stamp {}",
                    last.stamp
                );
                after = last.stamp;
            }
            None => return Ok(after),
        }
    }
}

/// `(package, total)` pairs of a page of download totals, packages canonical.
fn totals(page: &[marketplace_core::DownloadCount]) -> Vec<(String, u64)> {
    page.iter()
        .map(|c| (c.package.canonical(), c.total))
        .collect()
}

/// Download totals since a stamp: each downloaded package once, with its total over all
/// versions and its latest stamp, in stamp order; paging by stamp; nothing for packages not
/// downloaded (or with a near-miss name); a failed download changes nothing.
async fn downloads_since(r: &dyn Registry) -> CheckResult {
    register_all(
        r,
        &[
            ("ds/alpha@1.0.0", &[]),
            ("ds/alpha@2.0.0", &[]),
            ("ds/alphabet@1.0.0", &[]),
            ("dz/alpha@1.0.0", &[]),
            ("ds/quiet@1.0.0", &[]),
        ],
    )
    .await?;
    let start = latest_stamp(r).await?;
    for id in [
        "ds/alpha@1.0.0",
        "ds/alphabet@1.0.0",
        "ds/alpha@2.0.0",
        "ds/alpha@1.0.0",
        "dz/alpha@1.0.0",
    ] {
        r.record_download(&pid(id))
            .await
            .ctx(format!("record_download {id}"))?;
    }
    let page = r.downloads_since(start, 100).await.ctx("downloads_since")?;
    same_list(
        &totals(&page),
        &[
            ("ds/alphabet".to_owned(), 1),
            ("ds/alpha".to_owned(), 3),
            ("dz/alpha".to_owned(), 1),
        ],
        "each package downloaded since, once, with its total, in order of its latest download",
    )?;
    ensure!(
        page.windows(2).all(|w| w[0].stamp < w[1].stamp) && page[0].stamp > start,
        "stamps grow: {:?} after {start}",
        page.iter().map(|c| c.stamp).collect::<Vec<_>>()
    );
    ensure_eq!(
        r.downloads_since(start, 2)
            .await
            .ctx("downloads_since(_, 2)")?
            .len(),
        2,
        "downloads_since keeps to its limit"
    );
    let mut paged = Vec::new();
    let mut after = start;
    while let Some(first) = r
        .downloads_since(after, 1)
        .await
        .ctx(format!("downloads_since({after}, 1)"))?
        .first()
        .cloned()
    {
        ensure!(paged.len() < 3, "paging one at a time does not end");
        after = first.stamp;
        paged.push(first);
    }
    ensure_eq!(paged, page, "paging by stamp gives the same totals");
    let last = page.last().map(|c| c.stamp).unwrap_or(start);
    ensure_eq!(
        totals(&r.downloads_since(last, 100).await.ctx("downloads_since")?),
        vec![],
        "nothing after the latest stamp"
    );
    expect_kind(
        r.record_download(&pid("ds/quiet@9.0.0")).await,
        ErrorKind::NotFound,
        "record_download of a missing version",
    )?;
    r.record_download(&pid("ds/alphabet@1.0.0"))
        .await
        .ctx("record_download")?;
    let next = r.downloads_since(last, 100).await.ctx("downloads_since")?;
    same_list(
        &totals(&next),
        &[("ds/alphabet".to_owned(), 2)],
        "only the package downloaded again, with its new total",
    )?;
    ensure!(next[0].stamp > last, "a new download gets a larger stamp");
    Ok(())
}

async fn download_stats(r: &dyn Registry) -> CheckResult {
    let v1 = pid("dl/web@1.0.0");
    let v2 = pid("dl/web@2.0.0");
    let v3 = pid("dl/web@3.0.0-beta.1");
    register_all(
        r,
        &[
            ("dl/web@1.0.0", &[]),
            ("dl/web@2.0.0", &[]),
            ("dl/web@3.0.0-beta.1", &[]),
            ("dl/webs@1.0.0", &[]),
        ],
    )
    .await?;
    let zero = r
        .get_stats(&v1)
        .await
        .ctx("get_stats before any download")?;
    ensure_eq!(
        (zero.version_downloads, zero.total_downloads),
        (0, 0),
        "statistics before any download"
    );
    ensure_eq!(
        zero.per_version.values().copied().collect::<Vec<_>>(),
        vec![0, 0, 0],
        "every version has a per-version count before any download"
    );
    ensure!(
        zero.last_30_days.len() == 30 && zero.last_30_days.iter().all(|d| d.downloads == 0),
        "30 days of zeros before any download: {:?}",
        zero.last_30_days
    );
    let before = last_seq(r).await?;
    for _ in 0..3 {
        r.record_download(&v1).await.ctx("record_download 1.0.0")?;
    }
    r.record_download(&v2).await.ctx("record_download 2.0.0")?;
    ensure_eq!(last_seq(r).await?, before, "downloads are not events");
    let stats = r.get_stats(&v1).await.ctx("get_stats")?;
    ensure_eq!(stats.version_downloads, 3, "downloads of 1.0.0");
    ensure_eq!(stats.total_downloads, 4, "downloads of all versions");
    ensure_eq!(
        stats.per_version.get(&Version::new(2, 0, 0)).copied(),
        Some(1),
        "per-version downloads of 2.0.0"
    );
    ensure_eq!(stats.last_30_days.len(), 30, "30 days of history");
    let today = marketplace_core::time::OffsetDateTime::now_utc().date();
    let last = stats.last_30_days.last().ok_or("no days")?;
    ensure!(
        last.date == today || last.date.next_day() == Some(today),
        "the last day is {} not today ({today})",
        last.date
    );
    ensure_eq!(
        stats.last_30_days.iter().map(|d| d.downloads).sum::<u64>(),
        4,
        "downloads in the last 30 days"
    );
    expect_kind(
        r.record_download(&pid("dl/missing@1.0.0")).await,
        ErrorKind::NotFound,
        "record_download of a missing version",
    )?;
    let listed = r.list(usize::MAX, 0).await.ctx("list")?;
    let rec = listed
        .iter()
        .find(|rec| rec.metadata.id == v2)
        .ok_or("2.0.0 is missing from list")?;
    ensure_eq!(
        rec.downloads,
        4,
        "a listed record carries its package's downloads"
    );
    let never = r.get_stats(&v3).await.ctx("get_stats of 3.0.0-beta.1")?;
    ensure_eq!(
        (never.version_downloads, never.total_downloads),
        (0, 4),
        "a version never downloaded, in a package downloaded four times"
    );
    ensure_eq!(
        never.per_version,
        BTreeMap::from([
            (Version::new(1, 0, 0), 3),
            (Version::new(2, 0, 0), 1),
            (v3.version.clone(), 0),
        ]),
        "per-version downloads, zero included"
    );
    let neighbour = r
        .get_stats(&pid("dl/webs@1.0.0"))
        .await
        .ctx("get_stats of dl/webs")?;
    ensure_eq!(
        (neighbour.version_downloads, neighbour.total_downloads),
        (0, 0),
        "a package whose name extends a downloaded one has no downloads"
    );
    Ok(())
}

async fn events_log(r: &dyn Registry) -> CheckResult {
    let before = last_seq(r).await?;
    let id = pid("ev/web@1.0.0");
    let m = package("ev/web@1.0.0", &[]);
    register(r, &m).await?;
    r.yank(&id, "oops").await.ctx("yank")?;
    r.unyank(&id).await.ctx("unyank")?;
    let update = MetadataUpdate {
        description: Some("new".into()),
        ..MetadataUpdate::default()
    };
    r.update_metadata(&id, update.clone())
        .await
        .ctx("update_metadata")?;
    let events = r.events_since(before, 100).await.ctx("events_since")?;
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind.clone()).collect();
    let want = vec![
        EventKind::Registered {
            id: id.clone(),
            checksum: m.checksum.clone(),
        },
        EventKind::Yanked {
            id: id.clone(),
            reason: "oops".into(),
        },
        EventKind::Unyanked { id: id.clone() },
        EventKind::MetadataUpdated {
            id: id.clone(),
            update: Box::new(update),
        },
    ];
    ensure_eq!(kinds, want, "one event per mutation, in order");
    ensure_eq!(
        r.latest_event_seq().await.ctx("latest_event_seq")?,
        before + 4,
        "latest_event_seq is the newest event's seq"
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    ensure_eq!(
        seqs,
        (before + 1..=before + 4).collect::<Vec<_>>(),
        "sequence numbers are gap-free"
    );
    let page = r
        .events_since(before + 1, 2)
        .await
        .ctx("events_since with a limit")?;
    ensure_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![before + 2, before + 3],
        "events_since(after, 2)"
    );
    let all = r.events_since(0, usize::MAX).await.ctx("events_since(0)")?;
    ensure!(
        all.first().is_some_and(|e| e.seq == 1),
        "the log starts at 1"
    );
    ensure!(
        all.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "the whole log is gap-free"
    );
    Ok(())
}

async fn register_batch(r: &dyn Registry) -> CheckResult {
    let items: Vec<_> = (0..5)
        .map(|i| {
            let m = package(&format!("bt/p{i}@1.0.0"), &[]);
            let h = m.checksum.clone();
            (m, h)
        })
        .collect();
    let ids = r
        .register_batch(items.clone())
        .await
        .ctx("register_batch")?;
    ensure_eq!(
        ids,
        items.iter().map(|(m, _)| m.id.clone()).collect::<Vec<_>>(),
        "ids in batch order"
    );
    for (m, _) in &items {
        ensure_eq!(
            r.get(&m.id).await.ctx("get")?,
            m.clone(),
            "a batch item is stored"
        );
    }
    let before = last_seq(r).await?;
    let mut bad: Vec<_> = (0..3)
        .map(|i| {
            let m = package(&format!("bt/q{i}@1.0.0"), &[]);
            let h = m.checksum.clone();
            (m, h)
        })
        .collect();
    bad[2].0.keywords = vec!["no spaces allowed".into()];
    expect_kind(
        r.register_batch(bad.clone()).await,
        ErrorKind::Invalid,
        "a batch with an invalid item",
    )?;
    let mut dup = bad.clone();
    dup[2] = dup[0].clone();
    expect_kind(
        r.register_batch(dup).await,
        ErrorKind::AlreadyExists,
        "a batch holding one version twice",
    )?;
    let mut existing = bad.clone();
    existing[2] = items[0].clone();
    expect_kind(
        r.register_batch(existing).await,
        ErrorKind::AlreadyExists,
        "a batch holding a registered version",
    )?;
    expect_kind(
        r.get(&bad[0].0.id).await,
        ErrorKind::NotFound,
        "the first item of a refused batch",
    )?;
    ensure_eq!(last_seq(r).await?, before, "refused batches log nothing");
    Ok(())
}

/// Two batches race for one version: the loser changes nothing at all.
async fn register_batch_atomic(r: &dyn Registry) -> CheckResult {
    let item = |name: &str| {
        let m = package(name, &[]);
        let h = m.checksum.clone();
        (m, h)
    };
    let first = vec![item("ba/a@1.0.0"), item("ba/shared@1.0.0")];
    let second = vec![item("ba/b@1.0.0"), item("ba/shared@1.0.0")];
    let (x, y) = futures::join!(r.register_batch(first), r.register_batch(second));
    ensure!(
        x.is_ok() != y.is_ok(),
        "exactly one of two clashing batches must succeed: {x:?} / {y:?}"
    );
    let loser_first = if x.is_ok() {
        "ba/b@1.0.0"
    } else {
        "ba/a@1.0.0"
    };
    expect_kind(
        r.get(&pid(loser_first)).await,
        ErrorKind::NotFound,
        "the losing batch's other item",
    )?;
    Ok(())
}

async fn concurrent_duplicates(r: &dyn Registry, n: usize) -> CheckResult {
    let m = package("cc/same@1.0.0", &[]);
    let results = join_all((0..n).map(|_| r.register(m.clone(), m.checksum.clone()))).await;
    let ok = results.iter().filter(|res| res.is_ok()).count();
    let dup = results
        .iter()
        .filter(|res| matches!(res, Err(Error::AlreadyExists { .. })))
        .count();
    ensure_eq!(
        (ok, dup),
        (1, n - 1),
        "{n} concurrent registrations of one version: (succeeded, AlreadyExists)"
    );
    Ok(())
}

async fn concurrent_distinct(r: &dyn Registry, n: usize) -> CheckResult {
    let packages: Vec<PackageMetadata> = (0..n)
        .map(|i| package(&format!("cd/p{i}@1.0.0"), &[("cd/base", "^1")]))
        .collect();
    let results = join_all(
        packages
            .iter()
            .map(|m| r.register(m.clone(), m.checksum.clone())),
    )
    .await;
    for (m, res) in packages.iter().zip(&results) {
        ensure!(
            res.is_ok(),
            "concurrent registration of {} failed: {res:?}",
            m.id
        );
    }
    for m in &packages {
        let got = r.get(&m.id).await.ctx("get")?;
        ensure_eq!(
            got.dependencies,
            m.dependencies,
            "a version is never seen without its dependencies"
        );
    }
    Ok(())
}

/// Resolves with the backend and with the provided method; both must agree.
async fn resolve(
    r: &dyn Registry,
    root: &str,
    options: ResolveOptions,
) -> Result<Result<DependencyGraph, Error>, String> {
    let id = pid(root);
    let backend = r.resolve_dependencies(&id, options).await;
    let provided = resolve_graph(r, &id, options).await;
    match (&backend, &provided) {
        (Ok(a), Ok(b)) if a == b => {}
        (Err(a), Err(b)) if a.kind() == b.kind() => {}
        _ => {
            return Err(format!(
                "resolve_dependencies({root}) differs from the provided resolver: backend {backend:?}, provided {provided:?}"
            ));
        }
    }
    Ok(backend)
}

fn versions_of(graph: &DependencyGraph) -> BTreeMap<String, String> {
    graph
        .packages()
        .map(|id| (id.package().to_string(), id.version.to_string()))
        .collect()
}

fn expect_graph(
    got: Result<DependencyGraph, Error>,
    want: &[(&str, &str)],
    what: &str,
) -> CheckResult {
    let graph = got.map_err(|e| format!("{what}: resolution failed: {e}"))?;
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(p, v)| ((*p).to_owned(), (*v).to_owned()))
        .collect();
    ensure_eq!(versions_of(&graph), want, "{what}");
    Ok(())
}

fn expect_conflict(
    got: Result<DependencyGraph, Error>,
    mentions: &[&str],
    what: &str,
) -> CheckResult {
    match got {
        Err(Error::Conflict { explanation, .. }) => {
            for needle in mentions {
                ensure!(
                    explanation.contains(needle),
                    "{what}: the explanation does not mention {needle:?}:\n{explanation}"
                );
            }
            Ok(())
        }
        other => Err(format!("{what}: expected a Conflict, got {other:?}")),
    }
}

async fn resolve_diamond(r: &dyn Registry) -> CheckResult {
    register_all(
        r,
        &[
            ("dia/base@1.0.0", &[]),
            ("dia/base@1.1.0", &[]),
            ("dia/base@2.0.0", &[]),
            ("dia/left@1.0.0", &[("dia/base", "^1.0")]),
            ("dia/right@1.0.0", &[("dia/base", ">=1.1, <3")]),
            ("dia/app@1.0.0", &[("dia/left", "^1"), ("dia/right", "^1")]),
        ],
    )
    .await?;
    let graph = resolve(r, "dia/app@1.0.0", ResolveOptions::TRANSITIVE)
        .await?
        .map_err(|e| format!("diamond: {e}"))?;
    expect_graph(
        Ok(graph.clone()),
        &[
            ("dia/app", "1.0.0"),
            ("dia/left", "1.0.0"),
            ("dia/right", "1.0.0"),
            ("dia/base", "1.1.0"),
        ],
        "diamond",
    )?;
    let order: Vec<String> = graph
        .install_order()
        .iter()
        .map(|id| id.name.to_string())
        .collect();
    let pos = |n: &str| order.iter().position(|x| x == n).unwrap_or(usize::MAX);
    ensure!(
        pos("base") < pos("left") && pos("left") < pos("app") && pos("right") < pos("app"),
        "install order puts dependencies first: {order:?}"
    );
    Ok(())
}

async fn resolve_backtracking(r: &dyn Registry) -> CheckResult {
    // Greedy highest-first picks a 1.1.0, which needs c ^2, which b cannot accept.
    register_all(
        r,
        &[
            ("bk/c@1.0.0", &[]),
            ("bk/c@2.0.0", &[]),
            ("bk/a@1.0.0", &[("bk/c", "^1")]),
            ("bk/a@1.1.0", &[("bk/c", "^2")]),
            ("bk/b@1.0.0", &[("bk/c", "^1")]),
            ("bk/app@1.0.0", &[("bk/a", "^1"), ("bk/b", "^1")]),
        ],
    )
    .await?;
    expect_graph(
        resolve(r, "bk/app@1.0.0", ResolveOptions::TRANSITIVE).await?,
        &[
            ("bk/app", "1.0.0"),
            ("bk/a", "1.0.0"),
            ("bk/b", "1.0.0"),
            ("bk/c", "1.0.0"),
        ],
        "a graph solvable only by backtracking",
    )
}

async fn resolve_conflict(r: &dyn Registry) -> CheckResult {
    register_all(
        r,
        &[
            ("cf/c@1.0.0", &[]),
            ("cf/c@2.0.0", &[]),
            ("cf/a@1.0.0", &[("cf/c", "^1")]),
            ("cf/b@1.0.0", &[("cf/c", "^2")]),
            ("cf/app@1.0.0", &[("cf/a", "^1"), ("cf/b", "^1")]),
        ],
    )
    .await?;
    expect_conflict(
        resolve(r, "cf/app@1.0.0", ResolveOptions::TRANSITIVE).await?,
        &["cf/a", "cf/b", "cf/c ^1", "cf/c ^2"],
        "a genuine conflict",
    )
}

/// The ids of a graph, as text, in id order.
fn ids_of(graph: &DependencyGraph) -> Vec<String> {
    graph.packages().map(ToString::to_string).collect()
}

async fn resolve_semver_compatible(r: &dyn Registry) -> CheckResult {
    let cargo = ResolveOptions::TRANSITIVE.with_policy(ResolutionPolicy::SemverCompatible);
    register_all(
        r,
        &[
            ("sc/c@0.13.0", &[]),
            ("sc/c@0.13.2", &[]),
            ("sc/c@0.15.1", &[]),
            ("sc/c@1.0.0", &[]),
            ("sc/a@1.0.0", &[("sc/c", "^0.13")]),
            ("sc/b@1.0.0", &[("sc/c", "^0.15")]),
            ("sc/app@1.0.0", &[("sc/a", "^1"), ("sc/b", "^1")]),
            // One package twice, under its own name and under an alias.
            (
                "sc/twice@1.0.0",
                &[("sc/c", "^1"), ("c013=sc/c", "~0.13.0")],
            ),
            // A requirement spanning two series, met by the highest version of either.
            (
                "sc/wide@1.0.0",
                &[("sc/c", ">=0.13, <0.16"), ("sc/a", "^1")],
            ),
            // The semver trick: 1.0 re-exports 0.15 of itself.
            ("sc/self@0.15.0", &[]),
            ("sc/self@1.0.0", &[("sc/self", "^0.15")]),
        ],
    )
    .await?;
    let ids = |got: Result<DependencyGraph, Error>, what: &str| -> Result<Vec<String>, String> {
        got.map(|g| ids_of(&g))
            .map_err(|e| format!("{what}: resolution failed: {e}"))
    };
    ensure_eq!(
        ids(
            resolve(r, "sc/app@1.0.0", cargo).await?,
            "two series of one package"
        )?,
        [
            "sc/a@1.0.0",
            "sc/app@1.0.0",
            "sc/b@1.0.0",
            "sc/c@0.13.2",
            "sc/c@0.15.1"
        ],
        "under cargo's policy one version per semver-compatible series: 0.13 and 0.15 coexist"
    );
    expect_conflict(
        resolve(r, "sc/app@1.0.0", ResolveOptions::TRANSITIVE).await?,
        &["sc/c ^0.13", "sc/c ^0.15"],
        "under one version per package the same graph conflicts",
    )?;
    ensure_eq!(
        ids(
            resolve(r, "sc/twice@1.0.0", cargo).await?,
            "a renamed dependency"
        )?,
        ["sc/c@0.13.2", "sc/c@1.0.0", "sc/twice@1.0.0"],
        "a package depending on one package under two names gets both series"
    );
    ensure_eq!(
        ids(
            resolve(r, "sc/wide@1.0.0", cargo).await?,
            "a requirement across series"
        )?,
        ["sc/a@1.0.0", "sc/c@0.13.2", "sc/c@0.15.1", "sc/wide@1.0.0"],
        "a requirement spanning series is met by the highest version it allows, in its own series"
    );
    let graph = resolve(r, "sc/self@1.0.0", cargo)
        .await?
        .map_err(|e| format!("the semver trick: {e}"))?;
    ensure_eq!(
        ids_of(&graph),
        ["sc/self@0.15.0", "sc/self@1.0.0"],
        "a package depending on another series of itself"
    );
    ensure_eq!(
        graph.dependencies_of(&pid("sc/self@1.0.0")),
        [pid("sc/self@0.15.0")],
        "the edge to its other series"
    );
    Ok(())
}

async fn resolve_cycle(r: &dyn Registry) -> CheckResult {
    register_all(
        r,
        &[
            ("cy/a@1.0.0", &[("cy/b", "^1")]),
            ("cy/b@1.0.0", &[("cy/c", "^1")]),
            ("cy/c@1.0.0", &[("cy/a", "^1")]),
        ],
    )
    .await?;
    expect_conflict(
        resolve(r, "cy/a@1.0.0", ResolveOptions::TRANSITIVE).await?,
        &["cycle", "cy/a@1.0.0", "cy/b@1.0.0", "cy/c@1.0.0"],
        "a dependency cycle",
    )
}

async fn resolve_yanked(r: &dyn Registry) -> CheckResult {
    register_all(
        r,
        &[
            ("yd/lib@1.0.0", &[]),
            ("yd/lib@1.1.0", &[]),
            ("yd/lib@2.0.0", &[]),
            ("yd/app@1.0.0", &[("yd/lib", "^1")]),
            ("yd/pinned@1.0.0", &[("yd/lib", "=1.1.0")]),
        ],
    )
    .await?;
    r.yank(&pid("yd/lib@1.1.0"), "broken").await.ctx("yank")?;
    expect_graph(
        resolve(r, "yd/app@1.0.0", ResolveOptions::TRANSITIVE).await?,
        &[("yd/app", "1.0.0"), ("yd/lib", "1.0.0")],
        "yanked 1.1.0 is skipped",
    )?;
    expect_graph(
        resolve(r, "yd/pinned@1.0.0", ResolveOptions::TRANSITIVE).await?,
        &[("yd/pinned", "1.0.0"), ("yd/lib", "1.1.0")],
        "an exact pin selects a yanked version",
    )?;
    r.yank(&pid("yd/lib@1.0.0"), "broken").await.ctx("yank")?;
    expect_conflict(
        resolve(r, "yd/app@1.0.0", ResolveOptions::TRANSITIVE).await?,
        &["yd/lib", "yanked"],
        "only yanked versions match",
    )
}

async fn resolve_prerelease(r: &dyn Registry) -> CheckResult {
    register_all(
        r,
        &[
            ("pre/lib@1.0.0", &[]),
            ("pre/lib@1.1.0-beta.1", &[]),
            ("pre/lib@2.0.0-rc.1", &[]),
            ("pre/stable@1.0.0", &[("pre/lib", ">=1")]),
            ("pre/beta@1.0.0", &[("pre/lib", "^1.1.0-beta.1")]),
            ("pre/next@1.0.0", &[("pre/lib", "^2")]),
        ],
    )
    .await?;
    expect_graph(
        resolve(r, "pre/stable@1.0.0", ResolveOptions::TRANSITIVE).await?,
        &[("pre/stable", "1.0.0"), ("pre/lib", "1.0.0")],
        "pre-releases are not chosen unless named",
    )?;
    expect_graph(
        resolve(r, "pre/beta@1.0.0", ResolveOptions::TRANSITIVE).await?,
        &[("pre/beta", "1.0.0"), ("pre/lib", "1.1.0-beta.1")],
        "a requirement naming a pre-release may choose it",
    )?;
    expect_conflict(
        resolve(r, "pre/next@1.0.0", ResolveOptions::TRANSITIVE).await?,
        &["pre/lib"],
        "^2 does not match 2.0.0-rc.1",
    )
}

async fn resolve_missing(r: &dyn Registry) -> CheckResult {
    register_all(r, &[("ms/app@1.0.0", &[("ms/ghost", "^1")])]).await?;
    expect_conflict(
        resolve(r, "ms/app@1.0.0", ResolveOptions::TRANSITIVE).await?,
        &["ms/ghost", "no package named"],
        "a missing dependency",
    )?;
    expect_kind(
        r.resolve_dependencies(&pid("ms/nothing@1.0.0"), ResolveOptions::TRANSITIVE)
            .await,
        ErrorKind::NotFound,
        "resolve a missing root",
    )
}

async fn resolve_direct_only(r: &dyn Registry) -> CheckResult {
    register_all(
        r,
        &[
            ("dr/leaf@1.0.0", &[]),
            ("dr/leaf@1.5.0", &[]),
            ("dr/mid@1.0.0", &[("dr/leaf", "^1")]),
            // The highest dr/mid needs a dr/leaf that dr/app rules out: full resolution picks
            // dr/mid 1.0.0, and so must the direct-only graph.
            ("dr/mid@1.1.0", &[("dr/leaf", "^1.5")]),
            ("dr/app@1.0.0", &[("dr/mid", "^1"), ("dr/leaf", "<1.5")]),
        ],
    )
    .await?;
    expect_graph(
        resolve(r, "dr/app@1.0.0", ResolveOptions::DIRECT).await?,
        &[
            ("dr/app", "1.0.0"),
            ("dr/mid", "1.0.0"),
            ("dr/leaf", "1.0.0"),
        ],
        "transitive = false: the direct dependencies at the versions full resolution chose",
    )?;
    let full = resolve(r, "dr/app@1.0.0", ResolveOptions::TRANSITIVE)
        .await?
        .map_err(|e| format!("full resolution: {e}"))?;
    let direct = resolve(r, "dr/app@1.0.0", ResolveOptions::DIRECT)
        .await?
        .map_err(|e| format!("direct-only resolution: {e}"))?;
    for id in direct.packages() {
        ensure!(
            full.metadata_of(id).is_some(),
            "the direct-only graph holds {id}, which full resolution did not choose"
        );
    }
    Ok(())
}

async fn resolve_fifty(r: &dyn Registry) -> CheckResult {
    // p0 depends on p1 and p2, p1 on p2 and p3, …: 50 packages, three versions each; the
    // ^1 requirements select 1.1.0 everywhere.
    for i in (0..50).rev() {
        let deps: Vec<(String, String)> = [i + 1, i + 2]
            .into_iter()
            .filter(|j| *j < 50)
            .map(|j| (format!("ff/p{j}"), "^1".to_owned()))
            .collect();
        let deps: Vec<(&str, &str)> = deps.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        for v in ["1.0.0", "1.1.0", "2.0.0"] {
            register(r, &package(&format!("ff/p{i}@{v}"), &deps)).await?;
        }
    }
    register(r, &package("ff/root@1.0.0", &[("ff/p0", "^1")])).await?;
    let graph = resolve(r, "ff/root@1.0.0", ResolveOptions::TRANSITIVE)
        .await?
        .map_err(|e| format!("50-package graph: {e}"))?;
    ensure_eq!(graph.len(), 51, "packages in the graph");
    ensure!(
        graph
            .packages()
            .filter(|id| id.name.as_str() != "root")
            .all(|id| id.version == Version::new(1, 1, 0)),
        "every package at 1.1.0: {:?}",
        versions_of(&graph)
    );
    ensure_eq!(
        graph.install_order().len(),
        51,
        "install order covers the graph"
    );
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Register(usize, Version),
    Yank(usize, Version),
    Unyank(usize, Version),
    Get(usize, Version),
    IsYanked(usize, Version),
    ListVersions(usize),
    Resolve(usize, String),
}

const MODEL_NAMES: [&str; 3] = ["alpha", "beta", "gamma"];

fn op_strategy() -> impl Strategy<Value = Op> {
    let pkg = 0..MODEL_NAMES.len();
    let version = (0u64..3, 0u64..3, 0u64..2, any::<bool>()).prop_map(|(a, b, c, pre)| {
        let mut v = Version::new(a, b, c);
        if pre {
            v.pre = marketplace_core::semver::Prerelease::new("beta.1").expect("valid pre-release");
        }
        v
    });
    let requirement = prop_oneof![
        (0u64..3).prop_map(|a| format!("^{a}")),
        (0u64..3, 0u64..3).prop_map(|(a, b)| format!("~{a}.{b}")),
        (0u64..3, 0u64..3).prop_map(|(a, b)| format!(">={a}.{b}.0")),
        (0u64..3, 0u64..3, 0u64..2).prop_map(|(a, b, c)| format!("={a}.{b}.{c}")),
        (0u64..3, 0u64..3, 0u64..2).prop_map(|(a, b, c)| format!("^{a}.{b}.{c}-beta.1")),
        Just("*".to_owned()),
    ];
    prop_oneof![
        4 => (pkg.clone(), version.clone()).prop_map(|(p, v)| Op::Register(p, v)),
        2 => (pkg.clone(), version.clone()).prop_map(|(p, v)| Op::Yank(p, v)),
        1 => (pkg.clone(), version.clone()).prop_map(|(p, v)| Op::Unyank(p, v)),
        1 => (pkg.clone(), version.clone()).prop_map(|(p, v)| Op::Get(p, v)),
        1 => (pkg.clone(), version).prop_map(|(p, v)| Op::IsYanked(p, v)),
        1 => pkg.clone().prop_map(Op::ListVersions),
        3 => (pkg, requirement).prop_map(|(p, q)| Op::Resolve(p, q)),
    ]
}

/// The model: every registered (package, version, yanked), answered by brute force.
#[derive(Default)]
struct Model {
    versions: Vec<(usize, Version, bool)>,
}

impl Model {
    fn find(&mut self, p: usize, v: &Version) -> Option<&mut (usize, Version, bool)> {
        self.versions.iter_mut().find(|(q, w, _)| *q == p && w == v)
    }
}

async fn model_check(r: &dyn Registry, cases: u32) -> CheckResult {
    let strategy = proptest::collection::vec(op_strategy(), 1..40);
    property(cases, strategy, |ops, case| {
        Box::pin(async move {
            let mut model = Model::default();
            let name = |p: usize| format!("model{case}/{}", MODEL_NAMES[p]);
            for (step, op) in ops.iter().enumerate() {
                let at = |p: usize, v: &Version| pid(&format!("{}@{v}", name(p)));
                let doing = format!("step {step} {op:?}");
                match op {
                    Op::Register(p, v) => {
                        let m = package(&format!("{}@{v}", name(*p)), &[]);
                        let got = r.register(m.clone(), m.checksum.clone()).await;
                        if model.find(*p, v).is_some() {
                            expect_kind(got, ErrorKind::AlreadyExists, &doing)?;
                        } else {
                            got.ctx(&doing)?;
                            model.versions.push((*p, v.clone(), false));
                        }
                    }
                    Op::Yank(p, v) | Op::Unyank(p, v) => {
                        let yank = matches!(op, Op::Yank(..));
                        let got = if yank {
                            r.yank(&at(*p, v), "model").await
                        } else {
                            r.unyank(&at(*p, v)).await
                        };
                        match model.find(*p, v) {
                            Some(entry) => {
                                got.ctx(&doing)?;
                                entry.2 = yank;
                            }
                            None => expect_kind(got, ErrorKind::NotFound, &doing)?,
                        }
                    }
                    Op::Get(p, v) => {
                        let got = r.get(&at(*p, v)).await;
                        match model.find(*p, v) {
                            Some(_) => ensure_eq!(got.ctx(&doing)?.id, at(*p, v), "{doing}"),
                            None => expect_kind(got, ErrorKind::NotFound, &doing)?,
                        }
                    }
                    Op::IsYanked(p, v) => {
                        let got = r.is_yanked(&at(*p, v)).await;
                        match model.find(*p, v) {
                            Some(entry) => ensure_eq!(got.ctx(&doing)?, entry.2, "{doing}"),
                            None => expect_kind(got, ErrorKind::NotFound, &doing)?,
                        }
                    }
                    Op::ListVersions(p) => {
                        let got = r.list_versions(&pkg(&name(*p))).await;
                        let mut want: Vec<Version> = model
                            .versions
                            .iter()
                            .filter(|e| e.0 == *p)
                            .map(|e| e.1.clone())
                            .collect();
                        want.sort();
                        if want.is_empty() {
                            expect_kind(got, ErrorKind::NotFound, &doing)?;
                        } else {
                            ensure_eq!(got.ctx(&doing)?, want, "{doing}");
                        }
                    }
                    Op::Resolve(p, text) => {
                        let requirement = req(text);
                        let pin = marketplace_core::is_exact_pin(&requirement);
                        let want = model
                            .versions
                            .iter()
                            .filter(|e| e.0 == *p && requirement.matches(&e.1) && (pin || !e.2))
                            .map(|e| e.1.clone())
                            .max();
                        let got = r
                            .resolve_version(&pkg(&name(*p)), &requirement)
                            .await
                            .ctx(&doing)?;
                        ensure_eq!(got.map(|id| id.version), want, "{doing}");
                    }
                }
            }
            Ok(())
        })
    })
    .await
}
