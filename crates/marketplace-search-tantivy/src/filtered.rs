//! A scoring query held to the documents a non-scoring filter matches, the way that costs the
//! least for the filter's density in each segment.
//!
//! A boolean query intersects its clauses by leapfrogging: the sparsest drives and the others
//! seek to each of its documents. That is right for a sparse filter (a namespace), but a text
//! query is a union of many postings, and seeking a union to each document of a dense filter (a
//! category one package in five has) costs more than walking the union itself: every sub-scorer
//! seeks. So where the filter is dense, its documents are collected into a bit set once per
//! segment and the text query is walked as it is, each document it finds tested against the
//! set.
//!
//! A segment never changes once written (deletes are applied by the collectors, not by
//! scorers), so the documents of a filter in a segment are kept in a [`FilterCache`] by segment
//! and filter: the same category or download floor, asked again, costs no postings walk and no
//! fast-field scan. Whether a filter is dense is decided on the documents it really matches
//! (tantivy's size hints multiply guesses, and guess a download floor at one document in ten).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight, intersect_scorers};
use tantivy::{BitSet, DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

/// A filter matching at least one document in this many of a segment is dense there.
const DENSE_ONE_IN: u32 = 32;
/// Most bytes of document sets a [`FilterCache`] keeps; past that it starts again empty.
const CACHED_BYTES: usize = 64 << 20;

/// What a filter is in one segment: sparse, with the list of its documents (intersected by
/// leapfrog), or dense, with the set of its documents (tested while the text is walked).
#[derive(Clone)]
enum InSegment {
    Sparse(Arc<[DocId]>),
    Dense(Arc<BitSet>),
}

impl InSegment {
    /// The filter's documents in a segment of `max_doc` documents, in the form that suits
    /// their density. Either form takes at most `max_doc / 8` bytes.
    fn of(mut filter: Box<dyn Scorer>, max_doc: u32) -> InSegment {
        let mut docs = Vec::new();
        let mut doc = filter.doc();
        while doc != TERMINATED {
            docs.push(doc);
            doc = filter.advance();
        }
        if (docs.len() as u32).saturating_mul(DENSE_ONE_IN) < max_doc {
            return InSegment::Sparse(docs.into());
        }
        let mut allowed = BitSet::with_max_value(max_doc);
        for doc in docs {
            allowed.insert(doc);
        }
        InSegment::Dense(Arc::new(allowed))
    }

    fn bytes(&self) -> usize {
        match self {
            InSegment::Sparse(docs) => docs.len() * size_of::<DocId>(),
            InSegment::Dense(allowed) => allowed.max_value() as usize / 8,
        }
    }
}

/// The filters seen recently, by segment and by the filter's key (its text form).
#[derive(Default)]
pub(crate) struct FilterCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    sets: HashMap<(SegmentId, Arc<str>), InSegment>,
    bytes: usize,
}

impl FilterCache {
    fn get(&self, segment: SegmentId, key: &Arc<str>) -> Option<InSegment> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.sets.get(&(segment, Arc::clone(key))).cloned()
    }

    fn put(&self, segment: SegmentId, key: &Arc<str>, value: InSegment) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.bytes + value.bytes() > CACHED_BYTES {
            *entries = Entries::default();
        }
        entries.bytes += value.bytes();
        if let Some(old) = entries.sets.insert((segment, Arc::clone(key)), value) {
            entries.bytes -= old.bytes();
        }
    }
}

/// `scoring`, held to the documents `filter` matches; scored by `scoring` alone.
pub(crate) struct Filtered {
    scoring: Box<dyn Query>,
    filter: Box<dyn Query>,
    /// Where the filter's sets are kept, under `key`.
    cache: Option<(Arc<FilterCache>, Arc<str>)>,
}

impl Filtered {
    pub(crate) fn new(scoring: Box<dyn Query>, filter: Box<dyn Query>) -> Self {
        Filtered {
            scoring,
            filter,
            cache: None,
        }
    }

    /// The filter's per-segment sets kept in `cache`; `key` must say everything the filter
    /// matches on.
    pub(crate) fn cached(mut self, cache: Arc<FilterCache>, key: String) -> Self {
        self.cache = Some((cache, key.into()));
        self
    }
}

impl Clone for Filtered {
    fn clone(&self) -> Self {
        Filtered {
            scoring: self.scoring.box_clone(),
            filter: self.filter.box_clone(),
            cache: self.cache.clone(),
        }
    }
}

impl fmt::Debug for Filtered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Filtered({:?} where {:?})", self.scoring, self.filter)
    }
}

