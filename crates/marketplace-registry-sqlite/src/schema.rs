//! Connections, pragmas and versioned migrations.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::error::SqliteError;

/// Migrations in order; migration `i` (0-based) takes the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_initial.sql"),
    include_str!("migrations/002_version_authors.sql"),
    include_str!("migrations/003_download_stamps.sql"),
    include_str!("migrations/004_accounts.sql"),
];

/// The schema version this library writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens a read-write connection and sets the pragmas every connection needs.
pub(crate) fn connect(path: Option<&Path>, location: &str) -> Result<Connection, SqliteError> {
    let err = |e| SqliteError::sqlite(location, e);
    let conn = match path {
        Some(path) => Connection::open(path).map_err(err)?,
        None => Connection::open_in_memory().map_err(err)?,
    };
    configure(&conn, location)?;
    Ok(conn)
}

/// Opens a read-only connection to a file database (a reader of the pool).
pub(crate) fn connect_reader(path: &Path, location: &str) -> Result<Connection, SqliteError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(|e| SqliteError::sqlite(location, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| SqliteError::sqlite(location, e))?;
    Ok(conn)
}

/// Opens a file database as immutable: read-only, and SQLite neither locks it nor opens its
/// write-ahead log (for a read-only directory where the log's files cannot be created).
pub(crate) fn connect_immutable(path: &Path, location: &str) -> Result<Connection, SqliteError> {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '?' | '#' | '%' => uri.push_str(&format!("%{:02X}", c as u32)),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    Connection::open_with_flags(uri, flags).map_err(|e| SqliteError::sqlite(location, e))
}

/// A reader of an existing database at exactly this library's schema version, and whether it
/// had to be opened as immutable (see [`connect_immutable`]).
pub(crate) fn open_read_only(
    path: &Path,
    location: &str,
) -> Result<(Connection, bool), SqliteError> {
    let version = |conn: &Connection| {
        conn.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
            .map_err(|e| SqliteError::sqlite(location, e))
    };
    // Opening with SQLITE_OPEN_READ_ONLY never creates the file; the first read opens the log.
    let (conn, found, immutable) =
        match connect_reader(path, location).and_then(|conn| version(&conn).map(|v| (conn, v))) {
            Ok((conn, found)) => (conn, found, false),
            // The log's files are missing and cannot be created here ("unable to open", or
            // "attempt to write a readonly database" when SQLite would initialise them).
            Err(SqliteError::Sqlite { source, .. })
                if matches!(
                    source.sqlite_error_code(),
                    Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly)
                ) && path.is_file() =>
            {
                let conn = connect_immutable(path, location)?;
                let found = version(&conn)?;
                (conn, found, true)
            }
            Err(e) => return Err(e),
        };
    match found.cmp(&SCHEMA_VERSION) {
        std::cmp::Ordering::Equal => Ok((conn, immutable)),
        std::cmp::Ordering::Greater => Err(SqliteError::NewerSchema {
            location: location.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        }),
        std::cmp::Ordering::Less => Err(SqliteError::OlderSchema {
            location: location.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        }),
    }
}

fn configure(conn: &Connection, location: &str) -> Result<(), SqliteError> {
    let err = |e| SqliteError::sqlite(location, e);
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    // Reading the schema version first turns "not a database" into a clear error before any
    // pragma tries to write.
    conn.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
        .map_err(err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(err)?;
    // WAL: readers never wait for the writer. Ignored (stays "memory") for in-memory databases.
    conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
        row.get::<_, String>(0)
    })
    .map_err(err)?;
    // FULL: a committed registration survives power loss, not just a crash of this process.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    Ok(())
}

/// Upgrades the schema to [`SCHEMA_VERSION`], one transaction per migration. A database from a
/// newer library is refused, never touched.
///
/// Each migration's transaction takes the write lock first and reads the schema version under
/// it, so processes opening a new database at once apply every migration exactly once: the
/// others wait for the lock, then find it applied.
pub(crate) fn migrate(conn: &mut Connection, location: &str) -> Result<(), SqliteError> {
    let err = |e| SqliteError::sqlite(location, e);
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let current: i64 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(err)?;
        if current > SCHEMA_VERSION {
            return Err(SqliteError::NewerSchema {
                location: location.to_owned(),
                found: current,
                supported: SCHEMA_VERSION,
            });
        }
        let Some(sql) = MIGRATIONS.get(current.max(0) as usize) else {
            return Ok(());
        };
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", current.max(0) + 1)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
}
