//! Turning a `SearchQuery` into tantivy queries. User text never reaches a query parser: it is
//! tokenized like the indexed text and each term becomes term and fuzzy-term queries.

use std::collections::BTreeSet;
use std::ops::Bound;

use marketplace_core::SearchQuery;
use tantivy::Term;
use tantivy::query::{
    AutomatonWeight, BooleanQuery, BoostQuery, ConstScoreQuery, DfaWrapper, EnableScoring,
    FuzzyTermQuery, Occur, Query, RangeQuery, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy_fst::Automaton;

use crate::bonus::Bonus;
use crate::schema::Fields;

/// Most distinct terms taken from one query text (the rest is ignored).
const MAX_TERMS: usize = 16;
/// Longest term given typo tolerance (a fuzzy automaton grows with the term).
const MAX_FUZZY_TERM: usize = 32;

/// Field weights: name over keywords over description.
const NAME_BOOST: f32 = 5.0;
const KEYWORD_BOOST: f32 = 2.5;
const DESCRIPTION_BOOST: f32 = 0.5;
const EXACT_NAME_BOOST: f32 = 100.0;
/// A typo match counts for less than an exact one.
const FUZZY_FACTOR: f32 = 0.4;
/// What each query word found anywhere in a package (name, keywords or description) adds: more
/// than a single word's best field score, so a package matching every word outranks one that
/// matches one word in its name.
const COVERAGE_BONUS: f32 = 40.0;
/// The query's words in order in the description.
const PHRASE_BOOST: f32 = 4.0;

/// Words too common to say what a package is about: they score, but they do not count towards
/// a package matching "every word" of a query.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it", "of",
    "on", "or", "that", "the", "to", "with",
];

/// The canonical form of a name: lowercase, `_` read as `-`.
pub(crate) fn canonical(text: &str) -> String {
    text.trim().to_lowercase().replace('_', "-")
}

/// Edits allowed for a term: none below 5 letters (one for 3 and 4 letters when `forgive_short`),
/// 1 for 5–8, 2 for 9 to 32, none beyond.
pub(crate) fn allowed_edits(term: &str, forgive_short: bool) -> u8 {
    match term.chars().count() {
        3..=4 if forgive_short => 1,
        0..=4 => 0,
        5..=8 => 1,
        9..=MAX_FUZZY_TERM => 2,
        _ => 0,
    }
}

/// One word of a query: as names are tokenized, and as descriptions and keywords are (stemmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub(crate) plain: String,
    pub(crate) stem: String,
}

/// The words of a query text: distinct, at most [`MAX_TERMS`], in order, and the stems of every
/// word in order (repeats kept) for the phrase.
#[derive(Debug, Clone, Default)]
pub(crate) struct Words {
    pub(crate) distinct: Vec<Word>,
    pub(crate) phrase: Vec<String>,
}

/// The words of `text`, tokenized by `plain` (the name analyzer) and each stemmed by `stemmed`
/// (the description analyzer).
pub(crate) fn words(plain: &mut TextAnalyzer, stemmed: &mut TextAnalyzer, text: &str) -> Words {
    let mut seen = BTreeSet::new();
    let mut words = Words::default();
    let mut stream = plain.token_stream(text);
    while let Some(token) = stream.next() {
        if words.phrase.len() >= MAX_TERMS {
            break;
        }
        let plain = token.text.clone();
        let stem = {
            let mut stems = stemmed.token_stream(&plain);
            match stems.next() {
                Some(t) => t.text.clone(),
                None => plain.clone(),
            }
        };
        words.phrase.push(stem.clone());
        if seen.insert(plain.clone()) {
            words.distinct.push(Word { plain, stem });
        }
    }
    words
}

/// Two adjacent stems as one term of `description_pairs`.
pub(crate) fn pair_text(first: &str, second: &str) -> String {
    format!("{first} {second}")
}

/// The terms within `edits` of a word (a transposition counting one), the word itself left out:
/// the typo clause beside a word's exact clause. A fuzzy query would match the exact word too,
/// collecting every document that has it a second time, unscored — most of what a typo clause
/// costs.
#[derive(Clone, Debug)]
pub(crate) struct TypoQuery {
    term: Term,
    edits: u8,
}

impl Query for TypoQuery {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let dfa = FuzzyTermQuery::new(self.term.clone(), self.edits, true).automaton()?;
        let word = self.term.serialized_value_bytes().to_vec();
        Ok(Box::new(AutomatonWeight::new(
            self.term.field(),
            NotExactly { dfa, word },
        )))
    }
}

/// An automaton matching what `dfa` matches except `word`.
struct NotExactly {
    dfa: DfaWrapper,
    word: Vec<u8>,
}

/// A state of [`NotExactly`]: the inner state, and how many bytes of the word the input has
/// followed exactly (`None` once it left the word).
#[derive(Clone)]
struct NotExactlyState {
    inner: u32,
    along: Option<usize>,
}

