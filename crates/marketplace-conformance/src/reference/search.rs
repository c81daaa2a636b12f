//! `MemorySearchEngine`: the reference `SearchEngine`, a linear scan with simple scoring.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use marketplace_core::{
    DownloadCount, Error, Facets, IndexStats, PackageId, PackageRecord, PackageRef, Result,
    SearchEngine, SearchQuery, SearchResult, SortOrder,
};

use super::lock;

/// The reference [`SearchEngine`]: every version's record in a map, scanned per query.
///
/// Scoring: the whole query equal to the name scores 100; each query term scores 10 for a name
/// word, 5 for a keyword and 1 for a description word, half that for a typo match (one edit
/// for terms of 5–8 letters, two for 9 or more, one for 3–4 letters with
/// `forgive_short_typos`); downloads add `ln(1 + downloads) / 100`.
#[derive(Default)]
pub struct MemorySearchEngine {
    docs: Mutex<BTreeMap<String, PackageRecord>>,
    /// The change-feed position applied.
    feed: std::sync::atomic::AtomicU64,
    /// The download-total stamp applied.
    downloads: std::sync::atomic::AtomicU64,
}

impl MemorySearchEngine {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Levenshtein distance, stopping early once it exceeds `max`.
fn within_edits(a: &str, b: &str, max: usize) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            row[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1);
        }
        if row.iter().min().is_some_and(|&m| m > max) {
            return false;
        }
        prev = row;
    }
    prev[b.len()] <= max
}

fn allowed_edits(term: &str, forgive_short: bool) -> usize {
    match term.chars().count() {
        3..=4 if forgive_short => 1,
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// How well `term` matches `candidates`: 2 for an exact word, 1 for a typo match, 0 for none.
fn term_match(term: &str, candidates: &[String], forgive_short: bool) -> u32 {
    if candidates.iter().any(|c| c == term) {
        return 2;
    }
    let edits = allowed_edits(term, forgive_short);
    if edits > 0 && candidates.iter().any(|c| within_edits(term, c, edits)) {
        return 1;
    }
    0
}

fn score(record: &PackageRecord, terms: &[String], whole: &str, forgive_short: bool) -> f32 {
    let m = &record.metadata;
    let mut score = 0.0;
    let name = m.id.name.canonical();
    if !whole.is_empty() && (name == whole || m.id.package().canonical() == whole) {
        score += 100.0;
    }
    let mut name_words = words(m.id.name.as_str());
    name_words.push(name);
    let keywords: Vec<String> = m.keywords.iter().map(|k| k.to_lowercase()).collect();
    let description = words(&m.description);
    for term in terms {
        score += 5.0 * term_match(term, &name_words, forgive_short) as f32
            + 2.5 * term_match(term, &keywords, forgive_short) as f32
            + 0.5 * term_match(term, &description, forgive_short) as f32;
    }
    score
}

fn highlight(description: &str, terms: &[String]) -> Vec<String> {
    let mut out = String::new();
    let mut marked = false;
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String, marked: &mut bool| {
        if !word.is_empty() {
            let lower = word.to_lowercase();
            if terms
                .iter()
                .any(|t| t == &lower || within_edits(t, &lower, allowed_edits(t, false)))
            {
                out.push_str(&format!("<b>{word}</b>"));
                *marked = true;
            } else {
                out.push_str(word);
            }
            word.clear();
        }
    };
    for c in description.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out, &mut marked);
            out.push(c);
        }
    }
    flush(&mut word, &mut out, &mut marked);
    if marked { vec![out] } else { Vec::new() }
}

/// The current version of each package: highest not yanked (or highest at all when
/// `include_yanked`), stable versions before pre-releases.
fn current(docs: &BTreeMap<String, PackageRecord>, include_yanked: bool) -> Vec<&PackageRecord> {
    let mut best: HashMap<String, &PackageRecord> = HashMap::new();
    for record in docs.values() {
        if record.is_yanked() && !include_yanked {
            continue;
        }
        let key = record.metadata.id.package().canonical();
        let rank = |r: &PackageRecord| {
            let v = &r.metadata.id.version;
            (v.pre.is_empty(), v.clone())
        };
        match best.get(&key) {
            Some(b) if rank(b) >= rank(record) => {}
            _ => {
                best.insert(key, record);
            }
        }
    }
    let mut list: Vec<&PackageRecord> = best.into_values().collect();
    list.sort_by_key(|r| r.metadata.id.package().canonical());
    list
}

