//! Private errors of this backend, converted into `marketplace_core::Error`.

use std::path::PathBuf;

use marketplace_core::Error;

/// What can go wrong inside the ring backend.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RingError {
    #[error("the system random source failed")]
    Random,
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a trust store ({reason}); move it aside or restore it from a backup")]
    Corrupt { path: PathBuf, reason: String },
}

impl RingError {
    fn transient(&self) -> bool {
        matches!(
            self,
            RingError::Read { .. } | RingError::Write { .. } | RingError::Random
        )
    }

    /// Converts into the public error, saying what was being done.
    pub(crate) fn during(self, operation: impl Into<String>) -> Error {
        let transient = self.transient();
        Error::backend("ring", operation, self, transient)
    }
}
