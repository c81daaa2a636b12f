//! Reading the marketplace: search, suggestions, one version's information, versions,
//! statistics, and a summary of the whole marketplace.

use marketplace_core::{
    IndexStats, PackageId, PackageMetadata, PackageRef, PackageStats, Result, SearchQuery,
    SearchResult, StorageStats, VersionState, YankInfo,
};

use crate::client::{MarketplaceClient, blocking};

/// Everything known about one version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PackageInfo {
    /// Its metadata.
    pub metadata: PackageMetadata,
    /// Set when it is yanked: the reason given and when.
    pub yanked: Option<YankInfo>,
    /// Its download statistics.
    pub stats: PackageStats,
}

/// What [`MarketplaceClient::search_or_closest`] found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Searched {
    /// The hits.
    pub hits: Vec<SearchResult>,
    /// Whether they come from the retry that forgives typos in short words (nothing matched as
    /// written): a "did you mean" for whoever shows them.
    pub respelled: bool,
}

/// The state of a whole marketplace, from its backends (see [`MarketplaceClient::summary`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Packages (names) with at least one version.
    pub packages: u64,
    /// Versions, yanked ones included.
    pub versions: u64,
    /// Yanked versions.
    pub yanked_versions: u64,
    /// Downloads of every package.
    pub downloads: u64,
    /// The package store's object count and bytes.
    pub store: StorageStats,
    /// The search index's statistics.
    pub index: IndexStats,
}

impl MarketplaceClient {
    /// Full-text search (see [`SearchQuery`]).
    pub async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchResult>> {
        let span = tracing::info_span!("marketplace.search", text = %query.text);
        self.flow("search", span, async {
            self.call("search", "search", true, || self.search.search(query))
                .await
        })
        .await
    }

    /// How many packages matching `query` (its text and filters; paging aside) fall in each
    /// category, keyword and namespace, most frequent first.
    pub async fn facets(&self, query: &SearchQuery) -> Result<marketplace_core::Facets> {
        let span = tracing::info_span!("marketplace.facets", text = %query.text);
        self.flow("facets", span, async {
            self.call("search", "facets", true, || self.search.facets(query))
                .await
        })
        .await
    }

    /// Up to `limit` packages like the package of `id`, best first, never that package itself.
    /// `NotFound` if `id` is not indexed.
    pub async fn similar(&self, id: &PackageId, limit: usize) -> Result<Vec<SearchResult>> {
        let span = tracing::info_span!("marketplace.similar", package = %id);
        self.flow("similar", span, async {
            self.call("search", "similar", true, || self.search.similar(id, limit))
                .await
        })
        .await
    }

    /// [`search`](Self::search), and when that finds nothing for a text, the same search again
    /// forgiving a typo in words of 3 and 4 letters (which are otherwise matched only as
    /// written), marked `respelled`. A later page (`offset` > 0) is not retried: its emptiness
    /// means the results ran out.
    pub async fn search_or_closest(&self, query: &SearchQuery) -> Result<Searched> {
        let hits = self.search(query).await?;
        let retry = hits.is_empty()
            && query.offset == 0
            && !query.forgive_short_typos
            && !query.bounded_text().trim().is_empty();
        if !retry {
            return Ok(Searched {
                hits,
                respelled: false,
            });
        }
        let forgiving = query.clone().with_forgive_short_typos(true);
        let hits = self.search(&forgiving).await?;
        let respelled = !hits.is_empty();
        Ok(Searched { hits, respelled })
    }

    /// Package names starting with `prefix`, for completion.
    pub async fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<PackageRef>> {
        let span = tracing::info_span!("marketplace.suggest", prefix);
        self.flow("suggest", span, async {
            self.call("search", "suggest", true, || {
                self.search.suggest(prefix, limit)
            })
            .await
        })
        .await
    }

    /// Metadata, yank state and download statistics of one version.
    pub async fn info(&self, id: &PackageId) -> Result<PackageInfo> {
        let span = tracing::info_span!("marketplace.info", package = %id);
        self.flow("info", span, async {
            let metadata = self.get_checked("info", id).await?;
            let yanked = self.yank_of(id).await?;
            let stats = self
                .call("registry", "get_stats", true, || {
                    self.registry.get_stats(id)
                })
                .await?;
            Ok(PackageInfo {
                metadata,
                yanked,
                stats,
            })
        })
        .await
    }

    /// Why and when `id` was yanked, or `None`: from the version states, which carry the
    /// reason (`is_yanked` does not).
    pub(crate) async fn yank_of(&self, id: &PackageId) -> Result<Option<YankInfo>> {
        let package = id.package();
        let states = self
            .call("registry", "list_version_states", true, || {
                self.registry.list_version_states(&package)
            })
            .await?;
        Ok(states
            .into_iter()
            .find(|s| s.version == id.version)
            .and_then(|s| s.yanked))
    }

    /// The readme of a published version, from its archive (checked against its registered
    /// hash first), with at most `max_bytes` of its text: the file its manifest's `readme`
    /// names, else a top-level `README.md` (see [`marketplace_package::find_readme`]); `None`
    /// when it has none. For catalogues: nothing is counted as a download.
    ///
    /// Errors: `NotFound`, `Integrity` (stored bytes that do not match), `Backend`.
    pub async fn readme(
        &self,
        id: &PackageId,
        max_bytes: usize,
    ) -> Result<Option<marketplace_package::Readme>> {
        let span = tracing::info_span!("marketplace.readme", package = %id);
        self.flow("readme", span, async {
            let metadata = self.get_checked("readme", id).await?;
            let archive = self.fetch_checked("readme", &metadata).await?;
            let manifest = if crate::verify::is_crate(&metadata) {
                marketplace_cargo::CARGO_MANIFEST
            } else {
                marketplace_package::MANIFEST_FILE
            };
            blocking("read the readme", move || {
                marketplace_package::find_readme(&archive, manifest, max_bytes)
            })
            .await
        })
        .await
    }

    /// Every version of a package, ascending, with its yank state. `NotFound` if unknown.
    pub async fn versions(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        let span = tracing::info_span!("marketplace.versions", package = %package);
        self.flow("versions", span, async {
            self.call("registry", "list_version_states", true, || {
                self.registry.list_version_states(package)
            })
            .await
        })
        .await
    }

    /// Download statistics of a version and its package.
    pub async fn stats(&self, id: &PackageId) -> Result<PackageStats> {
        let span = tracing::info_span!("marketplace.stats", package = %id);
        self.flow("stats", span, async {
            self.call("registry", "get_stats", true, || {
                self.registry.get_stats(id)
            })
            .await
        })
        .await
    }

    /// Counts of packages, versions, yanks and downloads (reading the whole registry), with
    /// the store's and the index's statistics.
    pub async fn summary(&self) -> Result<Summary> {
        let span = tracing::info_span!("marketplace.summary");
        self.flow("summary", span, async {
            let mut summary = Summary::default();
            let mut downloads = std::collections::BTreeMap::new();
            for record in self.all_records().await? {
                summary.versions += 1;
                summary.yanked_versions += u64::from(record.is_yanked());
                downloads.insert(record.metadata.id.package().canonical(), record.downloads);
            }
            summary.packages = downloads.len() as u64;
            summary.downloads = downloads.values().sum();
            summary.store = self
                .call("store", "stats", true, || self.store.stats())
                .await?;
            summary.index = self
                .call("search", "stats", true, || self.search.stats())
                .await?;
            Ok(summary)
        })
        .await
    }
}
