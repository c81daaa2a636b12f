//! A query that adds a bonus to what another query scores, for every document it matches: a
//! fixed one — how each word of a several-word query counts once, whichever fields it is found
//! in, without walking its postings a second time (a separate constant-score clause would) —
//! or one read from a `u64` fast field of the document (popularity, as a tie-breaker inside the
//! score, so that the plain top-k collector with its score threshold can rank, instead of a
//! collector that calls back for every document).

use std::fmt;
use std::sync::Arc;

use tantivy::columnar::{ColumnIndex, ColumnValues};

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{COLLECT_BLOCK_BUFFER_LEN, SeekDangerResult};
use tantivy::{DocId, DocSet, Score, SegmentReader, Term};

/// `inner`, scoring `bonus` more on every document it matches, plus, with a column, the
/// document's value in that `u64` fast field divided by its scale (0 where it has none).
pub(crate) struct Bonus {
    inner: Box<dyn Query>,
    bonus: Score,
    column: Option<(&'static str, Score)>,
}

impl Bonus {
    /// `inner` plus `bonus` on every match.
    pub(crate) fn new(inner: Box<dyn Query>, bonus: Score) -> Self {
        Bonus {
            inner,
            bonus,
            column: None,
        }
    }

    /// `inner` plus each match's value in the fast field `column`, divided by `scale`.
    pub(crate) fn per_document(inner: Box<dyn Query>, column: &'static str, scale: Score) -> Self {
        Bonus {
            inner,
            bonus: 0.0,
            column: Some((column, scale)),
        }
    }
}

impl Clone for Bonus {
    fn clone(&self) -> Self {
        Bonus {
            inner: self.inner.box_clone(),
            bonus: self.bonus,
            column: self.column,
        }
    }
}

impl fmt::Debug for Bonus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            None => write!(f, "Bonus(+{}, {:?})", self.bonus, self.inner),
            Some((column, scale)) => write!(f, "Bonus(+{column}/{scale}, {:?})", self.inner),
        }
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
            column: self.column,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.inner.query_terms(visitor);
    }
}

struct BonusWeight {
    inner: Box<dyn Weight>,
    bonus: Score,
    column: Option<(&'static str, Score)>,
}

impl BonusWeight {
    /// The segment's values of the bonus column, read directly when every document has one.
    fn column(&self, reader: &SegmentReader) -> Option<(Arc<dyn ColumnValues<u64>>, Score)> {
        let (name, scale) = self.column?;
        let column = reader.fast_fields().u64(name).ok()?;
        let values = match column.index {
            ColumnIndex::Full => column.values,
            _ => column.first_or_default_col(0),
        };
        Some((values, scale))
    }
}

impl Weight for BonusWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(BonusScorer {
            inner: self.inner.scorer(reader, boost)?,
            bonus: self.bonus * boost,
            column: self.column(reader),
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let inner = self.inner.explain(reader, doc)?;
        let from_column = self
            .column(reader)
            .map_or(0.0, |(values, scale)| values.get_val(doc) as Score / scale);
        let mut explanation = Explanation::new("Bonus", inner.value() + self.bonus + from_column);
        explanation.add_detail(inner);
        explanation.add_const("matched", self.bonus);
        explanation.add_const("column", from_column);
        Ok(explanation)
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        self.inner.count(reader)
    }
}

struct BonusScorer {
    inner: Box<dyn Scorer>,
    bonus: Score,
    column: Option<(Arc<dyn ColumnValues<u64>>, Score)>,
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
        let from_column = match &self.column {
            Some((values, scale)) => values.get_val(self.inner.doc()) as Score / scale,
            None => 0.0,
        };
        self.inner.score() + self.bonus + from_column
    }
}
