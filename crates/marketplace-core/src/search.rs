//! The `SearchEngine` trait: package discovery.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::metadata::PackageRecord;
use crate::name::{PackageId, PackageRef};
use crate::registry::DownloadCount;

/// The order of search results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Best match first (exact name, then name, keyword and description matches; downloads
    /// break ties). With no text, most downloaded first.
    #[default]
    Relevance,
    /// Most downloaded first.
    Downloads,
    /// Most recently published first.
    Recent,
    /// By canonical name, then namespace, ascending.
    Name,
}

/// A search. Free text is data: no input is a syntax error or reaches a query language.
///
/// Built with [`SearchQuery::text`] (or `default()`) and the `with_*` methods; the fields stay
/// public for reading and setting, and new ones may come (`#[non_exhaustive]`).
///
/// ```
/// use marketplace_core::{SearchQuery, SortOrder};
///
/// let q = SearchQuery::text("web framework")
///     .with_categories(vec!["web".into()])
///     .with_min_downloads(100)
///     .with_sort(SortOrder::Downloads)
///     .with_limit(5);
/// assert_eq!((q.limit, q.min_downloads), (5, Some(100)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SearchQuery {
    /// Free text (may be empty: then filters alone select). Only the first
    /// [`SearchQuery::MAX_TEXT_BYTES`] are read.
    pub text: String,
    /// Packages must have every one of these categories.
    pub categories: Vec<String>,
    /// Packages must have every one of these keywords.
    pub keywords: Vec<String>,
    /// Packages must be in this namespace.
    pub namespace: Option<String>,
    /// Packages must have at least this many downloads.
    pub min_downloads: Option<u64>,
    /// Consider yanked versions too (default false).
    pub include_yanked: bool,
    /// Also forgive one typo in words of 3 and 4 letters, which are otherwise matched only as
    /// written (too many short words are one edit apart): what a client asks for when the same
    /// search found nothing (default false).
    pub forgive_short_typos: bool,
    /// Result order.
    pub sort: SortOrder,
    /// Most results to return (default 20).
    pub limit: usize,
    /// Results to skip.
    pub offset: usize,
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            text: String::new(),
            categories: Vec::new(),
            keywords: Vec::new(),
            namespace: None,
            min_downloads: None,
            include_yanked: false,
            forgive_short_typos: false,
            sort: SortOrder::Relevance,
            limit: 20,
            offset: 0,
        }
    }
}

impl SearchQuery {
    /// The most of `text` a search reads, in bytes: longer text is cut (on a character
    /// boundary), so that no query text costs more than a sentence does.
    pub const MAX_TEXT_BYTES: usize = 1024;

    /// `text` cut to [`SearchQuery::MAX_TEXT_BYTES`]: what engines search for.
    pub fn bounded_text(&self) -> &str {
        let text = self.text.as_str();
        if text.len() <= Self::MAX_TEXT_BYTES {
            return text;
        }
        let mut cut = Self::MAX_TEXT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        &text[..cut]
    }

    /// A query for `text` with default filters.
    pub fn text(text: impl Into<String>) -> Self {
        SearchQuery {
            text: text.into(),
            ..SearchQuery::default()
        }
    }

    /// Only packages with every one of `categories`.
    pub fn with_categories(mut self, categories: Vec<String>) -> Self {
        self.categories = categories;
        self
    }

    /// Only packages with every one of `keywords`.
    pub fn with_keywords(mut self, keywords: Vec<String>) -> Self {
        self.keywords = keywords;
        self
    }

    /// Only packages in `namespace`.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Only packages with at least `downloads` downloads.
    pub fn with_min_downloads(mut self, downloads: u64) -> Self {
        self.min_downloads = Some(downloads);
        self
    }

    /// Whether yanked versions count too.
    pub fn with_include_yanked(mut self, include: bool) -> Self {
        self.include_yanked = include;
        self
    }

    /// Whether one typo is forgiven in words of 3 and 4 letters too.
    pub fn with_forgive_short_typos(mut self, forgive: bool) -> Self {
        self.forgive_short_typos = forgive;
        self
    }

    /// The result order.
    pub fn with_sort(mut self, sort: SortOrder) -> Self {
        self.sort = sort;
        self
    }

    /// At most `limit` results.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Skip the first `offset` results.
    pub fn with_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }
}