impl Automaton for NotExactly {
    type State = NotExactlyState;

    fn start(&self) -> NotExactlyState {
        NotExactlyState {
            inner: self.dfa.start(),
            along: Some(0),
        }
    }

    fn is_match(&self, state: &NotExactlyState) -> bool {
        state.along != Some(self.word.len()) && self.dfa.is_match(&state.inner)
    }

    fn can_match(&self, state: &NotExactlyState) -> bool {
        self.dfa.can_match(&state.inner)
    }

    fn accept(&self, state: &NotExactlyState, byte: u8) -> NotExactlyState {
        NotExactlyState {
            inner: self.dfa.accept(&state.inner, byte),
            along: state
                .along
                .filter(|&at| self.word.get(at) == Some(&byte))
                .map(|at| at + 1),
        }
    }
}

fn term_query(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs))
}

fn boosted(query: Box<dyn Query>, boost: f32) -> (Occur, Box<dyn Query>) {
    (Occur::Should, Box::new(BoostQuery::new(query, boost)))
}

/// A word at least one document in this many has in a field (and at least
/// [`COMMON_MIN_DOCUMENTS`]) is common there: it was typed as meant, and typos of it are not
/// searched in that field — their matches would rank below its own many exact ones, at the cost
/// of a typo automaton walked per segment.
pub(crate) const COMMON_ONE_IN: u64 = 100;
/// See [`COMMON_ONE_IN`].
pub(crate) const COMMON_MIN_DOCUMENTS: u64 = 50;

/// The ways one word matches a package, each with its field weight: the plain word in the name,
/// its stem in keywords and description, and typos of it in name and keywords where the word
/// is not `common` there.
fn word_clauses(
    fields: &Fields,
    word: &Word,
    forgive_short: bool,
    common: &dyn Fn(&Term) -> bool,
) -> Vec<(Occur, Box<dyn Query>)> {
    let mut clauses = Vec::new();
    for (field, text, boost) in [
        (fields.name, &word.plain, NAME_BOOST),
        (fields.keywords, &word.stem, KEYWORD_BOOST),
        (fields.description, &word.stem, DESCRIPTION_BOOST),
    ] {
        let exact = Term::from_field_text(field, text);
        let edits = allowed_edits(text, forgive_short);
        // Typos are forgiven in names and keywords; fuzzy matching across every description
        // word would cost more than it finds.
        let typos = edits > 0 && field != fields.description && !common(&exact);
        clauses.push(boosted(term_query(exact), boost));
        if typos {
            let typo = TypoQuery {
                term: Term::from_field_text(field, text),
                edits,
            };
            clauses.push(boosted(Box::new(typo), boost * FUZZY_FACTOR));
        }
    }
    clauses
}

/// The scoring part of a text search: each word in name, keywords or description (typos
/// tolerated in name and keywords, stems matched in keywords and description), a bonus per word
/// found anywhere (so packages matching every word come first), adjacent pairs of the words in
/// the description (a phrase, as pairs), and the whole text as an exact or misspelt name.
///
/// Only current versions carry searchable text, but every version carries its package key (to
/// find a package's versions): the exact-package clause is held to `current` (the flag field of
/// the query's mode), or a query equal to a package's name would match all its versions.
pub(crate) fn text_query(
    fields: &Fields,
    words: &Words,
    query: &SearchQuery,
    current: Field,
    common: &dyn Fn(&Term) -> bool,
) -> Option<Box<dyn Query>> {
    if words.distinct.is_empty() {
        return None;
    }
    let mut clauses = Vec::new();
    let forgive_short = query.forgive_short_typos;
    let whole = canonical(query.bounded_text());
    // Text that cannot be a name or a package key (too long, or with a space or any other
    // character names do not have) gets no exact or misspelt-name clause: a several-word query
    // then builds no whole-text typo automaton, the costliest clause there is.
    let could_be_name = whole
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '/');
    if !whole.is_empty() && could_be_name && whole.len() <= 2 * marketplace_core::MAX_NAME_LEN + 1 {
        clauses.push(boosted(
            term_query(Term::from_field_text(fields.name_exact, &whole)),
            EXACT_NAME_BOOST,
        ));
        let package = BooleanQuery::new(vec![
            (
                Occur::Must,
                term_query(Term::from_field_text(fields.package, &whole)),
            ),
            (
                Occur::Must,
                Box::new(ConstScoreQuery::new(
                    Box::new(TermQuery::new(
                        Term::from_field_u64(current, 1),
                        IndexRecordOption::Basic,
                    )),
                    0.0,
                )),
            ),
        ]);
        clauses.push(boosted(Box::new(package), EXACT_NAME_BOOST));
        // A misspelt whole name still beats names that merely contain the word.
        let edits = allowed_edits(&whole, forgive_short);
        if edits > 0 {
            let typo = TypoQuery {
                term: Term::from_field_text(fields.name_exact, &whole),
                edits,
            };
            clauses.push(boosted(Box::new(typo), EXACT_NAME_BOOST * FUZZY_FACTOR));
        }
    }
    let counted = words
        .distinct
        .iter()
        .filter(|w| !STOP_WORDS.contains(&w.plain.as_str()))
        .count();
    for word in &words.distinct {
        let ways = word_clauses(fields, word, forgive_short, common);
        // With one counted word every match would get the bonus: it would order nothing.
        if counted > 1 && !STOP_WORDS.contains(&word.plain.as_str()) {
            let anywhere = Bonus::new(Box::new(BooleanQuery::new(ways)), COVERAGE_BONUS);
            clauses.push((Occur::Should, Box::new(anywhere)));
        } else {
            clauses.extend(ways);
        }
    }
    // The words in order: each adjacent pair as one term of the description's pairs.
    for pair in words.phrase.windows(2) {
        clauses.push(boosted(
            term_query(Term::from_field_text(
                fields.description_pairs,
                &pair_text(&pair[0], &pair[1]),
            )),
            PHRASE_BOOST,
        ));
    }
    Some(Box::new(BooleanQuery::new(clauses)))
}

