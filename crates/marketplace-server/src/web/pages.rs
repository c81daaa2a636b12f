//! The catalogue's pages: maud templates over the client's flows. Every value from a package
//! is escaped by maud (and passed through [`inert`] first); the readme is the only HTML from a
//! package, sanitized before it gets here.

use std::sync::LazyLock;

use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    Error, OwnerTarget, PackageId, PackageMetadata, PackageRef, SearchQuery, SearchResult,
    SortOrder, TrustResult, VersionState, parse_version,
};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::readme::inert;
use super::{PageError, SCRIPT, STYLE, SearchParams, asset_version, chart};
use crate::AppState;

/// Results per page of search, category and dependents pages.
const PER_PAGE: usize = 20;

/// Versions per page of the versions list.
const VERSIONS_PER_PAGE: usize = 100;

/// The furthest page a list goes to.
const MAX_PAGE: usize = 500;

static STYLE_VERSION: LazyLock<String> = LazyLock::new(|| asset_version(STYLE));
static SCRIPT_VERSION: LazyLock<String> = LazyLock::new(|| asset_version(SCRIPT));

/// Every page: the header with the search box, `main`, the footer.
fn layout(title: &str, description: &str, query: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Marketplace" }
                meta name="description" content=(description);
                link rel="stylesheet" href={ "/static/style.css?v=" (*STYLE_VERSION) };
                script src={ "/static/search.js?v=" (*SCRIPT_VERSION) } defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    nav aria-label="Site" {
                        a class="brand" href="/" { "Marketplace" }
                        a href="/categories" { "Categories" }
                    }
                    form role="search" action="/search" method="get" {
                        label for="q" class="visually-hidden" { "Search packages" }
                        input id="q" name="q" type="search" value=(query)
                            placeholder="Search packages" autocomplete="off" list="suggestions"
                            maxlength="256";
                        datalist id="suggestions" {}
                        button type="submit" { "Search" }
                    }
                }
                main id="main" { (main) }
                footer {
                    p {
                        "Served by Marketplace. "
                        a href="/api/v1/openapi.json" { "API" }
                        " · "
                        a href="/cargo/index/config.json" { "Cargo index" }
                    }
                }
            }
        }
    }
}

/// A page that only says something (errors, private mode).
pub(crate) fn message(title: &str, text: &str) -> Markup {
    layout(title, text, "", html! { h1 { (title) } p { (text) } })
}

/// The 404 page: what was asked for, and names like it.
pub(crate) fn not_found(wanted: &str, similar: &[PackageRef]) -> Markup {
    let wanted = bounded(wanted.to_owned(), MAX_FILTER_BYTES);
    let wanted = inert(&wanted);
    layout(
        "Not found",
        "No such package or page",
        "",
        html! {
            h1 { "Not found" }
            @if wanted.is_empty() {
                p { "There is no page here." }
            } @else {
                p { "There is no package or page named " code { bdi { (wanted) } } " here." }
            }
            @if !similar.is_empty() {
                h2 { "Did you mean" }
                ul class="names" {
                    @for package in similar {
                        li { a href=(package_url(package)) { (package) } }
                    }
                }
            }
            p { a href={ "/search?q=" (query_escape(&wanted)) } { "Search for it" } }
        },
    )
}

/// Names like `wanted`: those it begins, then the closest search matches (typos forgiven).
pub(crate) async fn similar_names(state: &AppState, wanted: &str) -> Vec<PackageRef> {
    let wanted = wanted.trim();
    if wanted.is_empty() || wanted.len() > 64 {
        return Vec::new();
    }
    let mut names: Vec<PackageRef> = state.client.suggest(wanted, 5).await.unwrap_or_default();
    let query = SearchQuery::text(wanted.replace(['-', '_', '/'], " ")).with_limit(5);
    if let Ok(found) = state.client.search_or_closest(&query).await {
        for hit in found.hits {
            let package = hit.id.package();
            if !names.iter().any(|n| n.canonical() == package.canonical()) {
                names.push(package);
            }
        }
    }
    names.truncate(8);
    names
}

/// `/packages/NAME` or `/packages/NAMESPACE%2FNAME`.
pub(crate) fn package_url(package: &PackageRef) -> String {
    match &package.namespace {
        Some(ns) => format!("/packages/{ns}%2F{}", package.name),
        None => format!("/packages/{}", package.name),
    }
}

