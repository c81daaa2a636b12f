//! Private errors of the PostgreSQL registry, converted into `marketplace_core::Error`.

use std::error::Error as _;

use marketplace_core::Error;
use tokio_postgres::error::SqlState;

/// What can go wrong inside the PostgreSQL registry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PgError {
    #[error("{location}: {message}")]
    Postgres {
        location: String,
        message: String,
        transient: bool,
    },
    #[error("{location}: no connection from the pool: {message}")]
    Pool {
        location: String,
        message: String,
        transient: bool,
    },
    #[error(
        "{location} has schema version {found}, newer than the {supported} this library knows; upgrade marketplace-registry-postgres"
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
    #[error("{0}")]
    Config(String),
}

/// The SQLSTATEs after which the same statement may well succeed: the transaction lost a
/// serialization or deadlock check, the server is shutting down or starting, or it has no
/// connection slot free. Class 08 (connection exceptions) is checked separately.
const TRANSIENT: &[SqlState] = &[
    SqlState::T_R_SERIALIZATION_FAILURE,
    SqlState::T_R_DEADLOCK_DETECTED,
    SqlState::ADMIN_SHUTDOWN,
    SqlState::CRASH_SHUTDOWN,
    SqlState::CANNOT_CONNECT_NOW,
    SqlState::TOO_MANY_CONNECTIONS,
];

/// Whether retrying may succeed after `error`: a lost connection, an I/O failure, or one of
/// the [`TRANSIENT`] states.
pub(crate) fn is_transient(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        return TRANSIENT.contains(code) || code.code().starts_with("08");
    }
    // A refused certificate or handshake arrives wrapped in an I/O error, and no retry
    // changes it.
    let mut io = false;
    let mut source = error.source();
    while let Some(cause) = source {
        #[cfg(feature = "tls")]
        if cause.is::<rustls::Error>()
            || cause
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return false;
        }
        io |= cause.is::<std::io::Error>();
        source = cause.source();
    }
    io
}

/// The server's own words for a database error (severity, SQLSTATE, message, detail), or the
/// driver's with its causes.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

impl PgError {
    pub(crate) fn postgres(location: &str, error: &tokio_postgres::Error) -> Self {
        PgError::Postgres {
            location: location.to_owned(),
            message: describe(error),
            transient: is_transient(error),
        }
    }

    pub(crate) fn pool(location: &str, error: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        let (message, transient) = match &error {
            PoolError::Backend(e) => (describe(e), is_transient(e)),
            // Every connection busy for the whole wait, or the server not answering.
            PoolError::Timeout(_) => (error.to_string(), true),
            _ => (error.to_string(), false),
        };
        PgError::Pool {
            location: location.to_owned(),
            message,
            transient,
        }
    }

    fn transient(&self) -> bool {
        match self {
            PgError::Postgres { transient, .. } | PgError::Pool { transient, .. } => *transient,
            _ => false,
        }
    }

    /// Converts into the public error, saying what was being done.
    pub(crate) fn during(self, operation: impl Into<String>) -> Error {
        let transient = self.transient();
        Error::backend("postgres", operation, self, transient)
    }
}