fn matches_filters(record: &PackageRecord, query: &SearchQuery) -> bool {
    let m = &record.metadata;
    let has = |list: &[String], wanted: &str| list.iter().any(|x| x.eq_ignore_ascii_case(wanted));
    query.categories.iter().all(|c| has(&m.categories, c))
        && query.keywords.iter().all(|k| has(&m.keywords, k))
        && query.namespace.as_ref().is_none_or(|ns| {
            m.id.namespace
                .as_ref()
                .is_some_and(|n| n.canonical() == ns.to_lowercase().replace('_', "-"))
        })
        && query
            .min_downloads
            .is_none_or(|min| record.downloads >= min)
}

fn hit(record: &PackageRecord, score: f32, terms: &[String]) -> SearchResult {
    SearchResult::from_record(
        record,
        score,
        highlight(&record.metadata.description, terms),
    )
}

fn run(
    docs: &BTreeMap<String, PackageRecord>,
    query: &SearchQuery,
    paginate: bool,
) -> Vec<SearchResult> {
    let mut terms = words(query.bounded_text());
    let mut seen = std::collections::BTreeSet::new();
    terms.retain(|t| seen.insert(t.clone()));
    let whole = query.bounded_text().trim().to_lowercase().replace('_', "-");
    let mut hits: Vec<SearchResult> = current(docs, query.include_yanked)
        .into_iter()
        .filter(|r| matches_filters(r, query))
        .filter_map(|r| {
            let s = score(r, &terms, &whole, query.forgive_short_typos);
            (terms.is_empty() || s > 0.0)
                .then(|| hit(r, s + (r.downloads as f32).ln_1p() / 100.0, &terms))
        })
        .collect();
    let name_key = |h: &SearchResult| (h.id.name.canonical(), h.id.package().canonical());
    match query.sort {
        SortOrder::Relevance => hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| name_key(a).cmp(&name_key(b)))
        }),
        SortOrder::Downloads => hits.sort_by(|a, b| {
            b.downloads
                .cmp(&a.downloads)
                .then_with(|| name_key(a).cmp(&name_key(b)))
        }),
        SortOrder::Recent => {
            let published =
                |h: &SearchResult| docs.get(&h.id.canonical()).map(|r| r.metadata.published_at);
            hits.sort_by(|a, b| {
                published(b)
                    .cmp(&published(a))
                    .then_with(|| name_key(a).cmp(&name_key(b)))
            });
        }
        SortOrder::Name => hits.sort_by_key(name_key),
    }
    if paginate {
        hits.into_iter()
            .skip(query.offset)
            .take(query.limit)
            .collect()
    } else {
        hits
    }
}

fn count(into: &mut BTreeMap<String, u64>, value: &str) {
    *into.entry(value.to_owned()).or_default() += 1;
}

fn ranked(counts: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut list: Vec<(String, u64)> = counts.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list
}

#[async_trait]
impl SearchEngine for MemorySearchEngine {
    async fn index(&self, record: &PackageRecord) -> Result<()> {
        lock(&self.docs).insert(record.metadata.id.canonical(), record.clone());
        Ok(())
    }