fn version_url(id: &PackageId) -> String {
    format!(
        "{}/{}",
        package_url(&id.package()),
        query_escape(&id.version.to_string())
    )
}

/// Percent-encodes what is not unreserved (for query values and version paths).
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn date(at: OffsetDateTime) -> Markup {
    let iso = at
        .format(&marketplace_core::time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    html! { time datetime=(iso) { (at.date()) } }
}

/// A package name from a path: one that cannot exist is a 404, as an unknown one is.
fn package_of(text: &str) -> Result<PackageRef, PageError> {
    text.parse().map_err(|_| PageError::NoPackage {
        wanted: text.to_owned(),
    })
}

/// An unknown package is a 404 with suggestions; anything else as it is.
fn found<T>(result: marketplace_core::Result<T>, wanted: &str) -> Result<T, PageError> {
    match result {
        Err(Error::NotFound { .. }) => Err(PageError::NoPackage {
            wanted: wanted.to_owned(),
        }),
        other => other.map_err(PageError::from),
    }
}

/// Page numbers start at 1.
fn page_number(page: Option<&str>) -> Result<usize, PageError> {
    match page {
        None | Some("") => Ok(1),
        Some(text) => match text.parse::<usize>() {
            Ok(n @ 1..=MAX_PAGE) => Ok(n),
            _ => Err(PageError::invalid(format!(
                "page {text:?} is not a page number from 1 to {MAX_PAGE}"
            ))),
        },
    }
}

fn result_list(hits: &[SearchResult]) -> Markup {
    html! {
        ol class="results" {
            @for hit in hits {
                li {
                    a class="name" href=(package_url(&hit.id.package())) { (hit.id.package()) }
                    " "
                    span class="version" { (hit.id.version) }
                    @if hit.yanked { " " span class="badge yanked" { "yanked" } }
                    p class="description" { bdi { (snippet(hit)) } }
                    p class="meta" {
                        (hit.downloads) " downloads"
                        @for keyword in hit.keywords.iter().take(5) {
                            " · "
                            a href={ "/search?keyword=" (query_escape(keyword)) } { "#" (keyword) }
                        }
                    }
                }
            }
        }
    }
}

/// The description with the matched words marked, from the plain-text snippets (never the
/// backend's HTML).
fn snippet(hit: &SearchResult) -> Markup {
    let Some(first) = hit.snippets().into_iter().next() else {
        return html! { (inert(&hit.description)) };
    };
    let text = first.text.as_str();
    // (text, matched) pieces; a range that does not fit the text is left unmarked.
    let mut pieces: Vec<(&str, bool)> = Vec::new();
    let mut at = 0;
    for &(start, end) in &first.matches {
        if start < at
            || end > text.len()
            || !text.is_char_boundary(start)
            || !text.is_char_boundary(end)
        {
            continue;
        }
        pieces.push((&text[at..start], false));
        pieces.push((&text[start..end], true));
        at = end;
    }
    pieces.push((&text[at..], false));
    html! {
        @for (piece, matched) in pieces {
            @if matched { mark { (inert(piece)) } } @else { (inert(piece)) }
        }
    }
}

/// `/`: the search box, recently published, most downloaded, categories.
pub(crate) async fn home(state: &AppState) -> Result<Markup, PageError> {
    let client = &state.client;
    let browse = |sort| SearchQuery::default().with_sort(sort).with_limit(10);
    let recent = client.search(&browse(SortOrder::Recent)).await?;
    let popular = client.search(&browse(SortOrder::Downloads)).await?;
    let facets = state.web.facets.of(state, &SearchQuery::default()).await?;
    let stats = client.search_engine().stats().await?;
    Ok(layout(
        "Packages",
        "Browse, search and install the packages of this marketplace",
        "",
        html! {
            h1 { "Marketplace" }
            p class="lead" { (stats.packages) " packages, " (stats.documents) " versions." }
            div class="columns" {
                section aria-labelledby="recent" {
                    h2 id="recent" { "Recently published" }
                    (result_list(&recent))
                }
                section aria-labelledby="popular" {
                    h2 id="popular" { "Most downloaded" }
                    (result_list(&popular))
                }
            }
            section aria-labelledby="categories" {
                h2 id="categories" { "Categories" }
                (category_list(&facets.categories, 24))
                p { a href="/categories" { "Every category" } }
            }
        },
    ))
}

fn category_list(categories: &[(String, u64)], most: usize) -> Markup {
    html! {
        ul class="tags" {
            @for (category, count) in categories.iter().take(most) {
                li { a href={ "/categories/" (query_escape(category)) } { (category) } " " span class="count" { (count) } }
            }
        }
    }
}

/// `/categories`: every category with its package count.
pub(crate) async fn categories(state: &AppState) -> Result<Markup, PageError> {
    let facets = state.web.facets.of(state, &SearchQuery::default()).await?;
    Ok(layout(
        "Categories",
        "Every category of this marketplace",
        "",
        html! {
            h1 { "Categories" }
            @if facets.categories.is_empty() { p { "No package has a category yet." } }
            (category_list(&facets.categories, usize::MAX))
        },
    ))
}

fn sort_of(text: Option<&str>) -> Result<SortOrder, PageError> {
    match text.unwrap_or("") {
        "" | "relevance" => Ok(SortOrder::Relevance),
        "downloads" => Ok(SortOrder::Downloads),
        "recent" => Ok(SortOrder::Recent),
        "name" => Ok(SortOrder::Name),
        other => Err(PageError::invalid(format!(
            "sort {other:?} is not one of relevance, downloads, recent, name"
        ))),
    }
}

/// `text` cut to at most `max` bytes, at a character boundary: what a page shows of a value
/// from its URL (which may be as long as a URL), so that it stays under its size bound.
fn bounded(mut text: String, max: usize) -> String {
    let mut at = max.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.truncate(at);
    text
}

/// The most of a filter value (a category, keyword or namespace) a page takes from its URL.
const MAX_FILTER_BYTES: usize = 128;

/// `/search` and `/categories/{category}`: results with facets, sorts and paging.
pub(crate) async fn search(state: &AppState, params: SearchParams) -> Result<Markup, PageError> {
    // The engine reads no more of the text than this; every link of the page repeats it.
    let filter = |value: Option<String>| value.map(|v| bounded(v, MAX_FILTER_BYTES));
    let params = SearchParams {
        q: bounded(params.q, SearchQuery::MAX_TEXT_BYTES),
        category: filter(params.category),
        keyword: filter(params.keyword),
        namespace: filter(params.namespace),
        sort: filter(params.sort),
        page: filter(params.page),
    };
    let page = page_number(params.page.as_deref())?;
    let sort = sort_of(params.sort.as_deref())?;
    let mut query = SearchQuery::text(params.q.clone())
        .with_categories(params.category.iter().cloned().collect())
        .with_keywords(params.keyword.iter().cloned().collect())
        .with_sort(sort)
        .with_limit(PER_PAGE + 1)
        .with_offset((page - 1) * PER_PAGE);
    if let Some(namespace) = params.namespace.as_deref().filter(|n| !n.is_empty()) {
        query = query.with_namespace(namespace);
    }
    let (found, facets) = tokio::join!(
        state.client.search_or_closest(&query),
        state.web.facets.of(state, &query)
    );
    let (found, facets) = (found?, facets?);
    let mut hits = found.hits;
    let more = hits.len() > PER_PAGE;
    hits.truncate(PER_PAGE);
    let link = |changes: &[(&str, Option<&str>)]| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let current = [
            ("q", Some(params.q.as_str())),
            ("category", params.category.as_deref()),
            ("keyword", params.keyword.as_deref()),
            ("namespace", params.namespace.as_deref()),
            ("sort", params.sort.as_deref()),
        ];
        for (key, value) in current {
            let value = changes
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(value, |(_, v)| *v);
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                pairs.push((key, query_escape(value)));
            }
        }
        if let Some((_, Some(page))) = changes.iter().find(|(k, _)| *k == "page") {
            pairs.push(("page", (*page).to_owned()));
        }
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("/search?{}", query.join("&"))
    };
    let title = match (&params.category, params.q.trim()) {
        (Some(category), "") => format!("Category {category}"),
        (_, "") => "Search".to_owned(),
        (_, text) => format!("Search: {text}"),
    };
    let previous = (page - 1).to_string();
    let next = (page + 1).to_string();
    Ok(layout(
        &title,
        "Packages matching a search",
        &params.q,
        html! {
            h1 { (inert(&title)) }
            div class="search" {
                aside aria-label="Filters" {
                    form action="/search" method="get" class="sort" {
                        input type="hidden" name="q" value=(params.q);
                        @if let Some(category) = &params.category { input type="hidden" name="category" value=(category); }
                        @if let Some(keyword) = &params.keyword { input type="hidden" name="keyword" value=(keyword); }
                        @if let Some(namespace) = &params.namespace { input type="hidden" name="namespace" value=(namespace); }
                        label for="sort" { "Sort by" }
                        select id="sort" name="sort" {
                            @for (value, label) in [("relevance", "Relevance"), ("downloads", "Downloads"), ("recent", "Recently published"), ("name", "Name")] {
                                option value=(value) selected[params.sort.as_deref().unwrap_or("relevance") == value] { (label) }
                            }
                        }
                        button type="submit" { "Apply" }
                    }
                    @if params.category.is_some() || params.keyword.is_some() || params.namespace.is_some() {
                        p { a href=(link(&[("category", None), ("keyword", None), ("namespace", None)])) { "Clear filters" } }
                    }
                    @if !facets.categories.is_empty() {
                        h2 { "Categories" }
                        ul class="facets" {
                            @for (category, count) in facets.categories.iter().take(12) {
                                li { a href=(link(&[("category", Some(category))])) { (category) } " " span class="count" { (count) } }
                            }
                        }
                    }
                    @if !facets.keywords.is_empty() {
                        h2 { "Keywords" }
                        ul class="facets" {
                            @for (keyword, count) in facets.keywords.iter().take(12) {
                                li { a href=(link(&[("keyword", Some(keyword))])) { (keyword) } " " span class="count" { (count) } }
                            }
                        }
                    }
                }
                section aria-label="Results" {
                    @if found.respelled {
                        p class="notice" { "Nothing matched as written; these are close." }
                    }
                    @if hits.is_empty() {
                        p { "No packages match." }
                    } @else {
                        (result_list(&hits))
                    }
                    nav class="pages" aria-label="Pages" {
                        @if page > 1 { a rel="prev" href=(link(&[("page", Some(&previous))])) { "← Previous" } }
                        span { "Page " (page) }
                        @if more { a rel="next" href=(link(&[("page", Some(&next))])) { "Next →" } }
                    }
                }
            }
        },
    ))
}

