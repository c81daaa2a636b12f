//! A query that adds a fixed bonus to what another query scores, for every document it
//! matches: how each word of a several-word query counts once, whichever fields it is found in,
//! without walking its postings a second time (a separate constant-score clause would).

use std::fmt;

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{COLLECT_BLOCK_BUFFER_LEN, SeekDangerResult};
use tantivy::{DocId, DocSet, Score, SegmentReader, Term};

/// `inner`, scoring `bonus` more on every document it matches.
pub(crate) struct Bonus {
    inner: Box<dyn Query>,
    bonus: Score,
}

impl Bonus {
    pub(crate) fn new(inner: Box<dyn Query>, bonus: Score) -> Self {
        Bonus { inner, bonus }
    }
}

impl Clone for Bonus {
    fn clone(&self) -> Self {
        Bonus {
            inner: self.inner.box_clone(),
            bonus: self.bonus,
        }
    }
}

impl fmt::Debug for Bonus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bonus(+{}, {:?})", self.bonus, self.inner)
    }
}

impl Query for Bonus {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let inner = self.inner.weight(enable_scoring)?;
        if !enable_scoring.is_scoring_enabled() {
            return Ok(inner);
        }
        Ok(Box::new(BonusWeight {
            inner,
            bonus: self.bonus,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.inner.query_terms(visitor);
    }
}

struct BonusWeight {
    inner: Box<dyn Weight>,
    bonus: Score,
}

impl Weight for BonusWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(BonusScorer {
            inner: self.inner.scorer(reader, boost)?,
            bonus: self.bonus * boost,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let inner = self.inner.explain(reader, doc)?;
        let mut explanation = Explanation::new("Bonus", inner.value() + self.bonus);
        explanation.add_detail(inner);
        explanation.add_const("matched", self.bonus);
        Ok(explanation)
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        self.inner.count(reader)
    }
}

struct BonusScorer {
    inner: Box<dyn Scorer>,
    bonus: Score,
}

impl DocSet for BonusScorer {
    fn advance(&mut self) -> DocId {
        self.inner.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.inner.seek(target)
    }

    fn seek_danger(&mut self, target: DocId) -> SeekDangerResult {
        self.inner.seek_danger(target)
    }

    fn fill_buffer(&mut self, buffer: &mut [DocId; COLLECT_BLOCK_BUFFER_LEN]) -> usize {
        self.inner.fill_buffer(buffer)
    }

    fn doc(&self) -> DocId {
        self.inner.doc()
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }

    fn cost(&self) -> u64 {
        self.inner.cost()
    }
}

impl Scorer for BonusScorer {
    fn score(&mut self) -> Score {
        self.inner.score() + self.bonus
    }
}
