//! The statements behind each `Registry` method, as synchronous functions on a connection.

use std::collections::BTreeMap;

use marketplace_core::semver::Version;
use marketplace_core::time::{Date, OffsetDateTime};
use marketplace_core::{
    DownloadCount, Error, EventKind, MetadataUpdate, PackageId, PackageMetadata, PackageRecord,
    PackageRef, PackageStats, RegistryEvent, VersionState, YankInfo, last_30_days,
};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, Transaction, params};

use crate::error::SqliteError;
use marketplace_registry_encoding as encoding;

/// Errors of one statement: either the contract's own (`NotFound`, `AlreadyExists`) or a
/// database failure to be wrapped with context.
pub(crate) enum QueryError {
    Contract(Error),
    Db(SqliteError),
}

impl From<Error> for QueryError {
    fn from(e: Error) -> Self {
        QueryError::Contract(e)
    }
}

impl From<SqliteError> for QueryError {
    fn from(e: SqliteError) -> Self {
        QueryError::Db(e)
    }
}

pub(crate) type QResult<T> = Result<T, QueryError>;

/// Adds the database location to rusqlite errors.
pub(crate) trait At<T> {
    fn at(self, location: &str) -> QResult<T>;
}

impl<T> At<T> for rusqlite::Result<T> {
    fn at(self, location: &str) -> QResult<T> {
        self.map_err(|e| QueryError::Db(SqliteError::sqlite(location, e)))
    }
}

pub(crate) fn corrupt(location: &str, what: &str, reason: impl ToString) -> QueryError {
    QueryError::Db(SqliteError::Corrupt {
        location: location.to_owned(),
        what: what.to_owned(),
        reason: reason.to_string(),
    })
}

fn parse_metadata(location: &str, json: &str) -> QResult<PackageMetadata> {
    encoding::decode_metadata(json).map_err(|e| corrupt(location, "package metadata", e))
}

/// The registered id of a metadata row, the rest left undecoded.
fn parse_metadata_id(location: &str, json: &str) -> QResult<PackageId> {
    encoding::decode_metadata_id(json).map_err(|e| corrupt(location, "package metadata", e))
}

fn metadata_row(location: &str, metadata: &PackageMetadata) -> QResult<String> {
    encoding::encode_metadata(metadata).map_err(|e| corrupt(location, "package metadata", e))
}

pub(crate) fn parse_time(location: &str, text: &str) -> QResult<OffsetDateTime> {
    encoding::parse_time(text).map_err(|e| corrupt(location, "timestamp", e))
}

pub(crate) use encoding::format_time;

fn parse_day(location: &str, text: &str) -> QResult<Date> {
    encoding::parse_day(text).map_err(|e| corrupt(location, "download day", e))
}

fn yank_info(
    location: &str,
    reason: Option<String>,
    at: Option<String>,
) -> QResult<Option<YankInfo>> {
    match (reason, at) {
        (Some(reason), Some(at)) => Ok(Some(YankInfo::new(reason, parse_time(location, &at)?))),
        _ => Ok(None),
    }
}

