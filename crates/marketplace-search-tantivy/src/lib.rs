//! `SearchEngine` on tantivy: one hit per package, typo tolerance, facets, suggestions, in RAM
//! or on disk.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bonus;
mod error;
mod filtered;
mod query;
mod read_only;
mod record;
mod schema;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::bonus::Bonus;
use crate::filtered::{FilterCache, Filtered};
use async_trait::async_trait;
use marketplace_core::{
    DownloadCount, Error, Facets, IndexStats, PackageId, PackageRecord, PackageRef, Result,
    SearchEngine, SearchQuery, SearchResult, SortOrder,
};
use tantivy::collector::{Collector, Count, DocSetCollector, FacetCollector, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, EnableScoring, MoreLikeThisQuery, Occur, Query,
    TermQuery,
};
use tantivy::schema::{Facet, Field, IndexRecordOption, OwnedValue, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{
    DocAddress, Executor, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Searcher,
    TantivyDocument, Term,
};

use crate::error::SearchError;
use crate::record::Stored;
use crate::schema::Fields;

/// Memory the index writer may use before flushing a segment.
const WRITER_MEMORY: usize = 64 * 1024 * 1024;

/// Segments of one size class that are merged into one (see [`merge_policy`]).
const MERGE_AT_SEGMENTS: usize = 8;
/// The share of deleted documents at which a segment is merged on its own.
const MERGE_AT_DELETED: f32 = 0.3;

/// The least memory tantivy lets a writer have: the writer that only holds a stale index's
/// lock while it is cleared.
const STALE_WRITER_MEMORY: usize = 15_000_000;

/// The commit payload of an index whose documents all follow the current layout: searchable
/// text only on current versions, and the [`query::HIDDEN`] marks.
const LAYOUT: &str = "marketplace-search-tantivy layout 2";

/// What popularity adds to a relevance score, per unit of `ln(1 + n)`: downloads, and the
/// packages whose current version depends on the hit (a stronger sign of use). Both stay below
/// what one more matched query word adds, so they order good matches, not poor ones above them.
const DOWNLOADS_WEIGHT: f32 = 0.05;
const DEPENDENTS_WEIGHT: f32 = 0.5;

/// Indexes with at least this many documents search their segments in parallel.
const PARALLEL_SEARCH_DOCS: u64 = 50_000;

/// A [`SearchEngine`] on tantivy, in RAM or in a directory.
///
/// Every version is a document; flags mark each package's current version (highest not
/// yanked, stable before pre-release) so that a search returns one hit per package. Writes
/// commit and reload before returning, so what was indexed is searchable at once.
#[derive(Clone)]
pub struct TantivySearchEngine {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    index: Index,
    reader: IndexReader,
    /// `None` when opened read-only: every write is refused.
    writer: Mutex<Option<IndexWriter>>,
    fields: Fields,
    /// Searches the segments of a large index in parallel, one thread per core.
    parallel: Executor,
    /// Indexes with at least this many documents use `parallel`.
    parallel_from: u64,
    /// Whether every document follows [`LAYOUT`] (only current versions carry searchable
    /// text, hidden ones are marked), so text queries need no current-version filter. An index
    /// written by an older version of this crate does not, until `rebuild`.
    layout: AtomicBool,
    /// How far the index has followed the registry's change feed (recorded in each commit's
    /// payload).
    feed: AtomicU64,
    /// How far the index has followed the registry's download totals (in the payload too).
    downloads: AtomicU64,
    /// The per-segment document sets of recent filters (see `filtered`).
    filters: Arc<FilterCache>,
}

impl std::fmt::Debug for TantivySearchEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivySearchEngine")
            .field("index", &self.inner.name)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `limit`, but no more than the documents there are (at least 1, as tantivy requires).
fn bound_limit(searcher: &Searcher, limit: usize) -> usize {
    let documents = usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX);
    limit.min(documents).max(1)
}

/// What a commit's payload records: one line per fact.
struct Payload {
    /// Every document follows [`LAYOUT`].
    layout: bool,
    /// The change-feed position applied (0 when none was recorded).
    feed: u64,
    /// The download-total stamp applied (0 when none was recorded).
    downloads: u64,
}

const FEED_PREFIX: &str = "feed ";
const DOWNLOADS_PREFIX: &str = "downloads ";

impl Payload {
    fn parse(payload: Option<&str>) -> Self {
        let lines = payload.unwrap_or_default().lines();
        let mut parsed = Payload {
            layout: false,
            feed: 0,
            downloads: 0,
        };
        for line in lines {
            if line == LAYOUT {
                parsed.layout = true;
            } else if let Some(n) = line.strip_prefix(FEED_PREFIX) {
                parsed.feed = n.trim().parse().unwrap_or(0);
            } else if let Some(n) = line.strip_prefix(DOWNLOADS_PREFIX) {
                parsed.downloads = n.trim().parse().unwrap_or(0);
            }
        }
        parsed
    }
}

impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.layout {
            writeln!(f, "{LAYOUT}")?;
        }
        write!(
            f,
            "{FEED_PREFIX}{}\n{DOWNLOADS_PREFIX}{}",
            self.feed, self.downloads
        )
    }
}

/// The merge policy, suited to many small commits (one publish, one commit): tantivy's log
/// policy, which folds every 8 segments of a size class into one — 1,000 one-at-a-time
/// publishes leave about five segments (4 merged more often at no gain in search time, and
/// left fewer, larger segments for a large index's parallel search) — and which here also
/// merges a segment on its own once 30% of its documents are deleted (every new version
/// rewrites its package's documents, and every dependent's publish its dependencies' current
/// ones).
fn merge_policy() -> tantivy::merge_policy::LogMergePolicy {
    let mut policy = tantivy::merge_policy::LogMergePolicy::default();
    policy.set_min_num_segments(MERGE_AT_SEGMENTS);
    policy.set_del_docs_ratio_before_merge(MERGE_AT_DELETED);
    policy
}