impl Query for Filtered {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(FilteredWeight {
            scoring: self.scoring.weight(enable_scoring)?,
            filter: self.filter.weight(enable_scoring)?,
            cache: self.cache.clone(),
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.scoring.query_terms(visitor);
        self.filter.query_terms(visitor);
    }
}

struct FilteredWeight {
    scoring: Box<dyn Weight>,
    filter: Box<dyn Weight>,
    cache: Option<(Arc<FilterCache>, Arc<str>)>,
}

impl FilteredWeight {
    /// What the filter is in this segment, from the cache or worked out (and cached).
    fn in_segment(&self, reader: &SegmentReader) -> tantivy::Result<InSegment> {
        let segment = reader.segment_id();
        if let Some((cache, key)) = &self.cache
            && let Some(known) = cache.get(segment, key)
        {
            return Ok(known);
        }
        let found = InSegment::of(self.filter.scorer(reader, 0.0)?, reader.max_doc());
        if let Some((cache, key)) = &self.cache {
            cache.put(segment, key, found.clone());
        }
        Ok(found)
    }
}

impl Weight for FilteredWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let scoring = self.scoring.scorer(reader, boost)?;
        match self.in_segment(reader)? {
            InSegment::Sparse(docs) => {
                // Leapfrog, the filter's list driving.
                let filter = Box::new(Listed { docs, at: 0 });
                Ok(intersect_scorers(vec![scoring, filter], reader.max_doc()))
            }
            InSegment::Dense(allowed) => {
                let mut scorer = FilteredScorer {
                    inner: scoring,
                    allowed,
                };
                scorer.settle();
                Ok(Box::new(scorer))
            }
        }
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        // Matching the filter is checked by the scorer; the score is the scoring query's.
        self.filter.explain(reader, doc)?;
        self.scoring.explain(reader, doc)
    }
}

/// A sorted list of documents, as a scorer that scores nothing.
struct Listed {
    docs: Arc<[DocId]>,
    at: usize,
}

impl DocSet for Listed {
    fn advance(&mut self) -> DocId {
        self.at += 1;
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.at += self.docs[self.at.min(self.docs.len())..].partition_point(|&d| d < target);
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.at).copied().unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        self.docs.len().saturating_sub(self.at) as u32
    }
}

impl Scorer for Listed {
    fn score(&mut self) -> Score {
        0.0
    }
}

/// The scoring query's documents that are in `allowed`.
struct FilteredScorer {
    inner: Box<dyn Scorer>,
    allowed: Arc<BitSet>,
}

impl FilteredScorer {
    /// Moves forward from the current document to the first allowed one (or the end).
    fn settle(&mut self) -> DocId {
        let mut doc = self.inner.doc();
        while doc != TERMINATED && !self.allowed.contains(doc) {
            doc = self.inner.advance();
        }
        doc
    }
}

impl DocSet for FilteredScorer {
    fn advance(&mut self) -> DocId {
        self.inner.advance();
        self.settle()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.inner.seek(target);
        self.settle()
    }

    fn doc(&self) -> DocId {
        self.inner.doc()
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint().min(self.allowed.len() as u32)
    }
}

impl Scorer for FilteredScorer {
    fn score(&mut self) -> Score {
        self.inner.score()
    }
}

#[cfg(test)]
mod tests {
    use tantivy::collector::DocSetCollector;
    use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
    use tantivy::schema::{IndexRecordOption, STRING, Schema};
    use tantivy::{Index, Term, doc};

    use super::Filtered;

    /// A sparse filter (leapfrog) and a dense one (bit set) find what an intersection finds.
    #[test]
    fn sparse_and_dense_filters_keep_exactly_the_intersection() {
        let mut schema = Schema::builder();
        let word = schema.add_text_field("word", STRING);
        let kind = schema.add_text_field("kind", STRING);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for i in 0..400u32 {
            let w = if i % 3 == 0 { "parse" } else { "other" };
            // "rare": 3 documents of 400 (sparse); "common": every other one (dense).
            let k = if i % 150 == 9 {
                "rare"
            } else if i % 2 == 0 {
                "common"
            } else {
                "none"
            };
            writer.add_document(doc!(word => w, kind => k)).unwrap();
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let term = |field, text: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, text),
                IndexRecordOption::Basic,
            ))
        };
        let cache = std::sync::Arc::new(super::FilterCache::default());
        for (k, cached) in [
            ("rare", false),
            ("common", false),
            ("missing", false),
            ("rare", true),
            ("common", true),
            ("common", true),
        ] {
            let mut filtered = Filtered::new(term(word, "parse"), term(kind, k));
            if cached {
                filtered = filtered.cached(cache.clone(), format!("kind={k}"));
            }
            let both = BooleanQuery::new(vec![
                (Occur::Must, term(word, "parse")),
                (Occur::Must, term(kind, k)),
            ]);
            let got = searcher.search(&filtered, &DocSetCollector).unwrap();
            let want = searcher.search(&both, &DocSetCollector).unwrap();
            assert_eq!(got, want, "filter kind = {k}");
            if k != "missing" {
                assert!(!got.is_empty(), "filter kind = {k}");
            }
        }
    }
}