fn append_event(tx: &Transaction<'_>, location: &str, kind: &EventKind) -> QResult<()> {
    let json = encoding::encode_event(kind).map_err(|e| corrupt(location, "event", e))?;
    tx.prepare_cached("INSERT INTO events (at, kind) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![format_time(OffsetDateTime::now_utc()), json]))
        .at(location)?;
    Ok(())
}

/// Inserts one version and its `Registered` event inside `tx`.
pub(crate) fn insert_version(
    tx: &Transaction<'_>,
    location: &str,
    metadata: &PackageMetadata,
) -> QResult<PackageId> {
    let json = metadata_row(location, metadata)?;
    tx.prepare_cached("INSERT INTO packages (key) VALUES (?1) ON CONFLICT (key) DO NOTHING")
        .and_then(|mut s| s.execute(params![metadata.id.package().canonical()]))
        .at(location)?;
    let package_id: i64 = tx
        .prepare_cached("SELECT id FROM packages WHERE key = ?1")
        .and_then(|mut s| s.query_row(params![metadata.id.package().canonical()], |r| r.get(0)))
        .at(location)?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO versions (package_id, id_key, version, metadata) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| {
            s.execute(params![
                package_id,
                metadata.id.canonical(),
                metadata.id.version.to_string(),
                json
            ])
        });
    match inserted {
        Ok(_) => {}
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
            let existing: Option<String> = tx
                .prepare_cached(
                    "SELECT json_extract(metadata, '$.id') FROM versions WHERE id_key = ?1",
                )
                .and_then(|mut s| {
                    s.query_row(params![metadata.id.canonical()], |r| r.get(0))
                        .optional()
                })
                .at(location)?;
            return Err(Error::already_exists(format!(
                "package {} (registered as {})",
                metadata.id,
                existing.unwrap_or_else(|| metadata.id.to_string())
            ))
            .into());
        }
        Err(e) => return Err(e).at(location),
    }
    let version_id = tx.last_insert_rowid();
    for author in &metadata.authors {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO version_authors (version_id, author) VALUES (?1, ?2)",
        )
        .and_then(|mut s| s.execute(params![version_id, author]))
        .at(location)?;
    }
    append_event(
        tx,
        location,
        &EventKind::Registered {
            id: metadata.id.clone(),
            checksum: metadata.checksum.clone(),
        },
    )?;
    Ok(metadata.id.clone())
}

fn not_found(id: &PackageId) -> QueryError {
    Error::not_found(format!("package {id}")).into()
}

pub(crate) fn get(conn: &Connection, location: &str, id: &PackageId) -> QResult<PackageMetadata> {
    let json: Option<String> = conn
        .prepare_cached("SELECT metadata FROM versions WHERE id_key = ?1")
        .and_then(|mut s| {
            s.query_row(params![id.canonical()], |r| r.get(0))
                .optional()
        })
        .at(location)?;
    match json {
        Some(json) => parse_metadata(location, &json),
        None => Err(not_found(id)),
    }
}

