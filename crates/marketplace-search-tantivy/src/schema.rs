//! The index schema: one document per version.

use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, TextFieldIndexing,
    TextOptions,
};
use tantivy::tokenizer::{LowerCaser, NgramTokenizer, TextAnalyzer};

/// The edge-n-gram tokenizer of `name_prefix`: every prefix of the canonical name.
pub(crate) const EDGE_TOKENIZER: &str = "marketplace_edge";

/// The tokenizer of descriptions and keywords: words lower-cased and stemmed (English), so
/// that "parsers" finds "parser" and "parallelism" finds "parallel". Names are not stemmed.
pub(crate) const STEM_TOKENIZER: &str = "en_stem";

/// Longest name prefix indexed (names are at most 64 characters).
const EDGE_MAX: usize = 64;

/// The fields of a version's document.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    /// Canonical id (`ns/name@version`, no build metadata): raw, for update and remove.
    pub(crate) id: Field,
    /// Canonical package key (`ns/name`): raw, groups a package's versions.
    pub(crate) package: Field,
    /// Name words (tokenized).
    pub(crate) name: Field,
    /// Canonical name, raw: exact matches.
    pub(crate) name_exact: Field,
    /// Every prefix of the canonical name: suggestions.
    pub(crate) name_prefix: Field,
    /// Canonical name then package key, as a fast string: sort by name.
    pub(crate) name_sort: Field,
    /// Keywords (tokenized and stemmed) for text search.
    pub(crate) keywords: Field,
    /// Keywords, raw and lowercased: filters.
    pub(crate) keyword_raw: Field,
    /// Categories, raw and lowercased: filters.
    pub(crate) category_raw: Field,
    /// Canonical namespace, raw: filters.
    pub(crate) namespace: Field,
    /// Description (tokenized and stemmed).
    pub(crate) description: Field,
    /// Each pair of adjacent description words (stemmed, `"first second"`), raw: phrases of
    /// a query as term lookups instead of position walks.
    pub(crate) description_pairs: Field,
    /// Authors (tokenized).
    pub(crate) authors: Field,
    /// License expression, raw.
    pub(crate) license: Field,
    /// Categories, keywords and namespace as facets (`/category/x`, `/keyword/y`, `/namespace/z`).
    pub(crate) facets: Field,
    /// The canonical keys of the packages the current version depends on (itself excluded):
    /// raw, on current versions only, so that a package's dependents are one count.
    pub(crate) depends_on: Field,
    /// How many packages' current versions depend on this package: fast. Up to date on the
    /// package's current versions; older versions are rewritten with it when they are.
    pub(crate) dependents: Field,
    /// What downloads and dependents add to a relevance score, in hundredths, computed when
    /// the document is written: fast, one narrow column read per matching document.
    pub(crate) popularity: Field,
    /// Package downloads: fast (sort, boost) and indexed (range filter).
    pub(crate) downloads: Field,
    /// Publication time, Unix seconds: fast (sort by recent).
    pub(crate) published: Field,
    /// 1 for the package's current version among versions that are not yanked.
    pub(crate) current: Field,
    /// 1 for the package's current version among all versions.
    pub(crate) current_any: Field,
    /// The `PackageRecord` as JSON.
    pub(crate) record: Field,
}

/// Builds the schema and its fields.
pub(crate) fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let edge = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(EDGE_TOKENIZER)
            .set_index_option(IndexRecordOption::Basic),
    );
    let stemmed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(STEM_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        package: b.add_text_field("package", STRING),
        name: b.add_text_field("name", TEXT),
        name_exact: b.add_text_field("name_exact", STRING),
        name_prefix: b.add_text_field("name_prefix", edge),
        name_sort: b.add_text_field("name_sort", STRING | FAST),
        keywords: b.add_text_field("keywords", stemmed.clone()),
        keyword_raw: b.add_text_field("keyword_raw", STRING),
        category_raw: b.add_text_field("category_raw", STRING),
        namespace: b.add_text_field("namespace", STRING),
        description: b.add_text_field("description", stemmed),
        description_pairs: b.add_text_field("description_pairs", STRING),
        authors: b.add_text_field("authors", TEXT),
        license: b.add_text_field("license", STRING),
        facets: b.add_facet_field("facets", tantivy::schema::FacetOptions::default()),
        depends_on: b.add_text_field("depends_on", STRING),
        dependents: b.add_u64_field("dependents", FAST),
        popularity: b.add_u64_field("popularity", FAST),
        downloads: b.add_u64_field("downloads", FAST | INDEXED),
        published: b.add_i64_field("published", FAST),
        current: b.add_u64_field("current", INDEXED),
        current_any: b.add_u64_field("current_any", INDEXED),
        record: b.add_text_field("record", STORED),
    };
    (b.build(), fields)
}

/// The analyzer registered as [`EDGE_TOKENIZER`].
pub(crate) fn edge_analyzer() -> tantivy::Result<TextAnalyzer> {
    Ok(
        TextAnalyzer::builder(NgramTokenizer::new(1, EDGE_MAX, true)?)
            .filter(LowerCaser)
            .build(),
    )
}
