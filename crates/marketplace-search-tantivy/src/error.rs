//! Private errors of the tantivy backend, converted into `marketplace_core::Error`.

use marketplace_core::Error;

/// What can go wrong inside the tantivy backend.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SearchError {
    #[error("{index}: {source}")]
    Tantivy {
        index: String,
        source: tantivy::TantivyError,
    },
    #[error("{index}: a stored document does not parse ({reason}); rebuild the index")]
    Corrupt { index: String, reason: String },
    #[error("{index}: an index task panicked or was cancelled: {reason}")]
    Task { index: String, reason: String },
    #[error("{index} is open read-only (the marketplace home is not writable): writes are refused")]
    ReadOnly { index: String },
    #[error(
        "{index} was written with another schema and could not be cleared for a rebuild: {source}"
    )]
    Clear {
        index: String,
        source: std::io::Error,
    },
    #[error("could not create the index directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
}

impl SearchError {
    /// Converts into the public error, saying what was being done. An index whose writer lock
    /// another process holds is busy, not broken: that error is transient.
    pub(crate) fn during(self, operation: impl Into<String>) -> Error {
        let transient = matches!(
            &self,
            SearchError::Tantivy {
                source: tantivy::TantivyError::LockFailure(..),
                ..
            }
        );
        Error::backend("tantivy", operation, self, transient)
    }
}