    async fn remove(&self, id: &PackageId) -> Result<()> {
        lock(&self.docs).remove(&id.canonical());
        Ok(())
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchResult>> {
        Ok(run(&lock(&self.docs), query, true))
    }

    async fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<PackageRef>> {
        let docs = lock(&self.docs);
        let prefix = prefix.trim().to_lowercase().replace('_', "-");
        let mut found: Vec<&PackageRecord> = current(&docs, false)
            .into_iter()
            .filter(|r| r.metadata.id.name.canonical().starts_with(&prefix))
            .collect();
        found.sort_by(|a, b| {
            b.downloads
                .cmp(&a.downloads)
                .then_with(|| a.metadata.id.package().cmp(&b.metadata.id.package()))
        });
        Ok(found
            .into_iter()
            .take(limit)
            .map(|r| r.metadata.id.package())
            .collect())
    }

    async fn facets(&self, query: &SearchQuery) -> Result<Facets> {
        let docs = lock(&self.docs);
        let (mut categories, mut keywords, mut namespaces) =
            (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for hit in run(&docs, query, false) {
            hit.categories
                .iter()
                .for_each(|c| count(&mut categories, c));
            hit.keywords.iter().for_each(|k| count(&mut keywords, k));
            if let Some(ns) = &hit.id.namespace {
                count(&mut namespaces, ns.as_str());
            }
        }
        Ok(Facets::new(
            ranked(categories),
            ranked(keywords),
            ranked(namespaces),
        ))
    }

    async fn similar(&self, id: &PackageId, limit: usize) -> Result<Vec<SearchResult>> {
        let docs = lock(&self.docs);
        let source = docs
            .get(&id.canonical())
            .ok_or_else(|| Error::not_found(format!("indexed package {id}")))?;
        let own = id.package().canonical();
        let m = &source.metadata;
        let mut terms: Vec<String> = m.keywords.iter().map(|k| k.to_lowercase()).collect();
        terms.extend(m.categories.iter().map(|c| c.to_lowercase()));
        terms.extend(words(&m.description).into_iter().filter(|w| w.len() > 3));
        let mut hits: Vec<SearchResult> = current(&docs, false)
            .into_iter()
            .filter(|r| r.metadata.id.package().canonical() != own)
            .filter_map(|r| {
                let cats: Vec<String> = r
                    .metadata
                    .categories
                    .iter()
                    .map(|c| c.to_lowercase())
                    .collect();
                let s = score(r, &terms, "", false)
                    + 2.5
                        * terms
                            .iter()
                            .map(|t| term_match(t, &cats, false))
                            .sum::<u32>() as f32;
                (s > 0.0).then(|| hit(r, s, &[]))
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        hits.truncate(limit);
        Ok(hits)
    }

    async fn rebuild(
        &self,
        records: Box<dyn Iterator<Item = PackageRecord> + Send>,
    ) -> Result<u64> {
        let fresh: BTreeMap<String, PackageRecord> =
            records.map(|r| (r.metadata.id.canonical(), r)).collect();
        let n = fresh.len() as u64;
        *lock(&self.docs) = fresh;
        self.feed.store(0, std::sync::atomic::Ordering::SeqCst);
        self.downloads.store(0, std::sync::atomic::Ordering::SeqCst);
        Ok(n)
    }

    async fn feed_position(&self) -> Result<Option<u64>> {
        Ok(Some(self.feed.load(std::sync::atomic::Ordering::SeqCst)))
    }

    async fn apply_feed(&self, records: &[PackageRecord], position: u64) -> Result<()> {
        let mut docs = lock(&self.docs);
        for record in records {
            docs.insert(record.metadata.id.canonical(), record.clone());
        }
        self.feed
            .store(position, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    async fn downloads_position(&self) -> Result<Option<u64>> {
        Ok(Some(
            self.downloads.load(std::sync::atomic::Ordering::SeqCst),
        ))
    }

    async fn apply_downloads(&self, counts: &[DownloadCount], position: u64) -> Result<()> {
        let mut docs = lock(&self.docs);
        let totals: std::collections::HashMap<String, u64> = counts
            .iter()
            .map(|c| (c.package.canonical(), c.total))
            .collect();
        for record in docs.values_mut() {
            if let Some(total) = totals.get(&record.metadata.id.package().canonical()) {
                record.downloads = *total;
            }
        }
        self.downloads
            .store(position, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    async fn optimize(&self) -> Result<()> {
        Ok(())
    }

    async fn stats(&self) -> Result<IndexStats> {
        let docs = lock(&self.docs);
        let packages: std::collections::HashSet<String> = docs
            .values()
            .map(|r| r.metadata.id.package().canonical())
            .collect();
        Ok(IndexStats::new(docs.len() as u64, packages.len() as u64))
    }
}
