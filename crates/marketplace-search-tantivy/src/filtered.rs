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

use std::fmt;

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight, intersect_scorers};
use tantivy::{BitSet, DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

/// A filter matching at least one document in this many of a segment is dense there.
const DENSE_ONE_IN: u32 = 32;

/// `scoring`, held to the documents `filter` matches; scored by `scoring` alone.
pub(crate) struct Filtered {
    scoring: Box<dyn Query>,
    filter: Box<dyn Query>,
}

impl Filtered {
    pub(crate) fn new(scoring: Box<dyn Query>, filter: Box<dyn Query>) -> Self {
        Filtered { scoring, filter }
    }
}

impl Clone for Filtered {
    fn clone(&self) -> Self {
        Filtered {
            scoring: self.scoring.box_clone(),
            filter: self.filter.box_clone(),
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
}

impl Weight for FilteredWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut filter = self.filter.scorer(reader, 0.0)?;
        let scoring = self.scoring.scorer(reader, boost)?;
        let max_doc = reader.max_doc();
        if filter.size_hint().saturating_mul(DENSE_ONE_IN) < max_doc {
            // Sparse: leapfrog, the filter driving.
            return Ok(intersect_scorers(vec![scoring, filter], max_doc));
        }
        let mut allowed = BitSet::with_max_value(max_doc);
        let mut doc = filter.doc();
        while doc != TERMINATED {
            allowed.insert(doc);
            doc = filter.advance();
        }
        let mut scorer = FilteredScorer {
            inner: scoring,
            allowed,
        };
        scorer.settle();
        Ok(Box::new(scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        // Matching the filter is checked by the scorer; the score is the scoring query's.
        self.filter.explain(reader, doc)?;
        self.scoring.explain(reader, doc)
    }
}

/// The scoring query's documents that are in `allowed`.
struct FilteredScorer {
    inner: Box<dyn Scorer>,
    allowed: BitSet,
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
        for k in ["rare", "common", "missing"] {
            let filtered = Filtered::new(term(word, "parse"), term(kind, k));
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
