//! Private errors of the local store, converted into `marketplace_core::Error`.

use marketplace_core::Error;

/// What can go wrong inside the local store.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("{store}: reading the upload failed: {source}")]
    Upload {
        store: String,
        source: std::io::Error,
    },
    #[error("{store}: {}: {source}", path.display())]
    File {
        store: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl StoreError {
    /// Converts into the public error, saying what was being done. A local disk's errors are
    /// not transient: retrying a full disk or a permission error gives the same answer.
    pub(crate) fn during(self, operation: impl Into<String>) -> Error {
        Error::backend("local store", operation, self, false)
    }
}