pub(crate) fn version_states(
    conn: &Connection,
    location: &str,
    package: &PackageRef,
) -> QResult<Vec<VersionState>> {
    let mut statement = conn
        .prepare_cached(
            "SELECT v.version, v.yank_reason, v.yanked_at FROM versions v
             JOIN packages p ON p.id = v.package_id WHERE p.key = ?1",
        )
        .at(location)?;
    let rows = statement
        .query_map(params![package.canonical()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .at(location)?;
    let mut states = Vec::new();
    for row in rows {
        let (version, reason, at) = row.at(location)?;
        let version = Version::parse(&version).map_err(|e| corrupt(location, "version", e))?;
        states.push(VersionState::new(version, yank_info(location, reason, at)?));
    }
    if states.is_empty() {
        return Err(Error::not_found(format!("package {package}")).into());
    }
    states.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(states)
}

/// `limit`/`offset` as SQLite integers (`usize::MAX` means "no limit").
fn sql_int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn record(location: &str, row: &Row<'_>) -> QResult<PackageRecord> {
    let json: String = row.get(0).at(location)?;
    Ok(PackageRecord::new(parse_metadata(location, &json)?)
        .with_yank(yank_info(
            location,
            row.get(1).at(location)?,
            row.get(2).at(location)?,
        )?)
        .with_downloads(row.get::<_, i64>(3).at(location)?.max(0) as u64))
}

pub(crate) fn list(
    conn: &Connection,
    location: &str,
    author: Option<&str>,
    limit: usize,
    offset: usize,
) -> QResult<Vec<PackageRecord>> {
    let sql = match author {
        None => {
            "SELECT v.metadata, v.yank_reason, v.yanked_at, p.downloads FROM versions v
             JOIN packages p ON p.id = v.package_id
             ORDER BY v.id LIMIT ?1 OFFSET ?2"
        }
        Some(_) => {
            "SELECT v.metadata, v.yank_reason, v.yanked_at, p.downloads FROM version_authors a
             JOIN versions v ON v.id = a.version_id JOIN packages p ON p.id = v.package_id
             WHERE a.author = ?3 ORDER BY v.id LIMIT ?1 OFFSET ?2"
        }
    };
    let mut statement = conn.prepare_cached(sql).at(location)?;
    let mut rows = match author {
        None => statement.query(params![sql_int(limit), sql_int(offset)]),
        Some(author) => statement.query(params![sql_int(limit), sql_int(offset), author]),
    }
    .at(location)?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().at(location)? {
        records.push(record(location, row)?);
    }
    Ok(records)
}

/// The row id, stored metadata and yank reason of a version, or `NotFound`.
fn find(
    tx: &Connection,
    location: &str,
    id: &PackageId,
) -> QResult<(i64, i64, String, Option<String>)> {
    tx.prepare_cached(
        "SELECT id, package_id, metadata, yank_reason FROM versions WHERE id_key = ?1",
    )
    .and_then(|mut s| {
        s.query_row(params![id.canonical()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()
    })
    .at(location)?
    .ok_or_else(|| not_found(id))
}

pub(crate) fn update_metadata(
    tx: &Transaction<'_>,
    location: &str,
    id: &PackageId,
    update: MetadataUpdate,
) -> QResult<PackageMetadata> {
    let (row_id, _, json, _) = find(tx, location, id)?;
    let mut metadata = parse_metadata(location, &json)?;
    if update.is_empty() {
        return Ok(metadata);
    }
    update.apply_to(&mut metadata);
    let json = metadata_row(location, &metadata)?;
    tx.prepare_cached("UPDATE versions SET metadata = ?1 WHERE id = ?2")
        .and_then(|mut s| s.execute(params![json, row_id]))
        .at(location)?;
    append_event(
        tx,
        location,
        &EventKind::MetadataUpdated {
            id: metadata.id.clone(),
            update: Box::new(update),
        },
    )?;
    Ok(metadata)
}

pub(crate) fn set_yank(
    tx: &Transaction<'_>,
    location: &str,
    id: &PackageId,
    reason: Option<&str>,
) -> QResult<()> {
    let (row_id, _, json, current) = find(tx, location, id)?;
    if current.is_some() == reason.is_some() {
        return Ok(());
    }
    let stored = parse_metadata_id(location, &json)?;
    let at = reason.map(|_| format_time(OffsetDateTime::now_utc()));
    tx.prepare_cached("UPDATE versions SET yank_reason = ?1, yanked_at = ?2 WHERE id = ?3")
        .and_then(|mut s| s.execute(params![reason, at, row_id]))
        .at(location)?;
    let kind = match reason {
        Some(reason) => EventKind::Yanked {
            id: stored,
            reason: reason.to_owned(),
        },
        None => EventKind::Unyanked { id: stored },
    };
    append_event(tx, location, &kind)
}

pub(crate) fn is_yanked(conn: &Connection, location: &str, id: &PackageId) -> QResult<bool> {
    conn.prepare_cached("SELECT yank_reason IS NOT NULL FROM versions WHERE id_key = ?1")
        .and_then(|mut s| {
            s.query_row(params![id.canonical()], |r| r.get(0))
                .optional()
        })
        .at(location)?
        .ok_or_else(|| not_found(id))
}

pub(crate) fn record_download(
    tx: &Transaction<'_>,
    location: &str,
    id: &PackageId,
    today: Date,
) -> QResult<()> {
    let (row_id, package_id, _, _) = find(tx, location, id)?;
    tx.prepare_cached(
        "INSERT INTO downloads (version_id, day, count) VALUES (?1, ?2, 1)
         ON CONFLICT (version_id, day) DO UPDATE SET count = count + 1",
    )
    .and_then(|mut s| s.execute(params![row_id, encoding::format_day(today)]))
    .at(location)?;
    tx.prepare_cached(
        "UPDATE packages SET downloads = downloads + 1,
             download_stamp = (SELECT MAX(download_stamp) FROM packages) + 1
         WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![package_id]))
    .at(location)?;
    Ok(())
}

/// Packages downloaded after stamp `after`, by stamp (keyset paging on the stamp index).
pub(crate) fn downloads_since(
    conn: &Connection,
    location: &str,
    after: u64,
    limit: usize,
) -> QResult<Vec<DownloadCount>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, downloads, download_stamp FROM packages
             WHERE download_stamp > ?1 ORDER BY download_stamp LIMIT ?2",
        )
        .at(location)?;
    let rows = stmt
        .query_map(
            params![i64::try_from(after).unwrap_or(i64::MAX), sql_int(limit)],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            },
        )
        .at(location)?;
    let mut counts = Vec::new();
    for row in rows {
        let (key, total, stamp) = row.at(location)?;
        let package: PackageRef = key
            .parse()
            .map_err(|e| corrupt(location, "package key", e))?;
        counts.push(DownloadCount::new(
            package,
            total.max(0) as u64,
            stamp.max(0) as u64,
        ));
    }
    Ok(counts)
}