/// Removes the files of an index written with another schema, holding its writer lock.
fn clear_stale(existing: Index, dir: &Path) -> std::result::Result<(), SearchError> {
    let index = dir.display().to_string();
    let writer: IndexWriter = existing
        .writer_with_num_threads(1, STALE_WRITER_MEMORY)
        .map_err(|source| SearchError::Tantivy {
            index: index.clone(),
            source,
        })?;
    let entries = std::fs::read_dir(dir).map_err(|source| SearchError::Clear {
        index: index.clone(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| SearchError::Clear {
            index: index.clone(),
            source,
        })?;
        let path = entry.path();
        let lock = entry.file_name().to_string_lossy().ends_with(".lock");
        if path.is_file() && !lock {
            std::fs::remove_file(&path).map_err(|source| SearchError::Clear {
                index: index.clone(),
                source,
            })?;
        }
    }
    drop(writer);
    Ok(())
}

/// The order in which a package's versions compete to be current.
fn rank(record: &Stored) -> (bool, &marketplace_core::semver::Version) {
    let version = &record.id.version;
    (version.pre.is_empty(), version)
}

/// A package's current version: the highest not yanked, stable before pre-release.
fn current_of(versions: &[Stored]) -> Option<&Stored> {
    versions
        .iter()
        .filter(|r| !r.yanked)
        .max_by(|a, b| rank(a).cmp(&rank(b)))
}

/// The packages a version depends on, as dependents count them: itself excluded (a package
/// depending on another major version of itself is not its own dependent).
fn current_dependencies(version: &Stored) -> BTreeSet<String> {
    let own = version.id.package().canonical();
    version
        .dependencies
        .iter()
        .filter(|d| **d != own)
        .cloned()
        .collect()
}

/// What the current version of a package (given all its versions) depends on.
fn current_dependencies_of(versions: &[Stored]) -> BTreeSet<String> {
    current_of(versions)
        .map(current_dependencies)
        .unwrap_or_default()
}

/// [`current_dependencies_of`] for each package.
fn dependencies_by_package(
    packages: &BTreeMap<String, Vec<Stored>>,
) -> BTreeMap<String, BTreeSet<String>> {
    packages
        .iter()
        .map(|(package, versions)| (package.clone(), current_dependencies_of(versions)))
        .collect()
}

/// The settings of a new index: doc-store blocks of 4 KiB instead of tantivy's 16 KiB, so that
/// loading one hit decompresses a quarter as much (hits are scattered, one per block); an
/// existing index keeps the settings it was created with.
fn index_settings() -> tantivy::IndexSettings {
    tantivy::IndexSettings {
        docstore_blocksize: DOCSTORE_BLOCK,
        ..tantivy::IndexSettings::default()
    }
}

/// Doc-store block size of new indexes, in bytes.
const DOCSTORE_BLOCK: usize = 4_096;

impl TantivySearchEngine {
    /// An empty index in RAM.
    pub fn in_memory() -> Result<Self> {
        let (schema, fields) = schema::build();
        Self::start(
            Index::builder()
                .schema(schema)
                .settings(index_settings())
                .create_in_ram()
                .map_err(|source| {
                    SearchError::Tantivy {
                        index: "in-memory index".into(),
                        source,
                    }
                    .during("create the in-memory index")
                })?,
            fields,
            "in-memory index".to_owned(),
        )
    }

    /// The index in directory `dir`, created (with parent directories) if missing.
    ///
    /// An index written with another schema (by another version of this crate) is derived data
    /// that this version cannot search: it is emptied, under its writer lock (an index another
    /// process is writing is busy, a transient error, and left alone), and opened anew with
    /// no feed position, so that the client rebuilds it from the registry.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let name = format!("index {}", dir.display());
        let opening = format!("open the search {name}");
        std::fs::create_dir_all(dir).map_err(|source| {
            SearchError::CreateDir {
                path: dir.display().to_string(),
                source,
            }
            .during(&opening)
        })?;
        let (schema, fields) = schema::build();
        let tantivy_err = |source| {
            SearchError::Tantivy {
                index: name.clone(),
                source,
            }
            .during(&opening)
        };
        let mut directory = MmapDirectory::open(dir).map_err(|e| tantivy_err(e.into()))?;
        if Index::exists(&directory).map_err(|e| tantivy_err(e.into()))? {
            let existing = Index::open(directory.clone()).map_err(tantivy_err)?;
            if existing.schema() != schema {
                clear_stale(existing, dir).map_err(|e| e.during(&opening))?;
                directory = MmapDirectory::open(dir).map_err(|e| tantivy_err(e.into()))?;
            }
        }
        let index = Index::builder()
            .schema(schema)
            .settings(index_settings())
            .open_or_create(directory)
            .map_err(tantivy_err)?;
        Self::start(index, fields, name)
    }

    /// The existing index in directory `dir`, for reading only (a home on a read-only disk or
    /// directory): searches work, every write is refused (`Backend`, saying the index is
    /// read-only), and nothing in `dir` is created, locked or cleaned.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let name = format!("index {}", dir.display());
        let opening = format!("open the search {name} read-only");
        let tantivy_err = |source| {
            SearchError::Tantivy {
                index: name.clone(),
                source,
            }
            .during(&opening)
        };
        let directory = MmapDirectory::open(dir).map_err(|e| tantivy_err(e.into()))?;
        let index =
            Index::open(read_only::ReadOnlyDirectory::new(directory)).map_err(tantivy_err)?;
        let (schema, fields) = schema::build();
        if index.schema() != schema {
            return Err(SearchError::Corrupt {
                index: name.clone(),
                reason: "its schema is not this version's; rebuild it with write access".into(),
            }
            .during(&opening));
        }
        Self::start_with(index, fields, name, false)
    }

    /// How many segments a search walks now (each commit adds one; merges fold them).
    pub fn segment_count(&self) -> usize {
        self.inner.reader.searcher().segment_readers().len()
    }

    /// Whether this index was opened read-only.
    pub fn is_read_only(&self) -> bool {
        lock(&self.inner.writer).is_none()
    }

    fn start(index: Index, fields: Fields, name: String) -> Result<Self> {
        Self::start_with(index, fields, name, true)
    }

    /// Opens the reader and, when `writable`, the writer (which takes the index's writer lock).
    fn start_with(index: Index, fields: Fields, name: String, writable: bool) -> Result<Self> {
        let fail = |source| {
            SearchError::Tantivy {
                index: name.clone(),
                source,
            }
            .during("open the search index")
        };
        index.tokenizers().register(
            schema::EDGE_TOKENIZER,
            schema::edge_analyzer().map_err(fail)?,
        );
        let reader = index
            .reader_builder()
            // Writes reload before they return (read your writes). Not `OnCommitWithDelay`:
            // its reloads made every write wait (1,000 single writes took 70 s instead of 8).
            // A background merge is seen from the next write on.
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(fail)?;
        let writer = if writable {
            let writer = index
                .writer_with_num_threads(1, WRITER_MEMORY)
                .map_err(fail)?;
            // Files a killed writer left uncommitted are unreferenced, and this writer reuses
            // their operation stamps, so one would collide with a file it writes (a delete file
            // is named by segment and stamp). Holding the writer lock, nothing else is writing:
            // remove them.
            writer.garbage_collect_files().wait().map_err(fail)?;
            writer.set_merge_policy(Box::new(merge_policy()));
            Some(writer)
        } else {
            None
        };
        // An empty index starts in the current layout; a non-empty one is in it only if its
        // last commit says so.
        let metas = index.load_metas().map_err(fail)?;
        let payload = Payload::parse(metas.payload.as_deref());
        let layout = metas.segments.is_empty() || payload.layout;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let parallel = Executor::multi_thread(threads, "marketplace-search-").map_err(fail)?;
        Ok(TantivySearchEngine {
            inner: Arc::new(Inner {
                name,
                index,
                reader,
                writer: Mutex::new(writer),
                fields,
                parallel,
                parallel_from: PARALLEL_SEARCH_DOCS,
                layout: AtomicBool::new(layout),
                feed: AtomicU64::new(payload.feed),
                downloads: AtomicU64::new(payload.downloads),
                filters: Arc::default(),
            }),
        })
    }

    /// Runs a write on the blocking pool: `op` changes the index, then it is committed and the
    /// reader reloaded.
    async fn write<T, F>(&self, operation: String, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut IndexWriter) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let name = inner.name.clone();
        let operation_name = operation.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut guard = lock(&inner.writer);
            let writer = guard
                .as_mut()
                .ok_or_else(|| inner.read_only(&operation_name))?;
            let layout = inner.layout.load(Ordering::Acquire);
            let feed = inner.feed.load(Ordering::Acquire);
            let downloads = inner.downloads.load(Ordering::Acquire);
            let restore = |inner: &Inner| {
                inner.layout.store(layout, Ordering::Release);
                inner.feed.store(feed, Ordering::Release);
                inner.downloads.store(downloads, Ordering::Release);
            };
            let value = match op(&inner, writer) {
                Ok(value) => value,
                Err(e) => {
                    restore(&inner);
                    let _ = writer.rollback();
                    return Err(e);
                }
            };
            if let Err(e) = inner.commit(writer) {
                restore(&inner);
                return Err(e);
            }
            inner
                .reader
                .reload()
                .map_err(|e| inner.fail("reload the reader", e))?;
            Ok(value)
        });
        match task.await {
            Ok(result) => result,
            Err(join) => Err(SearchError::Task {
                index: name,
                reason: join.to_string(),
            }
            .during(operation)),
        }
    }
}

