//! Private errors of the SQLite registry, converted into `marketplace_core::Error`.

use marketplace_core::Error;
use rusqlite::ErrorCode;

/// What can go wrong inside the SQLite registry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SqliteError {
    #[error("{location}: {source}")]
    Sqlite {
        location: String,
        source: rusqlite::Error,
    },
    #[error("{location} is not a SQLite database (or is corrupt): {source}")]
    NotADatabase {
        location: String,
        source: rusqlite::Error,
    },
    #[error(
        "{location} has schema version {found}, newer than the {supported} this library knows; upgrade marketplace-registry-sqlite"
    )]
    NewerSchema {
        location: String,
        found: i64,
        supported: i64,
    },
    #[error(
        "{location}: stored {what} does not parse ({reason}); the database was changed outside this library"
    )]
    Corrupt {
        location: String,
        what: String,
        reason: String,
    },
    #[error("a database task panicked or was cancelled: {0}")]
    Task(String),
    #[error("{location}: the database or disk is full: {source}")]
    DiskFull {
        location: String,
        /// An `io::Error` of kind `StorageFull`, so callers see a full disk the same way
        /// whichever backend met it.
        source: std::io::Error,
    },
    #[error(
        "{location} is open read-only (the marketplace home is not writable): writes are refused"
    )]
    ReadOnly { location: String },
    #[error(
        "{location} has schema version {found}, older than the {supported} this library writes; open it once with write access to upgrade it"
    )]
    OlderSchema {
        location: String,
        found: i64,
        supported: i64,
    },
    #[error("could not create the directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
}

impl SqliteError {
    /// Wraps a rusqlite error, recognising files that are not databases.
    pub(crate) fn sqlite(location: &str, source: rusqlite::Error) -> Self {
        let location = location.to_owned();
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                SqliteError::NotADatabase { location, source }
            }
            Some(ErrorCode::DiskFull) => SqliteError::DiskFull {
                location,
                source: std::io::Error::new(std::io::ErrorKind::StorageFull, source.to_string()),
            },
            _ => SqliteError::Sqlite { location, source },
        }
    }

    /// Whether SQLite refused for a lock another connection holds (busy or locked).
    pub(crate) fn is_busy(&self) -> bool {
        self.transient()
    }

    fn transient(&self) -> bool {
        match self {
            SqliteError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }

    /// Converts into the public error, saying what was being done.
    pub(crate) fn during(self, operation: impl Into<String>) -> Error {
        let transient = self.transient();
        Error::backend("sqlite", operation, self, transient)
    }
}
