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
    #[error("a registry task panicked or was cancelled: {0}")]
    Task(String),
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

#[cfg(test)]
mod tests {
    use super::*;
    use marketplace_testing::postgres::PostgresServer;
    use tokio_postgres::{Client, NoTls};

    async fn connect(url: &str) -> Client {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
        tokio::spawn(connection);
        client
    }

    /// What the server really says for a deadlock, a serialization failure and a terminated
    /// session is transient; a constraint violation or a syntax error is not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_servers_own_failures_are_classified() {
        let Some(server) = PostgresServer::start() else {
            return;
        };
        let url = server.create_database("errors").expect("a database");
        let (mut a, mut b) = (connect(&url).await, connect(&url).await);
        a.batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0), (2, 0)",
        )
        .await
        .expect("a table");

        // A deadlock: each holds one row and asks for the other's.
        let ta = a.transaction().await.expect("begin");
        let tb = b.transaction().await.expect("begin");
        ta.execute("UPDATE t SET v = 1 WHERE id = 1", &[])
            .await
            .expect("a locks 1");
        tb.execute("UPDATE t SET v = 1 WHERE id = 2", &[])
            .await
            .expect("b locks 2");
        // The server aborts the victim (releasing its locks), so the other goes on.
        let (ra, rb) = tokio::join!(
            ta.execute("UPDATE t SET v = 2 WHERE id = 2", &[]),
            tb.execute("UPDATE t SET v = 2 WHERE id = 1", &[]),
        );
        let deadlock = ra
            .err()
            .or(rb.err())
            .expect("one of them is the deadlock's victim");
        assert_eq!(deadlock.code(), Some(&SqlState::T_R_DEADLOCK_DETECTED));
        assert!(is_transient(&deadlock), "{}", describe(&deadlock));
        drop((ta, tb));

        // A serialization failure: two serializable transactions that each read what the
        // other writes.
        let ta = a
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::Serializable)
            .start()
            .await
            .expect("begin");
        let tb = b
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::Serializable)
            .start()
            .await
            .expect("begin");
        ta.query("SELECT sum(v) FROM t", &[])
            .await
            .expect("a reads");
        tb.query("SELECT sum(v) FROM t", &[])
            .await
            .expect("b reads");
        ta.execute("UPDATE t SET v = v + 1 WHERE id = 1", &[])
            .await
            .expect("a writes");
        tb.execute("UPDATE t SET v = v + 1 WHERE id = 2", &[])
            .await
            .expect("b writes");
        ta.commit().await.expect("the first commit wins");
        let lost = tb
            .commit()
            .await
            .expect_err("the second cannot be serialised");
        assert_eq!(lost.code(), Some(&SqlState::T_R_SERIALIZATION_FAILURE));
        assert!(is_transient(&lost), "{}", describe(&lost));

        // Not transient: a duplicate key, a syntax error.
        let duplicate = a
            .execute("INSERT INTO t VALUES (1, 0)", &[])
            .await
            .expect_err("a duplicate");
        assert!(!is_transient(&duplicate), "{}", describe(&duplicate));
        assert!(
            describe(&duplicate).contains("23505"),
            "{}",
            describe(&duplicate)
        );
        let syntax = a.execute("SELEC 1", &[]).await.expect_err("bad SQL");
        assert!(!is_transient(&syntax), "{}", describe(&syntax));

        // An administrator ends b's session: b's next statement fails, and retrying (on a new
        // connection) would work.
        let pid: i32 = b
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("pid")
            .get(0);
        a.execute("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .expect("terminate");
        let ended = b.execute("SELECT 1", &[]).await.expect_err("terminated");
        assert!(is_transient(&ended), "{}", describe(&ended));
    }
}
