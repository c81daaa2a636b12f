//! Versioned migrations, embedded and applied in one transaction.

use tokio_postgres::Client;

use crate::error::PgError;

/// Migrations in order; migration `i` (0-based) takes the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("migrations/001_initial.sql")];

/// The schema version this library writes (the row of `marketplace_schema`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock migrations hold, so servers starting at once on one new database apply
/// every migration exactly once: the others wait, then find the schema current. (An arbitrary
/// constant: "mkt-pg" in ASCII.)
const MIGRATION_LOCK: i64 = 0x6d6b_742d_7067;

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction: every pending migration and the
/// new version number commit together or not at all. A database from a newer library is
/// refused and left untouched (the transaction is rolled back).
pub(crate) async fn migrate(client: &mut Client, location: &str) -> Result<(), PgError> {
    let db = |e: tokio_postgres::Error| PgError::postgres(location, &e);
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS marketplace_schema (
             one     boolean PRIMARY KEY DEFAULT true CHECK (one),
             version bigint NOT NULL
         )",
    )
    .await
    .map_err(db)?;
    let current: i64 = tx
        .query_opt("SELECT version FROM marketplace_schema", &[])
        .await
        .map_err(db)?
        .map_or(0, |row| row.get(0));
    if current > SCHEMA_VERSION {
        // Dropping `tx` rolls back: nothing of this attempt stays.
        return Err(PgError::NewerSchema {
            location: location.to_owned(),
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    if current == SCHEMA_VERSION {
        return tx.commit().await.map_err(db);
    }
    for sql in &MIGRATIONS[current.max(0) as usize..] {
        tx.batch_execute(sql).await.map_err(db)?;
    }
    tx.execute(
        "INSERT INTO marketplace_schema (one, version) VALUES (true, $1)
         ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
        &[&SCHEMA_VERSION],
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)
}