/// The version a package page shows: the one asked for, else the newest that is not yanked
/// (else the newest).
fn chosen<'a>(
    states: &'a [VersionState],
    package: &PackageRef,
    version: Option<&str>,
) -> Result<&'a VersionState, PageError> {
    match version {
        Some(text) => {
            let version = parse_version(text).map_err(|e| PageError::invalid(e.to_string()))?;
            states
                .iter()
                .find(|s| s.version == version)
                .ok_or_else(|| PageError::NoPackage {
                    wanted: format!("{package}@{version}"),
                })
        }
        None => states
            .iter()
            .rev()
            .find(|s| !s.is_yanked())
            .or_else(|| states.last())
            .ok_or_else(|| PageError::NoPackage {
                wanted: package.to_string(),
            }),
    }
}

/// What a package's pages are about: the package, its versions, and the version shown (see
/// [`chosen`]).
struct Subject {
    package: PackageRef,
    states: Vec<VersionState>,
    chosen: VersionState,
    id: PackageId,
}

/// The [`Subject`] of the page of `name` (at `version`, else its newest): a 404 with
/// suggestions for a package or version that does not exist.
async fn subject(
    state: &AppState,
    name: &str,
    version: Option<&str>,
) -> Result<Subject, PageError> {
    let package = package_of(name)?;
    let states = found(state.client.versions(&package).await, name)?;
    let chosen = chosen(&states, &package, version)?.clone();
    let id = package.at(chosen.version.clone());
    Ok(Subject {
        package,
        states,
        chosen,
        id,
    })
}

