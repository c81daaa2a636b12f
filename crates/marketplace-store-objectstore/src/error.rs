//! Private errors of the object store backend, converted into `marketplace_core::Error`.

use marketplace_core::Error;

/// What can go wrong inside the object store backend.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("{store}: {source}")]
    ObjectStore {
        store: String,
        source: object_store::Error,
    },
    #[error("{store}: reading the upload failed: {source}")]
    Upload {
        store: String,
        source: std::io::Error,
    },
    #[cfg(feature = "s3")]
    #[error("S3 configuration: {0}")]
    Config(String),
}

impl StoreError {
    fn transient(&self) -> bool {
        match self {
            // Network, throttling and server errors surface as `Generic` from the HTTP client.
            StoreError::ObjectStore { source, .. } => {
                matches!(source, object_store::Error::Generic { .. })
            }
            StoreError::Upload { .. } => false,
            #[cfg(feature = "s3")]
            StoreError::Config(_) => false,
        }
    }

    /// Converts into the public error, saying what was being done.
    pub(crate) fn during(self, operation: impl Into<String>) -> Error {
        let transient = self.transient();
        Error::backend("objectstore", operation, self, transient)
    }
}