impl Inner {
    /// Commits, recording in the commit's payload the layout (when every document follows it)
    /// and the change-feed position: one atomic step with the documents.
    fn commit(&self, writer: &mut IndexWriter) -> Result<()> {
        let fail = |e| self.fail("commit", e);
        let mut commit = writer.prepare_commit().map_err(fail)?;
        let payload = Payload {
            layout: self.layout.load(Ordering::Acquire),
            feed: self.feed.load(Ordering::Acquire),
            downloads: self.downloads.load(Ordering::Acquire),
        };
        commit.set_payload(&payload.to_string());
        commit.commit().map_err(fail)?;
        Ok(())
    }

    /// The refusal of a write to an index opened read-only.
    fn read_only(&self, operation: &str) -> Error {
        SearchError::ReadOnly {
            index: self.name.clone(),
        }
        .during(operation)
    }

    fn fail(&self, operation: &str, source: tantivy::TantivyError) -> Error {
        SearchError::Tantivy {
            index: self.name.clone(),
            source,
        }
        .during(operation)
    }

    fn record_of(&self, doc: &TantivyDocument) -> Result<Stored> {
        let json = doc
            .get_first(self.fields.record)
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                SearchError::Corrupt {
                    index: self.name.clone(),
                    reason: "no record field".into(),
                }
                .during("read a document")
            })?;
        record::decode(json).map_err(|reason| {
            SearchError::Corrupt {
                index: self.name.clone(),
                reason,
            }
            .during("read a document")
        })
    }

    fn load(&self, searcher: &Searcher, address: DocAddress) -> Result<Stored> {
        let doc: TantivyDocument = searcher
            .doc(address)
            .map_err(|e| self.fail("load a document", e))?;
        self.record_of(&doc)
    }

    /// Every indexed version of the package with canonical key `package`.
    fn versions(&self, searcher: &Searcher, package: &str) -> Result<Vec<Stored>> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.package, package),
            IndexRecordOption::Basic,
        );
        let found = searcher
            .search(&query, &DocSetCollector)
            .map_err(|e| self.fail("find versions", e))?;
        found
            .into_iter()
            .map(|address| self.load(searcher, address))
            .collect()
    }

    fn document(
        &self,
        m: &Stored,
        current: bool,
        current_any: bool,
        dependents: u64,
    ) -> Result<TantivyDocument> {
        let f = &self.fields;
        let package = m.id.package().canonical();
        let name = m.id.name.canonical();
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, m.id.canonical());
        doc.add_text(f.package, &package);
        doc.add_text(f.name_sort, format!("{name} {package}"));
        for category in &m.categories {
            doc.add_text(f.category_raw, category.to_lowercase());
        }
        for keyword in &m.keywords {
            doc.add_text(f.keyword_raw, keyword.to_lowercase());
        }
        if let Some(namespace) = &m.id.namespace {
            doc.add_text(f.namespace, namespace.canonical());
        }
        // Only a package's current versions are ever hits (every query filters on a current
        // flag), so older versions carry no searchable text: a text query then walks the
        // postings of one or two documents per package instead of every version's.
        if current || current_any {
            doc.add_text(f.name, m.id.name.as_str());
            doc.add_text(f.name_exact, &name);
            doc.add_text(f.name_prefix, &name);
            for keyword in &m.keywords {
                doc.add_text(f.keywords, keyword);
                doc.add_facet(f.facets, Facet::from_path(["keyword", keyword.as_str()]));
            }
            for category in &m.categories {
                doc.add_facet(f.facets, Facet::from_path(["category", category.as_str()]));
            }
            if let Some(namespace) = &m.id.namespace {
                doc.add_facet(
                    f.facets,
                    Facet::from_path(["namespace", namespace.as_str()]),
                );
            }
            doc.add_text(f.description, &m.description);
            for pair in self.description_pairs(&m.description)? {
                doc.add_text(f.description_pairs, pair);
            }
            for author in &m.authors {
                doc.add_text(f.authors, author);
            }
            if let Some(license) = &m.license {
                doc.add_text(f.license, license.as_str());
            }
        }
        if current {
            for dependency in current_dependencies(m) {
                doc.add_text(f.depends_on, dependency);
            }
        }
        doc.add_u64(f.dependents, dependents);
        doc.add_u64(f.popularity, popularity(m.downloads, dependents));
        doc.add_u64(f.downloads, m.downloads);
        doc.add_i64(f.published, m.published_at.unix_timestamp());
        doc.add_u64(f.current, u64::from(current));
        doc.add_u64(f.current_any, u64::from(current_any));
        // The version current under one mode only is marked in the other mode's field, so
        // that a text query of that other mode can exclude it (see `query::filters`).
        if current && !current_any {
            doc.add_u64(f.current, query::HIDDEN);
        }
        if current_any && !current {
            doc.add_u64(f.current_any, query::HIDDEN);
        }
        let json = record::encode(m).map_err(|reason| {
            SearchError::Corrupt {
                index: self.name.clone(),
                reason,
            }
            .during("index a document")
        })?;
        doc.add_text(f.record, json);
        Ok(doc)
    }

    /// Each pair of adjacent words of a description, stemmed as the description is indexed.
    fn description_pairs(&self, description: &str) -> Result<BTreeSet<String>> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.fields.description)
            .map_err(|e| self.fail("index a description", e))?;
        let mut stream = analyzer.token_stream(description);
        let mut pairs = BTreeSet::new();
        let mut previous: Option<(usize, String)> = None;
        while let Some(token) = stream.next() {
            if let Some((position, word)) = &previous
                && position + 1 == token.position
            {
                pairs.insert(query::pair_text(word, &token.text));
            }
            previous = Some((token.position, token.text.clone()));
        }
        Ok(pairs)
    }

    /// Re-adds all versions of one package with fresh current flags and `dependents`.
    fn write_package(
        &self,
        writer: &IndexWriter,
        package: &str,
        versions: &[Stored],
        dependents: u64,
    ) -> Result<()> {
        writer.delete_term(Term::from_field_text(self.fields.package, package));
        let current = current_of(versions);
        let current_any = versions.iter().max_by(|a, b| rank(a).cmp(&rank(b)));
        for record in versions {
            let is = |best: Option<&Stored>| best.is_some_and(|b| b.id == record.id);
            let doc = self.document(record, is(current), is(current_any), dependents)?;
            writer
                .add_document(doc)
                .map_err(|e| self.fail("add a document", e))?;
        }
        Ok(())
    }

    /// How many packages' current versions depend on `package`, as committed.
    fn committed_dependents(&self, searcher: &Searcher, package: &str) -> Result<u64> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.depends_on, package),
            IndexRecordOption::Basic,
        );
        let count = searcher
            .search(&query, &Count)
            .map_err(|e| self.fail("count dependents", e))?;
        Ok(count as u64)
    }

    /// The dependents of every package whose count the change from `before` to `after` (the
    /// current versions' dependencies of the packages written, by package) can move: the
    /// packages written and every package either state depends on. Counted on top of what
    /// `committed` holds (`None`: on top of nothing, for a rebuild).
    fn dependents_after(
        &self,
        committed: Option<&Searcher>,
        before: &BTreeMap<String, BTreeSet<String>>,
        after: &BTreeMap<String, BTreeSet<String>>,
    ) -> Result<BTreeMap<String, u64>> {
        let mut delta: BTreeMap<String, i64> = after.keys().map(|p| (p.clone(), 0)).collect();
        for (sets, sign) in [(before, -1), (after, 1)] {
            for dependency in sets.values().flatten() {
                *delta.entry(dependency.clone()).or_default() += sign;
            }
        }
        delta
            .into_iter()
            .map(|(package, change)| {
                let base = match committed {
                    Some(searcher) => self.committed_dependents(searcher, &package)?,
                    None => 0,
                };
                let count =
                    u64::try_from(i64::try_from(base).unwrap_or(i64::MAX) + change).unwrap_or(0);
                Ok((package, count))
            })
            .collect()
    }

    /// Rewrites the current documents (current, and current with yanked versions) of a
    /// package not otherwise written with `dependents`, when that changes them.
    fn set_dependents(
        &self,
        writer: &IndexWriter,
        searcher: &Searcher,
        package: &str,
        dependents: u64,
    ) -> Result<()> {
        let f = &self.fields;
        let flagged = |flag: Field| -> Result<Vec<DocAddress>> {
            let query = BooleanQuery::new(vec![
                (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.package, package),
                        IndexRecordOption::Basic,
                    )) as Box<dyn Query>,
                ),
                (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_u64(flag, 1),
                        IndexRecordOption::Basic,
                    )),
                ),
            ]);
            let found = searcher
                .search(&query, &DocSetCollector)
                .map_err(|e| self.fail("find current versions", e))?;
            Ok(found.into_iter().collect())
        };
        let current = flagged(f.current)?;
        let current_any = flagged(f.current_any)?;
        let mut addresses = current.clone();
        addresses.extend(current_any.iter().filter(|a| !current.contains(a)));
        for address in addresses {
            let held = searcher
                .segment_reader(address.segment_ord)
                .fast_fields()
                .u64("dependents")
                .ok()
                .and_then(|column| column.first(address.doc_id));
            if held == Some(dependents) {
                continue;
            }
            let stored = self.load(searcher, address)?;
            writer.delete_term(Term::from_field_text(f.id, &stored.id.canonical()));
            let doc = self.document(
                &stored,
                current.contains(&address),
                current_any.contains(&address),
                dependents,
            )?;
            writer
                .add_document(doc)
                .map_err(|e| self.fail("add a document", e))?;
        }
        Ok(())
    }

    /// Sets the downloads of every indexed version of each counted package (later counts of a
    /// package win); packages not indexed are skipped.
    fn set_downloads(&self, writer: &IndexWriter, counts: &[DownloadCount]) -> Result<()> {
        let searcher = self.reader.searcher();
        let totals: BTreeMap<String, u64> = counts
            .iter()
            .map(|c| (c.package.canonical(), c.total))
            .collect();
        for (package, total) in &totals {
            let mut versions = self.versions(&searcher, package)?;
            if versions.is_empty() || versions.iter().all(|v| v.downloads == *total) {
                continue;
            }
            for version in &mut versions {
                version.downloads = *total;
            }
            let dependents = self.committed_dependents(&searcher, package)?;
            self.write_package(writer, package, &versions, dependents)?;
        }
        Ok(())
    }

    /// Applies `changes` (per package: versions to upsert and ids to drop) in one commit.
    fn apply(
        &self,
        writer: &IndexWriter,
        upserts: &[Stored],
        removals: &[PackageId],
    ) -> Result<()> {
        let searcher = self.reader.searcher();
        let mut touched: BTreeMap<String, Vec<Stored>> = BTreeMap::new();
        let mut load = |package: String| -> Result<()> {
            if let std::collections::btree_map::Entry::Vacant(slot) = touched.entry(package) {
                let versions = self.versions(&searcher, slot.key())?;
                slot.insert(versions);
            }
            Ok(())
        };
        for record in upserts {
            load(record.id.package().canonical())?;
        }
        for id in removals {
            load(id.package().canonical())?;
        }
        let before = dependencies_by_package(&touched);
        for record in upserts {
            let versions = touched.entry(record.id.package().canonical()).or_default();
            let key = record.id.canonical();
            versions.retain(|r| r.id.canonical() != key);
            versions.push(record.clone());
        }
        for id in removals {
            let key = id.canonical();
            if let Some(versions) = touched.get_mut(&id.package().canonical()) {
                versions.retain(|r| r.id.canonical() != key);
            }
        }
        let after = dependencies_by_package(&touched);
        let dependents = self.dependents_after(Some(&searcher), &before, &after)?;
        for (package, count) in &dependents {
            match touched.get(package) {
                Some(versions) => self.write_package(writer, package, versions, *count)?,
                None => self.set_dependents(writer, &searcher, package, *count)?,
            }
        }
        Ok(())
    }

    fn hits(
        &self,
        searcher: &Searcher,
        addresses: Vec<(f32, DocAddress)>,
        snippets: Option<&SnippetGenerator>,
    ) -> Result<Vec<SearchResult>> {
        addresses
            .into_iter()
            .map(|(score, address)| {
                let record = self.load(searcher, address)?;
                let highlights = snippets
                    .map(|g| g.snippet(&record.description))
                    .filter(|s| !s.highlighted().is_empty())
                    .map(|s| vec![s.to_html()])
                    .unwrap_or_default();
                Ok(record.hit(score, highlights))
            })
            .collect()
    }

    /// The full query (filters and text) and, separately, its text part (for highlights).
    fn query_for(&self, searcher: &Searcher, query: &SearchQuery) -> Result<PreparedQuery> {
        let analyzer = |field| {
            self.index
                .tokenizer_for_field(field)
                .map_err(|e| self.fail("prepare the query", e))
        };
        let words = query::words(
            &mut analyzer(self.fields.name)?,
            &mut analyzer(self.fields.description)?,
            query.bounded_text(),
        );
        let current = if query.include_yanked {
            self.fields.current_any
        } else {
            self.fields.current
        };
        // Whether a word is common in a field, counted over the index being searched.
        let threshold =
            (searcher.num_docs() / query::COMMON_ONE_IN).max(query::COMMON_MIN_DOCUMENTS);
        let common = |term: &Term| searcher.doc_freq(term).is_ok_and(|n| n >= threshold);
        let text = query::text_query(&self.fields, &words, query, current, &common);
        let text_on_current_only = text.is_some() && self.layout.load(Ordering::Acquire);
        let mut clauses = query::filters(&self.fields, query, text_on_current_only);
        let full: Box<dyn Query> = match &text {
            // Text held to filters that must match: a `Filtered` query, which walks the text
            // query and tests a bit set where the filters are dense (see `filtered`).
            Some(text) if clauses.iter().any(|(occur, _)| *occur == Occur::Must) => {
                let filter = BooleanQuery::new(clauses);
                // The filter's own text form names every term and bound it matches on.
                let key = format!("{filter:?}");
                Box::new(
                    Filtered::new(text.box_clone(), Box::new(filter))
                        .cached(Arc::clone(&self.filters), key),
                )
            }
            Some(text) => {
                clauses.push((Occur::Must, text.box_clone()));
                Box::new(BooleanQuery::new(clauses))
            }
            None => Box::new(BooleanQuery::new(clauses)),
        };
        Ok((full, text))
    }

    /// Runs `collector` over `query`. A large index with several segments is searched one
    /// segment per thread: a query then costs about its largest segment, not all of them.
    /// Small indexes are searched on the calling thread, where a hand-off costs more.
    fn collect<C: Collector>(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        collector: &C,
    ) -> tantivy::Result<C::Fruit> {
        if searcher.num_docs() < self.parallel_from || searcher.segment_readers().len() < 2 {
            return searcher.search(query, collector);
        }
        let scoring = if collector.requires_scoring() {
            EnableScoring::enabled_from_searcher(searcher)
        } else {
            EnableScoring::disabled_from_searcher(searcher)
        };
        searcher.search_with_executor(query, collector, &self.parallel, scoring)
    }

    fn search(&self, query: &SearchQuery) -> Result<Vec<SearchResult>> {
        let searcher = self.reader.searcher();
        // No query returns more hits than there are documents: bounding limit and offset by
        // that keeps the collector's allocation real whatever the caller asked for.
        let documents = usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX);
        if query.limit == 0 || query.offset >= documents {
            return Ok(Vec::new());
        }
        let limit = query.limit.min(documents - query.offset);
        let (full, text) = self.query_for(&searcher, query)?;
        let top = TopDocs::with_limit(limit).and_offset(query.offset);
        let fail = |e| self.fail("search", e);
        let sort = match (query.sort, &text) {
            (SortOrder::Relevance, None) => SortOrder::Downloads,
            (sort, _) => sort,
        };
        let addresses: Vec<(f32, DocAddress)> = match sort {
            SortOrder::Relevance => {
                // Popularity breaks ties among good matches (see `popularity`), added inside
                // the score so that the top-k collector prunes by its threshold.
                let ranked = Bonus::per_document(full, "popularity", POPULARITY_SCALE);
                self.collect(&searcher, &ranked, &top.order_by_score())
                    .map_err(fail)?
            }
            SortOrder::Downloads => self
                .collect(
                    &searcher,
                    &full,
                    &top.order_by_fast_field::<u64>("downloads", Order::Desc),
                )
                .map_err(fail)?
                .into_iter()
                .map(|(n, a)| (n.unwrap_or(0) as f32, a))
                .collect(),
            SortOrder::Recent => self
                .collect(
                    &searcher,
                    &full,
                    &top.order_by_fast_field::<i64>("published", Order::Desc),
                )
                .map_err(fail)?
                .into_iter()
                .map(|(_, a)| (0.0, a))
                .collect(),
            SortOrder::Name => self
                .collect(
                    &searcher,
                    &full,
                    &top.order_by_string_fast_field("name_sort", Order::Asc),
                )
                .map_err(fail)?
                .into_iter()
                .map(|(_, a)| (0.0, a))
                .collect(),
        };
        let snippets = match &text {
            Some(text) => Some(
                SnippetGenerator::create(&searcher, text.as_ref(), self.fields.description)
                    .map_err(|e| self.fail("prepare highlights", e))?,
            ),
            None => None,
        };
        self.hits(&searcher, addresses, snippets.as_ref())
    }
}