/// One hit: a package at its current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SearchResult {
    /// The version shown: by default the package's latest version that is not yanked.
    pub id: PackageId,
    /// Its description.
    pub description: String,
    /// Its keywords.
    pub keywords: Vec<String>,
    /// Its categories.
    pub categories: Vec<String>,
    /// Downloads of the package.
    pub downloads: u64,
    /// Whether the version shown is yanked (only with `include_yanked`).
    pub yanked: bool,
    /// Relevance score (higher is better; comparable within one result list only).
    pub score: f32,
    /// Snippets of the description, HTML-escaped, with matched terms between `<b>` and `</b>`
    /// ([`SearchResult::snippets`] gives them as plain text with offsets).
    pub highlights: Vec<String>,
}

impl SearchResult {
    /// A hit for `id` with `score` and nothing else yet: set the other fields, or use
    /// [`SearchResult::from_record`].
    pub fn new(id: PackageId, score: f32) -> Self {
        SearchResult {
            id,
            description: String::new(),
            keywords: Vec::new(),
            categories: Vec::new(),
            downloads: 0,
            yanked: false,
            score,
            highlights: Vec::new(),
        }
    }

    /// The highlights as plain text with the matched ranges as offsets.
    pub fn snippets(&self) -> Vec<Snippet> {
        self.highlights
            .iter()
            .map(|h| Snippet::from_highlight(h))
            .collect()
    }

    /// A hit for `record`, with its summary fields copied from the record.
    pub fn from_record(record: &PackageRecord, score: f32, highlights: Vec<String>) -> Self {
        let m = &record.metadata;
        SearchResult {
            id: m.id.clone(),
            description: m.description.clone(),
            keywords: m.keywords.clone(),
            categories: m.categories.clone(),
            downloads: record.downloads,
            yanked: record.is_yanked(),
            score,
            highlights,
        }
    }
}

/// A highlight as plain text with the matched ranges as offsets: what a program (or a page
/// that escapes text itself) wants instead of `<b>` markup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snippet {
    /// The snippet's text, unescaped.
    pub text: String,
    /// The matched ranges, as `[start, end)` byte offsets into `text` (UTF-8), ascending.
    pub matches: Vec<(usize, usize)>,
}

impl Snippet {
    /// Reads one of [`SearchResult::highlights`]: HTML-escaped text with matches between
    /// `<b>` and `</b>`. An unclosed `<b>` ends at the end of the text.
    pub fn from_highlight(html: &str) -> Snippet {
        let mut text = String::with_capacity(html.len());
        let mut matches = Vec::new();
        let mut open = None;
        let mut rest = html;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("<b>") {
                open.get_or_insert(text.len());
                rest = after;
            } else if let Some(after) = rest.strip_prefix("</b>") {
                if let Some(start) = open.take()
                    && start < text.len()
                {
                    matches.push((start, text.len()));
                }
                rest = after;
            } else if let Some((entity, c)) = [
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&quot;", '"'),
                ("&#39;", '\''),
                ("&#x27;", '\''),
                ("&amp;", '&'),
            ]
            .into_iter()
            .find(|(entity, _)| rest.starts_with(entity))
            {
                text.push(c);
                rest = &rest[entity.len()..];
            } else {
                let c = rest.chars().next().unwrap_or_default();
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if let Some(start) = open.filter(|&start| start < text.len()) {
            matches.push((start, text.len()));
        }
        Snippet { text, matches }
    }
}

/// Counts of packages per value, for narrowing a search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Facets {
    /// Category → number of matching packages, most frequent first.
    pub categories: Vec<(String, u64)>,
    /// Keyword → number of matching packages, most frequent first.
    pub keywords: Vec<(String, u64)>,
    /// Namespace → number of matching packages, most frequent first.
    pub namespaces: Vec<(String, u64)>,
}

impl Facets {
    /// Counts per category, keyword and namespace.
    pub fn new(
        categories: Vec<(String, u64)>,
        keywords: Vec<(String, u64)>,
        namespaces: Vec<(String, u64)>,
    ) -> Self {
        Facets {
            categories,
            keywords,
            namespaces,
        }
    }
}

/// Size of an index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IndexStats {
    /// Indexed versions.
    pub documents: u64,
    /// Distinct packages.
    pub packages: u64,
}

impl IndexStats {
    /// A search index's counts.
    pub fn new(documents: u64, packages: u64) -> Self {
        IndexStats {
            documents,
            packages,
        }
    }
}

/// Package discovery.
///
/// The engine indexes [`PackageRecord`]s (metadata plus yank state and downloads), one document
/// per version; searches return one hit per package: its *current* version, the highest
/// version that is not yanked (with `include_yanked`, the highest version), preferring stable
/// versions over pre-releases. A package is considered only through its current version.
/// Everything indexed is searchable when the call returns.
#[async_trait]
pub trait SearchEngine: Send + Sync {
    /// Adds or replaces the document of one version.
    async fn index(&self, record: &PackageRecord) -> Result<()>;