pub(crate) fn stats(
    conn: &Connection,
    location: &str,
    id: &PackageId,
    today: Date,
) -> QResult<PackageStats> {
    let (row_id, package_id, json, _) = find(conn, location, id)?;
    let stored = parse_metadata_id(location, &json)?;
    let mut per_version = BTreeMap::new();
    let mut version_downloads = 0;
    {
        let mut statement = conn
            .prepare_cached(
                "SELECT v.id, v.version, COALESCE((SELECT SUM(d.count) FROM downloads d WHERE d.version_id = v.id), 0)
                 FROM versions v WHERE v.package_id = ?1",
            )
            .at(location)?;
        let rows = statement
            .query_map(params![package_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .at(location)?;
        for row in rows {
            let (vid, version, count) = row.at(location)?;
            let count = count.max(0) as u64;
            if vid == row_id {
                version_downloads = count;
            }
            let version = Version::parse(&version).map_err(|e| corrupt(location, "version", e))?;
            per_version.insert(version, count);
        }
    }
    let first_day = today
        .checked_sub(marketplace_core::time::Duration::days(29))
        .unwrap_or(today);
    let mut by_day = BTreeMap::new();
    let mut statement = conn
        .prepare_cached(
            "SELECT d.day, SUM(d.count) FROM downloads d JOIN versions v ON v.id = d.version_id
             WHERE v.package_id = ?1 AND d.day >= ?2 GROUP BY d.day",
        )
        .at(location)?;
    let rows = statement
        .query_map(params![package_id, encoding::format_day(first_day)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .at(location)?;
    for row in rows {
        let (day, count) = row.at(location)?;
        by_day.insert(parse_day(location, &day)?, count.max(0) as u64);
    }
    Ok(PackageStats::new(
        stored,
        version_downloads,
        per_version.values().sum(),
        per_version,
        last_30_days(&by_day, today),
    ))
}

pub(crate) fn events_since(
    conn: &Connection,
    location: &str,
    after: u64,
    limit: usize,
) -> QResult<Vec<RegistryEvent>> {
    let mut statement = conn
        .prepare_cached("SELECT seq, at, kind FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .at(location)?;
    let rows = statement
        .query_map(
            params![i64::try_from(after).unwrap_or(i64::MAX), sql_int(limit)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .at(location)?;
    let mut events = Vec::new();
    for row in rows {
        let (seq, at, kind) = row.at(location)?;
        events.push(RegistryEvent::new(
            seq.max(0) as u64,
            parse_time(location, &at)?,
            encoding::decode_event(&kind).map_err(|e| corrupt(location, "event", e))?,
        ));
    }
    Ok(events)
}

/// The `seq` of the newest event (0 for an empty log).
pub(crate) fn latest_event_seq(conn: &Connection, location: &str) -> QResult<u64> {
    let seq: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .at(location)?;
    Ok(seq.max(0) as u64)
}