fn filter(query: Box<dyn Query>) -> (Occur, Box<dyn Query>) {
    (Occur::Must, Box::new(ConstScoreQuery::new(query, 0.0)))
}

/// Marks, in the other flag's field, the document that is current under one mode but not
/// under the other (see [`filters`]).
pub(crate) const HIDDEN: u64 = 2;

/// The filters of `query` as clauses that must match and do not score.
///
/// Every query keeps one version per package: the current one (`current`, or `current_any`
/// with `include_yanked`). With `text_on_current_only` (the index layout in which only current
/// versions carry searchable text, see `TantivySearchEngine`), a query that has text needs no
/// such filter: it can only match current versions. Of those it excludes the one document per
/// package that is current under the other mode only, marked [`HIDDEN`]: a small exclusion
/// instead of intersecting every match with a flag that covers the whole index.
pub(crate) fn filters(
    fields: &Fields,
    query: &SearchQuery,
    text_on_current_only: bool,
) -> Vec<(Occur, Box<dyn Query>)> {
    let (flag, hidden) = if query.include_yanked {
        (fields.current_any, fields.current)
    } else {
        (fields.current, fields.current_any)
    };
    let visibility = if text_on_current_only {
        (
            Occur::MustNot,
            Box::new(TermQuery::new(
                Term::from_field_u64(hidden, HIDDEN),
                IndexRecordOption::Basic,
            )) as Box<dyn Query>,
        )
    } else {
        filter(Box::new(TermQuery::new(
            Term::from_field_u64(flag, 1),
            IndexRecordOption::Basic,
        )))
    };
    let mut clauses = vec![visibility];
    for category in &query.categories {
        clauses.push(filter(term_query(Term::from_field_text(
            fields.category_raw,
            &category.to_lowercase(),
        ))));
    }
    for keyword in &query.keywords {
        clauses.push(filter(term_query(Term::from_field_text(
            fields.keyword_raw,
            &keyword.to_lowercase(),
        ))));
    }
    if let Some(namespace) = &query.namespace {
        clauses.push(filter(term_query(Term::from_field_text(
            fields.namespace,
            &canonical(namespace),
        ))));
    }
    if let Some(min) = query.min_downloads {
        clauses.push(filter(Box::new(RangeQuery::new(
            Bound::Included(Term::from_field_u64(fields.downloads, min)),
            Bound::Unbounded,
        ))));
    }
    clauses
}

#[cfg(test)]
mod tests {
    use tantivy::collector::DocSetCollector;
    use tantivy::schema::{STORED, STRING, Schema, Value};
    use tantivy::{Index, TantivyDocument, Term, doc};

    use super::TypoQuery;

    /// The typo clause finds the words within its edits and never the word itself.
    #[test]
    fn a_typo_query_matches_near_words_but_not_the_word_itself() {
        let mut schema = Schema::builder();
        let word = schema.add_text_field("word", STRING | STORED);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for w in ["parser", "parsers", "parse", "paser", "sparser", "poster"] {
            writer.add_document(doc!(word => w)).unwrap();
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let typo = TypoQuery {
            term: Term::from_field_text(word, "parser"),
            edits: 1,
        };
        let mut found: Vec<String> = searcher
            .search(&typo, &DocSetCollector)
            .unwrap()
            .into_iter()
            .map(|address| {
                let stored: TantivyDocument = searcher.doc(address).unwrap();
                let text = stored.get_first(word).and_then(|v| v.as_str());
                text.unwrap_or_default().to_owned()
            })
            .collect();
        found.sort();
        assert_eq!(found, ["parse", "parsers", "paser", "sparser"]);
    }
}