    /// Adds or replaces many documents. The provided implementation indexes one by one;
    /// backends override it to commit once.
    async fn index_batch(&self, records: &[PackageRecord]) -> Result<()> {
        crate::provided::index_batch(self, records).await
    }

    /// Replaces the document of one version (yank state, downloads or metadata changed).
    /// Same as [`SearchEngine::index`]; named for readability at call sites.
    async fn update(&self, record: &PackageRecord) -> Result<()> {
        self.index(record).await
    }

    /// Removes the document of one version; removing an absent one is fine.
    async fn remove(&self, id: &PackageId) -> Result<()>;

    /// Runs a query. An empty result is not an error.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchResult>>;

    /// Package names starting with `prefix` (case-insensitive, `_` read as `-`), most
    /// downloaded first. Yanked-only packages are not suggested.
    async fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<PackageRef>>;

    /// Category, keyword and namespace counts over every package matching `query` (its
    /// limit and offset are ignored).
    async fn facets(&self, query: &SearchQuery) -> Result<Facets>;

    /// Packages like the package of `id` (sharing keywords, categories, description words),
    /// best first, never that package itself. `NotFound` if `id` is not indexed.
    async fn similar(&self, id: &PackageId, limit: usize) -> Result<Vec<SearchResult>>;

    /// Replaces the whole index with `records`; returns how many were indexed.
    async fn rebuild(&self, records: Box<dyn Iterator<Item = PackageRecord> + Send>)
    -> Result<u64>;

    /// Compacts the index (merges segments). Results do not change.
    async fn optimize(&self) -> Result<()>;

    /// Number of documents and packages.
    async fn stats(&self) -> Result<IndexStats>;

    /// How far this index has followed the registry's change feed: the `seq` of the last event
    /// applied (`Some(0)` for a fresh or rebuilt index), or `None` when the engine keeps no
    /// position — the client then indexes each change as it makes it and repairs by
    /// [`SearchEngine::rebuild`]. Engines that keep one keep it across restarts. Provided:
    /// `None`.
    async fn feed_position(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Indexes `records` and records `position` as applied, in one step where the engine can
    /// (a crash must never leave a position past what was indexed; applying events twice is
    /// harmless, every record replaces its version). [`SearchEngine::rebuild`] resets the
    /// position to 0. Provided: [`SearchEngine::index_batch`]; the position is not kept.
    async fn apply_feed(&self, records: &[PackageRecord], position: u64) -> Result<()> {
        let _ = position;
        self.index_batch(records).await
    }

    /// How far this index has followed the registry's download totals
    /// ([`crate::Registry::downloads_since`]): the stamp of the last count applied (`Some(0)` for
    /// a fresh or rebuilt index), or `None` when the engine does not follow them. Engines that
    /// keep one keep it across restarts. Provided: `None`.
    async fn downloads_position(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Sets the downloads of every indexed version of each package in `counts` to its total
    /// (packages not indexed are skipped) and records `position` as applied, in one step where
    /// the engine can. [`SearchEngine::rebuild`] resets the position to 0. Provided: refuses
    /// (`Backend`) — an engine whose [`SearchEngine::downloads_position`] is `Some` implements it.
    async fn apply_downloads(&self, counts: &[DownloadCount], position: u64) -> Result<()> {
        let _ = (counts, position);
        Err(crate::Error::backend(
            "search",
            "apply_downloads",
            "this search engine does not follow download totals",
            false,
        ))
    }
}

#[cfg(test)]
mod snippet_tests {
    use super::Snippet;

    #[test]
    fn a_highlight_becomes_plain_text_with_byte_offsets() {
        let s =
            Snippet::from_highlight("Routing &amp; <b>templates</b> for <b>web</b> — <b>größe</b>");
        assert_eq!(s.text, "Routing & templates for web — größe");
        let matched: Vec<&str> = s.matches.iter().map(|&(a, b)| &s.text[a..b]).collect();
        assert_eq!(matched, ["templates", "web", "größe"]);
        assert_eq!(
            Snippet::from_highlight("&lt;b&gt; is text, <b>this</b> a match"),
            Snippet {
                text: "<b> is text, this a match".into(),
                matches: vec![(13, 17)]
            }
        );
        let unclosed = Snippet::from_highlight("a <b>tail");
        assert_eq!(unclosed.matches, vec![(2, 6)]);
        assert!(Snippet::from_highlight("<b></b>none").matches.is_empty());
    }
}