/// The tabs of a package's pages.
fn tabs(id: &PackageId, current: &str, versions: usize) -> Markup {
    let package = id.package();
    let entries = [
        ("readme", "Readme".to_owned(), version_url(id)),
        (
            "versions",
            format!("Versions ({versions})"),
            format!("{}/versions", package_url(&package)),
        ),
        (
            "dependencies",
            "Dependencies".to_owned(),
            format!("{}/dependencies", version_url(id)),
        ),
        (
            "dependents",
            "Dependents".to_owned(),
            format!("{}/dependents", package_url(&package)),
        ),
    ];
    html! {
        nav class="tabs" aria-label="Package" {
            @for (key, label, url) in entries {
                @if key == current {
                    a href=(url) aria-current="page" { (label) }
                } @else {
                    a href=(url) { (label) }
                }
            }
        }
    }
}

/// The heading of a package's pages: name, version, yank badge.
fn heading(id: &PackageId, yanked: Option<&marketplace_core::YankInfo>) -> Markup {
    html! {
        div class="heading" {
            h1 { (id.package()) " " span class="version" { (id.version) } }
            @if let Some(yank) = yanked {
                p class="badge yanked" role="status" {
                    "Yanked " (date(yank.at)) ": " bdi { (inert(&yank.reason)) }
                }
            }
        }
    }
}