/// A query with filters, and its scoring text part if the search has text.
type PreparedQuery = (Box<dyn Query>, Option<Box<dyn Query>>);

fn facet_counts(collector: &tantivy::collector::FacetCounts, kind: &str) -> Vec<(String, u64)> {
    let mut counts: Vec<(String, u64)> = collector
        .get(Facet::from_path([kind]))
        .filter_map(|(facet, count)| {
            let path = facet.to_path();
            path.get(1).map(|value| ((*value).to_owned(), count))
        })
        .collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

#[async_trait]
impl SearchEngine for TantivySearchEngine {
    async fn index(&self, record: &PackageRecord) -> Result<()> {
        self.index_batch(std::slice::from_ref(record)).await
    }

    async fn index_batch(&self, records: &[PackageRecord]) -> Result<()> {
        let records: Vec<Stored> = records.iter().map(Stored::from).collect();
        self.write(
            format!("index {} documents", records.len()),
            move |inner, writer| inner.apply(writer, &records, &[]),
        )
        .await
    }

    async fn feed_position(&self) -> Result<Option<u64>> {
        Ok(Some(self.inner.feed.load(Ordering::Acquire)))
    }

    async fn apply_feed(&self, records: &[PackageRecord], position: u64) -> Result<()> {
        let records: Vec<Stored> = records.iter().map(Stored::from).collect();
        self.write(
            format!("apply the change feed up to event {position}"),
            move |inner, writer| {
                inner.apply(writer, &records, &[])?;
                inner.feed.store(position, Ordering::Release);
                Ok(())
            },
        )
        .await
    }

    async fn downloads_position(&self) -> Result<Option<u64>> {
        Ok(Some(self.inner.downloads.load(Ordering::Acquire)))
    }

    async fn apply_downloads(&self, counts: &[DownloadCount], position: u64) -> Result<()> {
        let counts = counts.to_vec();
        self.write(
            format!("apply download totals up to stamp {position}"),
            move |inner, writer| {
                inner.set_downloads(writer, &counts)?;
                inner.downloads.store(position, Ordering::Release);
                Ok(())
            },
        )
        .await
    }

    async fn remove(&self, id: &PackageId) -> Result<()> {
        let id = id.clone();
        self.write(format!("remove {id}"), move |inner, writer| {
            inner.apply(writer, &[], &[id])
        })
        .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchResult>> {
        self.inner.search(query)
    }

    async fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<PackageRef>> {
        let inner = &self.inner;
        let prefix = query::canonical(prefix);
        let valid = prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if prefix.is_empty() || !valid || limit == 0 {
            return Ok(Vec::new());
        }
        let searcher = inner.reader.searcher();
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(inner.fields.name_prefix, &prefix),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(inner.fields.current, 1),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        let top = searcher
            .search(
                &query,
                &TopDocs::with_limit(bound_limit(&searcher, limit))
                    .order_by_fast_field::<u64>("downloads", Order::Desc),
            )
            .map_err(|e| inner.fail("suggest", e))?;
        top.into_iter()
            .map(|(_, address)| Ok(inner.load(&searcher, address)?.id.package()))
            .collect()
    }

    async fn facets(&self, query: &SearchQuery) -> Result<Facets> {
        let inner = &self.inner;
        let searcher = inner.reader.searcher();
        let (full, _) = inner.query_for(&searcher, query)?;
        let mut collector = FacetCollector::for_field("facets");
        collector.add_facet(Facet::from_path(["category"]));
        collector.add_facet(Facet::from_path(["keyword"]));
        collector.add_facet(Facet::from_path(["namespace"]));
        let counts = searcher
            .search(&full, &collector)
            .map_err(|e| inner.fail("count facets", e))?;
        Ok(Facets::new(
            facet_counts(&counts, "category"),
            facet_counts(&counts, "keyword"),
            facet_counts(&counts, "namespace"),
        ))
    }

    async fn similar(&self, id: &PackageId, limit: usize) -> Result<Vec<SearchResult>> {
        let inner = &self.inner;
        let f = &inner.fields;
        let searcher = inner.reader.searcher();
        let own = TermQuery::new(
            Term::from_field_text(f.id, &id.canonical()),
            IndexRecordOption::Basic,
        );
        let found = searcher
            .search(&own, &TopDocs::with_limit(1).order_by_score())
            .map_err(|e| inner.fail("find the package", e))?;
        let Some((_, address)) = found.first() else {
            return Err(Error::not_found(format!("indexed package {id}")));
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let source = inner.load(&searcher, *address)?;
        let mut fields = vec![(
            f.description,
            vec![OwnedValue::Str(source.description.clone())],
        )];
        if !source.keywords.is_empty() {
            fields.push((
                f.keywords,
                source
                    .keywords
                    .iter()
                    .map(|k| OwnedValue::Str(k.clone()))
                    .collect(),
            ));
        }
        if !source.categories.is_empty() {
            fields.push((
                f.category_raw,
                source
                    .categories
                    .iter()
                    .map(|c| OwnedValue::Str(c.to_lowercase()))
                    .collect(),
            ));
        }
        let like = MoreLikeThisQuery::builder()
            .with_min_doc_frequency(1)
            .with_min_term_frequency(1)
            .with_min_word_length(3)
            .with_document_fields(fields);
        let query = BooleanQuery::new(vec![
            (Occur::Must, Box::new(like) as Box<dyn Query>),
            (
                Occur::Must,
                Box::new(ConstScoreQuery::new(
                    Box::new(TermQuery::new(
                        Term::from_field_u64(f.current, 1),
                        IndexRecordOption::Basic,
                    )),
                    0.0,
                )),
            ),
            (
                Occur::MustNot,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.package, &id.package().canonical()),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        let top = searcher
            .search(
                &query,
                &TopDocs::with_limit(bound_limit(&searcher, limit)).order_by_score(),
            )
            .map_err(|e| inner.fail("find similar packages", e))?;
        inner.hits(&searcher, top, None)
    }

    async fn rebuild(
        &self,
        records: Box<dyn Iterator<Item = PackageRecord> + Send>,
    ) -> Result<u64> {
        self.write("rebuild the index".to_owned(), move |inner, writer| {
            // A delete of every earlier document, ordered with the adds below. Not
            // `delete_all_documents`: it rewinds the writer's operation stamps, and the deletes
            // this rebuild queues then removed its own documents at the next commit.
            writer
                .delete_query(Box::new(AllQuery))
                .map_err(|e| inner.fail("clear the index", e))?;
            let mut packages: HashMap<String, Vec<Stored>> = HashMap::new();
            let mut count = 0u64;
            for record in records {
                count += 1;
                let record = Stored::from(&record);
                let versions = packages.entry(record.id.package().canonical()).or_default();
                let key = record.id.canonical();
                versions.retain(|r| r.id.canonical() != key);
                versions.push(record);
            }
            let after: BTreeMap<String, BTreeSet<String>> = packages
                .iter()
                .map(|(package, versions)| (package.clone(), current_dependencies_of(versions)))
                .collect();
            let dependents = inner.dependents_after(None, &BTreeMap::new(), &after)?;
            for (package, versions) in &packages {
                let count = dependents.get(package).copied().unwrap_or(0);
                inner.write_package(writer, package, versions, count)?;
            }
            // Every document is now written by this version: the commit records the layout. A
            // rebuilt index has followed no feed yet.
            inner.layout.store(true, Ordering::Release);
            inner.feed.store(0, Ordering::Release);
            inner.downloads.store(0, Ordering::Release);
            Ok(count)
        })
        .await
    }

    async fn optimize(&self) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        let name = inner.name.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut guard = lock(&inner.writer);
            let writer = guard.as_mut().ok_or_else(|| inner.read_only("optimize"))?;
            // The merge policy may merge some segments in the background meanwhile, which makes
            // a merge of a stale or busy segment list fail: wait, list again and retry (up to 2 s).
            let mut attempts = 0;
            loop {
                let segments = inner
                    .index
                    .searchable_segment_ids()
                    .map_err(|e| inner.fail("list segments", e))?;
                if segments.len() <= 1 {
                    break;
                }
                match writer.merge(&segments).wait() {
                    Ok(_) => break,
                    Err(tantivy::TantivyError::InvalidArgument(_)) if attempts < 100 => {
                        // A background merge holds some of these segments: let it finish.
                        attempts += 1;
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(e) => return Err(inner.fail("merge segments", e)),
                }
            }
            inner.commit(writer)?;
            inner
                .reader
                .reload()
                .map_err(|e| inner.fail("reload the reader", e))?;
            Ok(())
        });
        match task.await {
            Ok(result) => result,
            Err(join) => Err(SearchError::Task {
                index: name,
                reason: join.to_string(),
            }
            .during("optimize")),
        }
    }

    async fn stats(&self) -> Result<IndexStats> {
        let inner = &self.inner;
        let searcher = inner.reader.searcher();
        let packages = searcher
            .search(
                &TermQuery::new(
                    Term::from_field_u64(inner.fields.current_any, 1),
                    IndexRecordOption::Basic,
                ),
                &Count,
            )
            .map_err(|e| inner.fail("count packages", e))?;
        Ok(IndexStats::new(searcher.num_docs(), packages as u64))
    }
}

/// What popularity adds to a relevance score — downloads and dependents, each on a log scale —
/// in units of 1/[`POPULARITY_SCALE`]: a small integer, so its column packs into a few bits
/// and is quick to read for every matching document.
fn popularity(downloads: u64, dependents: u64) -> u64 {
    let ln_1p = |n: u64| (n as f64).ln_1p() as f32;
    let score = DOWNLOADS_WEIGHT * ln_1p(downloads) + DEPENDENTS_WEIGHT * ln_1p(dependents);
    (score * POPULARITY_SCALE).round() as u64
}

/// Popularity is stored in hundredths.
const POPULARITY_SCALE: f32 = 100.0;

#[cfg(test)]
mod parallel_tests {
    use marketplace_conformance::fixtures::record;
    use marketplace_core::{SearchEngine, SearchQuery, SortOrder};

    use super::TantivySearchEngine;

    /// Searching segments in parallel returns exactly what one thread returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_and_serial_search_agree() {
        let mut engine = TantivySearchEngine::in_memory().expect("index");
        let words = [
            "cache", "parser", "async", "logger", "tensor", "crypto", "cli",
        ];
        for batch in 0..3 {
            let records: Vec<_> = (0..60)
                .map(|i| {
                    let a = words[(batch * 60 + i) % words.len()];
                    let b = words[(i * 3 + batch) % words.len()];
                    record(
                        &format!("{a}-{b}-{batch}-{i}@1.0.0"),
                        &format!("a {a} library with {b} support"),
                        &[a, b],
                        &["tools"],
                        (i * 37 % 1000) as u64,
                    )
                })
                .collect();
            // One commit per batch: several segments.
            engine.index_batch(&records).await.expect("index");
        }
        let queries = [
            "cache",
            "parser async",
            "tensr",
            "logger OR cli",
            "crypto tools",
        ];
        let mut runs = Vec::new();
        for parallel_from in [u64::MAX, 0] {
            std::sync::Arc::get_mut(&mut engine.inner)
                .expect("no other handle")
                .parallel_from = parallel_from;
            let mut results = Vec::new();
            for text in queries {
                for sort in [SortOrder::Relevance, SortOrder::Downloads, SortOrder::Name] {
                    let query = SearchQuery::text(text)
                        .with_sort(sort)
                        .with_limit(15)
                        .with_offset(5);
                    let hits = engine.search(&query).await.expect("search");
                    results.push(hits.iter().map(|h| h.id.to_string()).collect::<Vec<_>>());
                }
            }
            runs.push(results);
        }
        assert!(
            runs[0].iter().any(|r| !r.is_empty()),
            "the queries find something"
        );
        assert_eq!(runs[0], runs[1]);
    }
}

#[cfg(test)]
mod layout_tests {
    use marketplace_conformance::fixtures::record;
    use marketplace_core::{SearchEngine, SearchQuery};
    use tantivy::TantivyDocument;

    use super::{LAYOUT, TantivySearchEngine, lock};

    /// A read-only open searches what was committed, keeps its positions, refuses every
    /// write naming the cause, and leaves the directory as it was.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_only_index_searches_and_refuses_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let engine = TantivySearchEngine::open(dir.path()).expect("open");
            let r = record("zoo/okapi@1.0.0", "Okapi tools.", &[], &[], 1);
            engine.apply_feed(&[r], 3).await.expect("apply");
        }
        let listing = || {
            let mut names: Vec<_> = std::fs::read_dir(dir.path())
                .expect("list")
                .map(|e| {
                    let e = e.expect("entry");
                    (e.file_name(), e.metadata().expect("metadata").len())
                })
                .collect();
            names.sort();
            names
        };
        let before = listing();
        let engine = TantivySearchEngine::open_read_only(dir.path()).expect("open read-only");
        assert!(engine.is_read_only());
        assert_eq!(hits(&engine, "okapi").await, ["zoo/okapi@1.0.0"]);
        assert_eq!(engine.feed_position().await.expect("position"), Some(3));
        let r = record("zoo/tapir@1.0.0", "Tapir tools.", &[], &[], 1);
        let refusals = [
            engine.index(&r).await.err(),
            engine.apply_feed(&[], 4).await.err(),
            engine.optimize().await.err(),
        ];
        for e in refusals {
            let e = e.expect("a write to a read-only index succeeded");
            assert!(e.to_string().contains("read-only"), "{e}");
        }
        assert_eq!(engine.feed_position().await.expect("position"), Some(3));
        drop(engine);
        assert_eq!(listing(), before, "the directory changed");
    }

    /// The feed position is kept in the commit, with the documents, and survives a reopen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_feed_position_is_committed_with_the_documents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = TantivySearchEngine::open(dir.path()).expect("open");
        assert_eq!(engine.feed_position().await.expect("position"), Some(0));
        let r = record("zoo/okapi@1.0.0", "Okapi tools.", &[], &[], 1);
        engine.apply_feed(&[r], 7).await.expect("apply");
        assert_eq!(engine.feed_position().await.expect("position"), Some(7));
        drop(engine);
        let engine = TantivySearchEngine::open(dir.path()).expect("reopen");
        assert_eq!(engine.feed_position().await.expect("position"), Some(7));
        assert_eq!(hits(&engine, "okapi").await, ["zoo/okapi@1.0.0"]);
        engine
            .rebuild(Box::new(std::iter::empty()))
            .await
            .expect("rebuild");
        assert_eq!(engine.feed_position().await.expect("position"), Some(0));
    }

    fn payload(engine: &TantivySearchEngine) -> Option<String> {
        engine.inner.index.load_metas().expect("metas").payload
    }

    async fn hits(engine: &TantivySearchEngine, text: &str) -> Vec<String> {
        let found = engine
            .search(&SearchQuery::text(text))
            .await
            .expect("search");
        found.iter().map(|h| h.id.to_string()).collect()
    }

    /// An index written before the layout existed (an older version of a package carrying
    /// searchable text, no payload) keeps the current-version filter until it is rebuilt.
    #[tokio::test]
    async fn an_older_layout_keeps_the_filter_until_rebuilt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = vec![
            record(
                "zoo/zebrafish@1.0.0",
                "Zebrafish tools.",
                &["zebrafish"],
                &[],
                5,
            ),
            record(
                "zoo/zebrafish@2.0.0",
                "Zebrafish tools.",
                &["zebrafish"],
                &[],
                5,
            ),
        ];
        let engine = TantivySearchEngine::open(dir.path()).expect("open");
        engine.index_batch(&records).await.expect("index");
        assert_eq!(
            payload(&engine).as_deref(),
            Some("marketplace-search-tantivy layout 2\nfeed 0\ndownloads 0")
        );
        assert_eq!(hits(&engine, "zebrafish").await, ["zoo/zebrafish@2.0.0"]);

        // What an older version wrote: text on a version that is not current, no payload.
        {
            let f = engine.inner.fields;
            let mut doc = TantivyDocument::default();
            doc.add_text(f.id, "zoo/zebrafish@0.9.0");
            doc.add_text(f.package, "zoo/zebrafish");
            doc.add_text(f.name, "zebrafish");
            doc.add_text(f.description, "Zebrafish tools.");
            doc.add_u64(f.current, 0);
            doc.add_u64(f.current_any, 0);
            let old = record(
                "zoo/zebrafish@0.9.0",
                "Zebrafish tools.",
                &["zebrafish"],
                &[],
                5,
            );
            doc.add_text(f.record, serde_json::to_string(&old).expect("json"));
            let mut guard = lock(&engine.inner.writer);
            let writer = guard.as_mut().expect("a writable index");
            writer.add_document(doc).expect("add");
            writer.commit().expect("commit without a payload");
        }
        drop(engine);

        let engine = TantivySearchEngine::open(dir.path()).expect("reopen");
        assert_eq!(payload(&engine), None);
        assert_eq!(
            hits(&engine, "zebrafish").await,
            ["zoo/zebrafish@2.0.0"],
            "the old version's text must not make it a hit"
        );
        // New writes keep the older layout: the index still holds its documents.
        engine.index_batch(&records[..1]).await.expect("index");
        assert_eq!(payload(&engine).as_deref(), Some("feed 0\ndownloads 0"));

        engine
            .rebuild(Box::new(records.clone().into_iter()))
            .await
            .expect("rebuild");
        assert!(payload(&engine).is_some_and(|p| p.starts_with(LAYOUT)));
        assert_eq!(hits(&engine, "zebrafish").await, ["zoo/zebrafish@2.0.0"]);
        drop(engine);
        let engine = TantivySearchEngine::open(dir.path()).expect("reopen");
        assert!(
            engine
                .inner
                .layout
                .load(std::sync::atomic::Ordering::Acquire)
        );
    }
}