/// `/packages/{package}` and `/packages/{package}/{version}`.
pub(crate) async fn package(
    state: &AppState,
    name: &str,
    version: Option<&str>,
    base: &str,
) -> Result<Markup, PageError> {
    let Subject {
        package,
        states,
        chosen,
        id,
    } = subject(state, name, version).await?;
    // The version states are read already: the metadata and the statistics are all that is
    // left of `info`. What does not depend on the metadata is read beside it.
    let owners = OwnerTarget::Package(package.clone());
    let (metadata, stats, owners) = tokio::join!(
        state.client.registry().get(&id),
        state.client.stats(&id),
        state.client.owners(&owners)
    );
    let metadata = found(metadata, name)?;
    marketplace_core::check_identity(&id, &metadata)?;
    let metadata = &metadata;
    let stats = stats?;
    // A composition without an account store has no owners to show.
    let owners = owners.unwrap_or_default();
    let trust = async {
        match &metadata.signature {
            Some(signature) => state
                .client
                .crypto()
                .verify_trust(&signature.public_key.key_id())
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let (readme, trust) = tokio::join!(state.web.readmes.of(state, metadata), trust);
    let trust = trust?;
    let newest = states
        .iter()
        .rev()
        .find(|s| !s.is_yanked())
        .map(|s| &s.version);
    let is_crate = metadata
        .extensions
        .contains_key(marketplace_cargo::EXTENSION);
    let description = inert(&metadata.description);
    Ok(layout(
        &format!("{} {}", id.package(), id.version),
        if description.is_empty() {
            "A package of this marketplace"
        } else {
            &description
        },
        "",
        html! {
            (heading(&id, chosen.yanked.as_ref()))
            @if !description.is_empty() { p class="lead" { bdi { (description) } } }
            (tabs(&id, "readme", states.len()))
            div class="package" {
                article class="readme" aria-label="Readme" {
                    @match &readme {
                        Ok(entry) => @match &entry.0 {
                            Some(rendered) => {
                                (PreEscaped(&rendered.html))
                                @if let Some(size) = rendered.cut_from {
                                    p class="notice" { "The readme (" code { (rendered.path) } ", " (size) " bytes) is longer than this page shows; the whole file is in the package." }
                                }
                            }
                            None => p { "This package has no readme." }
                        },
                        Err(e) => p class="notice" { "The readme could not be read: " (e) }
                    }
                }
                aside class="sidebar" aria-label="About this package" {
                    h2 { "Install" }
                    pre class="install" { code { "mkt --registry " (base) " install " (id.package()) "@=" (id.version) } }
                    @if is_crate {
                        p { "With cargo, after adding the registry to " code { ".cargo/config.toml" } ":" }
                        pre class="install" { code { "[registries.marketplace]\nindex = \"sparse+" (base) "/cargo/index/\"" } }
                        pre class="install" { code { "cargo add " (id.name) "@" (id.version) " --registry marketplace" } }
                    }
                    h2 { "Details" }
                    dl {
                        @if let Some(newest) = newest {
                            dt { "Latest version" }
                            dd { a href=(version_url(&package.at(newest.clone()))) { (newest) } }
                        }
                        dt { "Published" } dd { (date(metadata.published_at)) }
                        @if let Some(license) = &metadata.license { dt { "License" } dd { (license) } }
                        @if let Some(url) = &metadata.repository {
                            dt { "Repository" } dd { a href=(url) rel="nofollow noopener noreferrer" { (url) } }
                        }
                        @if let Some(url) = &metadata.homepage {
                            dt { "Homepage" } dd { a href=(url) rel="nofollow noopener noreferrer" { (url) } }
                        }
                        dt { "Size" } dd { (metadata.size) " bytes" }
                        dt { "Checksum" } dd { code class="hash" { (metadata.checksum) } }
                        @if !metadata.authors.is_empty() {
                            dt { "Authors" }
                            @for author in &metadata.authors { dd { bdi { (inert(author)) } } }
                        }
                        @if !owners.is_empty() {
                            dt { "Owners" }
                            @for owner in &owners { dd { (owner) } }
                        }
                    }
                    h2 { "Signature" }
                    (signer(metadata, trust.as_ref()))
                    @if !metadata.keywords.is_empty() {
                        h2 { "Keywords" }
                        ul class="tags" {
                            @for keyword in &metadata.keywords {
                                li { a href={ "/search?keyword=" (query_escape(keyword)) } { "#" (keyword) } }
                            }
                        }
                    }
                    @if !metadata.categories.is_empty() {
                        h2 { "Categories" }
                        ul class="tags" {
                            @for category in &metadata.categories {
                                li { a href={ "/categories/" (query_escape(category)) } { (category) } }
                            }
                        }
                    }
                    h2 { "Downloads" }
                    p { (stats.total_downloads) " in all, " (stats.version_downloads) " of this version." }
                    (chart::downloads(&stats.last_30_days))
                }
            }
        },
    ))
}

/// The signing key's fingerprint and how far this marketplace trusts it.
fn signer(metadata: &PackageMetadata, trust: Option<&TrustResult>) -> Markup {
    let Some(signature) = &metadata.signature else {
        return html! { p class="badge warn" { "Not signed" } };
    };
    let key = signature.public_key.key_id();
    html! {
        p { (signature.algorithm()) " key " code class="hash" { (key) } }
        @match trust {
            Some(TrustResult::Trusted { level, since, .. }) => p class="badge ok" { "Trusted (" (level) ") since " (date(*since)) },
            Some(TrustResult::Revoked { reason, at, .. }) => p class="badge warn" { "Revoked " (date(*at)) ": " bdi { (inert(reason)) } },
            _ => p class="badge warn" { "Not in this marketplace's trust store" },
        }
    }
}

/// `/packages/{package}/versions`: newest first, a page at a time.
pub(crate) async fn versions(
    state: &AppState,
    name: &str,
    page: Option<&str>,
) -> Result<Markup, PageError> {
    let page = page_number(page)?;
    let Subject {
        package,
        states,
        id,
        ..
    } = subject(state, name, None).await?;
    let stats = state.client.stats(&id).await?;
    let shown: Vec<&VersionState> = states
        .iter()
        .rev()
        .skip((page - 1) * VERSIONS_PER_PAGE)
        .take(VERSIONS_PER_PAGE)
        .collect();
    let more = states.len() > page * VERSIONS_PER_PAGE;
    let url = format!("{}/versions", package_url(&package));
    Ok(layout(
        &format!("{package} versions"),
        &format!("Every version of {package}"),
        "",
        html! {
            (heading(&id, None))
            (tabs(&id, "versions", states.len()))
            table class="versions" {
                caption { (states.len()) " versions, newest first" }
                thead { tr { th scope="col" { "Version" } th scope="col" { "Downloads" } th scope="col" { "State" } } }
                tbody {
                    @for s in &shown {
                        tr {
                            td { a href=(version_url(&package.at(s.version.clone()))) { (s.version) } }
                            td { (stats.per_version.get(&s.version).copied().unwrap_or(0)) }
                            td {
                                @if let Some(yank) = &s.yanked {
                                    span class="badge yanked" { "yanked" } " " bdi { (inert(&yank.reason)) }
                                }
                            }
                        }
                    }
                }
            }
            (pager(&url, page, more))
        },
    ))
}

fn pager(url: &str, page: usize, more: bool) -> Markup {
    html! {
        nav class="pages" aria-label="Pages" {
            @if page > 1 { a rel="prev" href={ (url) "?page=" (page - 1) } { "← Previous" } }
            span { "Page " (page) }
            @if more { a rel="next" href={ (url) "?page=" (page + 1) } { "Next →" } }
        }
    }
}

/// `/packages/{package}/{version}/dependencies`.
pub(crate) async fn dependencies(
    state: &AppState,
    name: &str,
    version: &str,
) -> Result<Markup, PageError> {
    let Subject {
        states, chosen, id, ..
    } = subject(state, name, Some(version)).await?;
    let metadata = found(state.client.registry().get(&id).await, name)?;
    marketplace_core::check_identity(&id, &metadata)?;
    let count = metadata.dependencies.len() + metadata.renamed_dependencies.len();
    Ok(layout(
        &format!("{id} dependencies"),
        &format!("What {id} depends on"),
        "",
        html! {
            (heading(&id, chosen.yanked.as_ref()))
            (tabs(&id, "dependencies", states.len()))
            @if count == 0 {
                p { (id) " depends on nothing." }
            } @else {
                table class="dependencies" {
                    caption { (count) " dependencies" }
                    thead { tr { th scope="col" { "Package" } th scope="col" { "Requirement" } } }
                    tbody {
                        @for (dependency, req) in &metadata.dependencies {
                            tr { td { a href=(package_url(dependency)) { (dependency) } } td { code { (req) } } }
                        }
                        @for (alias, renamed) in &metadata.renamed_dependencies {
                            tr {
                                td { a href=(package_url(&renamed.package)) { (renamed.package) } " (as " code { (alias) } ")" }
                                td { code { (renamed.requirement) } }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `/packages/{package}/dependents`.
pub(crate) async fn dependents(
    state: &AppState,
    name: &str,
    page: Option<&str>,
) -> Result<Markup, PageError> {
    let page = page_number(page)?;
    let Subject {
        package,
        states,
        id,
        ..
    } = subject(state, name, None).await?;
    let (dependents, total) = state
        .web
        .dependents
        .of(state, &package, (page - 1) * PER_PAGE, PER_PAGE)
        .await?;
    let url = format!("{}/dependents", package_url(&package));
    Ok(layout(
        &format!("{package} dependents"),
        &format!("The packages that depend on {package}"),
        "",
        html! {
            (heading(&id, None))
            (tabs(&id, "dependents", states.len()))
            @if total == 0 {
                p { "No package depends on " (package) "." }
            } @else {
                table class="dependents" {
                    caption { (total) " packages depend on " (package) " (by their newest version)" }
                    thead { tr { th scope="col" { "Package" } th scope="col" { "Version" } th scope="col" { "Requirement" } } }
                    tbody {
                        @for d in &dependents {
                            tr {
                                td { a href=(package_url(&d.package)) { (d.package) } }
                                td { a href=(version_url(&d.package.at(d.version.clone()))) { (d.version) } }
                                td { code { (d.requirement) } }
                            }
                        }
                    }
                }
                (pager(&url, page, total > page * PER_PAGE))
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketplace_core::semver::Version;

    #[test]
    fn urls_escape_what_a_path_or_query_cannot_hold() {
        let ns: PackageRef = "acme/web".parse().expect("name");
        assert_eq!(package_url(&ns), "/packages/acme%2Fweb");
        let id = ns.at(Version::parse("1.0.0-rc.1+build.5").expect("version"));
        assert_eq!(
            version_url(&id),
            "/packages/acme%2Fweb/1.0.0-rc.1%2Bbuild.5"
        );
        assert_eq!(query_escape("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn page_numbers_are_bounded() {
        assert_eq!(page_number(None).ok(), Some(1));
        assert_eq!(page_number(Some("3")).ok(), Some(3));
        for bad in ["0", "-1", "x", "501"] {
            assert!(page_number(Some(bad)).is_err(), "{bad}");
        }
    }
}
