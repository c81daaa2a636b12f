//! The statements behind each `Registry` method, as async functions on a client or a
//! transaction. Every statement is prepared once per connection (deadpool's statement cache).

use std::collections::{BTreeMap, HashMap};

use deadpool_postgres::GenericClient;
use marketplace_core::semver::Version;
use marketplace_core::time::{Date, OffsetDateTime};
use marketplace_core::{
    DownloadCount, Error, EventKind, MetadataUpdate, PackageId, PackageMetadata, PackageRecord,
    PackageRef, PackageStats, RegistryEvent, VersionState, YankInfo, last_30_days,
};
use marketplace_registry_encoding as encoding;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::PgError;

/// Errors of one statement: either the contract's own (`NotFound`, `AlreadyExists`) or a
/// database failure to be wrapped with context.
pub(crate) enum QueryError {
    Contract(Error),
    Db(PgError),
}

impl From<Error> for QueryError {
    fn from(e: Error) -> Self {
        QueryError::Contract(e)
    }
}

impl From<PgError> for QueryError {
    fn from(e: PgError) -> Self {
        QueryError::Db(e)
    }
}

pub(crate) type QResult<T> = Result<T, QueryError>;

/// Adds the database location to driver errors.
pub(crate) trait At<T> {
    fn at(self, location: &str) -> QResult<T>;
}

impl<T> At<T> for Result<T, tokio_postgres::Error> {
    fn at(self, location: &str) -> QResult<T> {
        self.map_err(|e| QueryError::Db(PgError::postgres(location, &e)))
    }
}

pub(crate) fn corrupt(location: &str, what: &str, reason: impl ToString) -> QueryError {
    QueryError::Db(PgError::Corrupt {
        location: location.to_owned(),
        what: what.to_owned(),
        reason: reason.to_string(),
    })
}

/// Runs `sql` (prepared once per connection) and returns its rows.
pub(crate) async fn rows(
    client: &impl GenericClient,
    location: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> QResult<Vec<Row>> {
    let statement = client.prepare_cached(sql).await.at(location)?;
    client.query(&statement, params).await.at(location)
}

/// Runs `sql` (prepared once per connection) and returns its row, if any.
pub(crate) async fn row(
    client: &impl GenericClient,
    location: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> QResult<Option<Row>> {
    let statement = client.prepare_cached(sql).await.at(location)?;
    client.query_opt(&statement, params).await.at(location)
}

/// Runs `sql` (prepared once per connection) and returns how many rows it changed.
pub(crate) async fn execute(
    client: &impl GenericClient,
    location: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> QResult<u64> {
    let statement = client.prepare_cached(sql).await.at(location)?;
    client.execute(&statement, params).await.at(location)
}

/// A column of `row`, or a `Corrupt` error naming it.
pub(crate) fn column<'r, T: tokio_postgres::types::FromSql<'r>>(
    location: &str,
    row: &'r Row,
    index: usize,
) -> QResult<T> {
    row.try_get(index)
        .map_err(|e| corrupt(location, &format!("column {index}"), e))
}

pub(crate) fn parse_metadata(location: &str, json: &str) -> QResult<PackageMetadata> {
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

/// `limit`/`offset` as PostgreSQL bigints (`usize::MAX` means "no limit").
fn sql_int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn sql_u64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn not_found(id: &PackageId) -> QueryError {
    Error::not_found(format!("package {id}")).into()
}

/// Takes the event log's lock: every mutation takes it first, so writers on all connections
/// and in all processes are serialised here, hand out event numbers in commit order and never
/// wait for each other in a cycle. Held until the transaction ends.
pub(crate) async fn lock_log(tx: &impl GenericClient, location: &str) -> QResult<()> {
    row(
        tx,
        location,
        "SELECT value FROM counters WHERE name = 'event' FOR UPDATE",
        &[],
    )
    .await?;
    Ok(())
}

/// Takes `n` numbers from counter `name` (whose lock this transaction holds or takes now) and
/// returns the first: the numbers are `first .. first + n`. A rollback gives them back.
async fn take_numbers(
    tx: &impl GenericClient,
    location: &str,
    name: &str,
    n: usize,
) -> QResult<i64> {
    let n = sql_int(n);
    let last = row(
        tx,
        location,
        "UPDATE counters SET value = value + $2 WHERE name = $1 RETURNING value",
        &[&name, &n],
    )
    .await?
    .ok_or_else(|| corrupt(location, "counters", format!("no counter {name:?}")))?;
    Ok(column::<i64>(location, &last, 0)? - n + 1)
}

/// Appends `kinds` to the event log (whose lock this transaction holds), numbered on.
async fn append_events(
    tx: &impl GenericClient,
    location: &str,
    kinds: &[EventKind],
) -> QResult<()> {
    let first = take_numbers(tx, location, "event", kinds.len()).await?;
    let seqs: Vec<i64> = (first..).take(kinds.len()).collect();
    let at = format_time(OffsetDateTime::now_utc());
    let ats = vec![at; kinds.len()];
    let rows = kinds
        .iter()
        .map(|kind| encoding::encode_event(kind).map_err(|e| corrupt(location, "event", e)))
        .collect::<QResult<Vec<String>>>()?;
    execute(
        tx,
        location,
        "INSERT INTO events (seq, at, kind)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])",
        &[&seqs, &ats, &rows],
    )
    .await?;
    Ok(())
}

/// The stored rows of `items`' metadata, in order.
pub(crate) fn encode_rows(location: &str, items: &[PackageMetadata]) -> QResult<Vec<String>> {
    items.iter().map(|m| metadata_row(location, m)).collect()
}

/// Registers `items` (validated, distinct) and their `Registered` events inside `tx`, in a
/// handful of set-based statements whatever the batch's size. `rows` yields their stored
/// metadata rows ([`encode_rows`]), awaited only once the first statements are done, so a big
/// batch is encoded on another thread meanwhile. `AlreadyExists` names the first version that
/// is registered already.
pub(crate) async fn insert_versions(
    tx: &impl GenericClient,
    location: &str,
    items: &[PackageMetadata],
    rows_of: impl Future<Output = QResult<Vec<String>>>,
) -> QResult<Vec<PackageId>> {
    lock_log(tx, location).await?;
    let keys: Vec<String> = items.iter().map(|m| m.id.canonical()).collect();
    let existing = rows(
        tx,
        location,
        "SELECT id_key, metadata FROM versions WHERE id_key = ANY($1)",
        &[&keys],
    )
    .await?;
    if !existing.is_empty() {
        let mut stored: HashMap<String, String> = HashMap::new();
        for found in &existing {
            stored.insert(column(location, found, 0)?, column(location, found, 1)?);
        }
        let (asked, json) = items
            .iter()
            .find_map(|m| stored.get(&m.id.canonical()).map(|json| (m, json)))
            .ok_or_else(|| corrupt(location, "versions", "an id key without its version"))?;
        let registered = parse_metadata_id(location, json)?;
        return Err(Error::already_exists(format!(
            "package {} (registered as {registered})",
            asked.id
        ))
        .into());
    }

    let package_keys: Vec<String> = items.iter().map(|m| m.id.package().canonical()).collect();
    execute(
        tx,
        location,
        "INSERT INTO packages (key) SELECT DISTINCT unnest($1::text[]) ON CONFLICT (key) DO NOTHING",
        &[&package_keys],
    )
    .await?;
    let mut package_ids: HashMap<String, i64> = HashMap::new();
    for found in rows(
        tx,
        location,
        "SELECT key, id FROM packages WHERE key = ANY($1)",
        &[&package_keys],
    )
    .await?
    {
        package_ids.insert(column(location, &found, 0)?, column(location, &found, 1)?);
    }

    let first = take_numbers(tx, location, "version", items.len()).await?;
    let ords: Vec<i64> = (first..).take(items.len()).collect();
    let mut packages = Vec::with_capacity(items.len());
    for key in &package_keys {
        packages.push(
            *package_ids
                .get(key)
                .ok_or_else(|| corrupt(location, "packages", format!("{key} not inserted")))?,
        );
    }
    let versions: Vec<String> = items.iter().map(|m| m.id.version.to_string()).collect();
    // Four independent writes, pipelined on the connection: each is prepared here while the
    // server runs the one before (the server still runs them in this order, in this
    // transaction).
    let versions_written = async {
        let json = rows_of.await?;
        execute(
            tx,
            location,
            "INSERT INTO versions (ord, package_id, id_key, version, metadata)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[])",
            &[&ords, &packages, &keys, &versions, &json],
        )
        .await
    };
    let events = async {
        let events: Vec<EventKind> = items
            .iter()
            .map(|m| EventKind::Registered {
                id: m.id.clone(),
                checksum: m.checksum.clone(),
            })
            .collect();
        append_events(tx, location, &events).await
    };
    futures_util::future::try_join4(
        versions_written,
        insert_authors(tx, location, items, &ords),
        insert_dependencies(tx, location, items, &ords),
        events,
    )
    .await?;
    Ok(items.iter().map(|m| m.id.clone()).collect())
}

/// The packages each version depends on, each once: the edges the resolution prefetch walks.
async fn insert_dependencies(
    tx: &impl GenericClient,
    location: &str,
    items: &[PackageMetadata],
    ords: &[i64],
) -> QResult<()> {
    let (mut from, mut to) = (Vec::new(), Vec::new());
    for (metadata, ord) in items.iter().zip(ords) {
        let mut packages: Vec<String> = metadata
            .all_dependencies()
            .map(|(package, _)| package.canonical())
            .collect();
        packages.sort_unstable();
        packages.dedup();
        for package in packages {
            from.push(*ord);
            to.push(package);
        }
    }
    if from.is_empty() {
        return Ok(());
    }
    execute(
        tx,
        location,
        "INSERT INTO dependencies (version_ord, package_key)
         SELECT * FROM unnest($1::bigint[], $2::text[])",
        &[&from, &to],
    )
    .await?;
    Ok(())
}

/// Numbers each version among its authors' versions (each author's own gap-free count).
async fn insert_authors(
    tx: &impl GenericClient,
    location: &str,
    items: &[PackageMetadata],
    ords: &[i64],
) -> QResult<()> {
    // Each version once per author, in registration order.
    let mut pairs: Vec<(&str, i64)> = Vec::new();
    let mut per_author: BTreeMap<&str, i64> = BTreeMap::new();
    for (metadata, ord) in items.iter().zip(ords) {
        let mut mine: Vec<&str> = metadata.authors.iter().map(String::as_str).collect();
        mine.sort_unstable();
        mine.dedup();
        for author in mine {
            pairs.push((author, *ord));
            *per_author.entry(author).or_default() += 1;
        }
    }
    if pairs.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = per_author.keys().copied().collect();
    let counts: Vec<i64> = per_author.values().copied().collect();
    let mut next: HashMap<String, i64> = HashMap::new();
    for counted in rows(
        tx,
        location,
        "INSERT INTO authors (author, versions) SELECT * FROM unnest($1::text[], $2::bigint[])
         ON CONFLICT (author) DO UPDATE SET versions = authors.versions + EXCLUDED.versions
         RETURNING author, versions",
        &[&names, &counts],
    )
    .await?
    {
        let author: String = column(location, &counted, 0)?;
        let last: i64 = column(location, &counted, 1)?;
        let added = per_author.get(author.as_str()).copied().unwrap_or(0);
        next.insert(author, last - added + 1);
    }
    let mut authors = Vec::with_capacity(pairs.len());
    let mut author_ords = Vec::with_capacity(pairs.len());
    let mut version_ords = Vec::with_capacity(pairs.len());
    for (author, ord) in pairs {
        let position = next
            .get_mut(author)
            .ok_or_else(|| corrupt(location, "authors", format!("{author} not counted")))?;
        authors.push(author);
        author_ords.push(*position);
        version_ords.push(ord);
        *position += 1;
    }
    execute(
        tx,
        location,
        "INSERT INTO version_authors (author, ord, version_ord)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])",
        &[&authors, &author_ords, &version_ords],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get(
    client: &impl GenericClient,
    location: &str,
    id: &PackageId,
) -> QResult<PackageMetadata> {
    let found = row(
        client,
        location,
        "SELECT metadata FROM versions WHERE id_key = $1",
        &[&id.canonical()],
    )
    .await?;
    match found {
        Some(found) => parse_metadata(location, &column::<String>(location, &found, 0)?),
        None => Err(not_found(id)),
    }
}

/// The metadata of every version of `ids` that exists, keyed by canonical id, in one query.
pub(crate) async fn get_many(
    client: &impl GenericClient,
    location: &str,
    ids: &[String],
) -> QResult<HashMap<String, PackageMetadata>> {
    let mut found = HashMap::new();
    for version in rows(
        client,
        location,
        "SELECT id_key, metadata FROM versions WHERE id_key = ANY($1)",
        &[&ids],
    )
    .await?
    {
        let json: String = column(location, &version, 1)?;
        found.insert(
            column(location, &version, 0)?,
            parse_metadata(location, &json)?,
        );
    }
    Ok(found)
}

fn states_from(location: &str, rows: &[Row], from: usize) -> QResult<Vec<VersionState>> {
    let mut states = Vec::with_capacity(rows.len());
    for row in rows {
        let version: String = column(location, row, from)?;
        let version = Version::parse(&version).map_err(|e| corrupt(location, "version", e))?;
        let yanked = yank_info(
            location,
            column(location, row, from + 1)?,
            column(location, row, from + 2)?,
        )?;
        states.push(VersionState::new(version, yanked));
    }
    states.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(states)
}

pub(crate) async fn version_states(
    client: &impl GenericClient,
    location: &str,
    package: &PackageRef,
) -> QResult<Vec<VersionState>> {
    let found = rows(
        client,
        location,
        "SELECT v.version, v.yank_reason, v.yanked_at FROM versions v
         JOIN packages p ON p.id = v.package_id WHERE p.key = $1",
        &[&package.canonical()],
    )
    .await?;
    if found.is_empty() {
        return Err(Error::not_found(format!("package {package}")).into());
    }
    states_from(location, &found, 0)
}

/// Every version (state and metadata) of every package reachable from `root` through the
/// dependency edges of any version, in one recursive query; `None` when there are more than
/// `cap` (a graph so wide that fetching all of it would cost more than it saves).
pub(crate) async fn reachable(
    client: &impl GenericClient,
    location: &str,
    root: &PackageId,
    cap: usize,
) -> QResult<Option<Reachable>> {
    let found = rows(
        client,
        location,
        "WITH RECURSIVE reach (package_id) AS (
             SELECT package_id FROM versions WHERE id_key = $1
             UNION
             SELECT p.id FROM reach r
             JOIN versions v ON v.package_id = r.package_id
             JOIN dependencies d ON d.version_ord = v.ord
             JOIN packages p ON p.key = d.package_key
         )
         SELECT p.key, v.version, v.yank_reason, v.yanked_at, v.id_key, v.metadata
         FROM reach r JOIN packages p ON p.id = r.package_id
         JOIN versions v ON v.package_id = r.package_id
         LIMIT $2",
        &[&root.canonical(), &sql_int(cap.saturating_add(1))],
    )
    .await?;
    if found.len() > cap {
        return Ok(None);
    }
    let mut reached = Reachable::default();
    let mut by_package: HashMap<String, Vec<Row>> = HashMap::new();
    for version in found {
        // Kept as stored: the resolver reads the metadata of about one version in three, and
        // only those are parsed.
        reached.metadata.insert(
            column(location, &version, 4)?,
            column(location, &version, 5)?,
        );
        let key: String = column(location, &version, 0)?;
        by_package.entry(key).or_default().push(version);
    }
    for (key, rows) in by_package {
        reached.states.insert(key, states_from(location, &rows, 1)?);
    }
    Ok(Some(reached))
}

/// What [`reachable`] read: version states by package key, stored metadata rows (not yet
/// parsed: see [`parse_metadata`]) by id key.
#[derive(Default)]
pub(crate) struct Reachable {
    pub(crate) states: HashMap<String, Vec<VersionState>>,
    pub(crate) metadata: HashMap<String, String>,
}

/// The version states of every package of `packages` (canonical keys) that exists, in one
/// query.
pub(crate) async fn version_states_many(
    client: &impl GenericClient,
    location: &str,
    packages: &[String],
) -> QResult<HashMap<String, Vec<VersionState>>> {
    let found = rows(
        client,
        location,
        "SELECT p.key, v.version, v.yank_reason, v.yanked_at FROM versions v
         JOIN packages p ON p.id = v.package_id WHERE p.key = ANY($1)",
        &[&packages],
    )
    .await?;
    let mut by_package: HashMap<String, Vec<Row>> = HashMap::new();
    for version in found {
        let key: String = column(location, &version, 0)?;
        by_package.entry(key).or_default().push(version);
    }
    by_package
        .into_iter()
        .map(|(key, rows)| Ok((key, states_from(location, &rows, 1)?)))
        .collect()
}

fn record(location: &str, row: &Row) -> QResult<PackageRecord> {
    let json: String = column(location, row, 0)?;
    Ok(PackageRecord::new(parse_metadata(location, &json)?)
        .with_yank(yank_info(
            location,
            column(location, row, 1)?,
            column(location, row, 2)?,
        )?)
        .with_downloads(column::<i64>(location, row, 3)?.max(0) as u64))
}

/// A page of versions in registration order (or of `author`'s, in the order they were
/// registered). Registration numbers have no gaps and rows are never deleted, so offset `n`
/// is the keyset `ord > n`: a page costs the same at the end as at the start.
pub(crate) async fn list(
    client: &impl GenericClient,
    location: &str,
    author: Option<&str>,
    limit: usize,
    offset: usize,
) -> QResult<Vec<PackageRecord>> {
    let (after, limit) = (sql_int(offset), sql_int(limit));
    let found = match author {
        None => {
            rows(
                client,
                location,
                "SELECT v.metadata, v.yank_reason, v.yanked_at, p.downloads FROM versions v
                 JOIN packages p ON p.id = v.package_id
                 WHERE v.ord > $1 ORDER BY v.ord LIMIT $2",
                &[&after, &limit],
            )
            .await?
        }
        Some(author) => {
            rows(
                client,
                location,
                "SELECT v.metadata, v.yank_reason, v.yanked_at, p.downloads
                 FROM version_authors a JOIN versions v ON v.ord = a.version_ord
                 JOIN packages p ON p.id = v.package_id
                 WHERE a.author = $3 AND a.ord > $1 ORDER BY a.ord LIMIT $2",
                &[&after, &limit, &author],
            )
            .await?
        }
    };
    found.iter().map(|row| record(location, row)).collect()
}

/// A version's registration number, package row, stored metadata and yank reason, or
/// `NotFound`.
struct Found {
    ord: i64,
    package_id: i64,
    metadata: String,
    yank_reason: Option<String>,
}

async fn find(client: &impl GenericClient, location: &str, id: &PackageId) -> QResult<Found> {
    let found = row(
        client,
        location,
        "SELECT ord, package_id, metadata, yank_reason FROM versions WHERE id_key = $1",
        &[&id.canonical()],
    )
    .await?
    .ok_or_else(|| not_found(id))?;
    Ok(Found {
        ord: column(location, &found, 0)?,
        package_id: column(location, &found, 1)?,
        metadata: column(location, &found, 2)?,
        yank_reason: column(location, &found, 3)?,
    })
}

pub(crate) async fn update_metadata(
    tx: &impl GenericClient,
    location: &str,
    id: &PackageId,
    update: MetadataUpdate,
) -> QResult<PackageMetadata> {
    lock_log(tx, location).await?;
    let found = find(tx, location, id).await?;
    let mut metadata = parse_metadata(location, &found.metadata)?;
    if update.is_empty() {
        return Ok(metadata);
    }
    update.apply_to(&mut metadata);
    let json = metadata_row(location, &metadata)?;
    execute(
        tx,
        location,
        "UPDATE versions SET metadata = $1 WHERE ord = $2",
        &[&json, &found.ord],
    )
    .await?;
    let kind = EventKind::MetadataUpdated {
        id: metadata.id.clone(),
        update: Box::new(update),
    };
    append_events(tx, location, &[kind]).await?;
    Ok(metadata)
}

pub(crate) async fn set_yank(
    tx: &impl GenericClient,
    location: &str,
    id: &PackageId,
    reason: Option<&str>,
) -> QResult<()> {
    lock_log(tx, location).await?;
    let found = find(tx, location, id).await?;
    if found.yank_reason.is_some() == reason.is_some() {
        return Ok(());
    }
    let stored = parse_metadata_id(location, &found.metadata)?;
    let at = reason.map(|_| format_time(OffsetDateTime::now_utc()));
    execute(
        tx,
        location,
        "UPDATE versions SET yank_reason = $1, yanked_at = $2 WHERE ord = $3",
        &[&reason, &at, &found.ord],
    )
    .await?;
    let kind = match reason {
        Some(reason) => EventKind::Yanked {
            id: stored,
            reason: reason.to_owned(),
        },
        None => EventKind::Unyanked { id: stored },
    };
    append_events(tx, location, &[kind]).await
}

pub(crate) async fn is_yanked(
    client: &impl GenericClient,
    location: &str,
    id: &PackageId,
) -> QResult<bool> {
    let found = row(
        client,
        location,
        "SELECT yank_reason IS NOT NULL FROM versions WHERE id_key = $1",
        &[&id.canonical()],
    )
    .await?
    .ok_or_else(|| not_found(id))?;
    column(location, &found, 0)
}

/// Counts one download in one statement (so one round trip): the `download` counter hands out
/// the stamp (its row lock orders stamps by commit, so a follower never skips one), the day's
/// row is upserted and the package's total and stamp set. `NotFound` when no version matched.
pub(crate) async fn record_download(
    client: &impl GenericClient,
    location: &str,
    id: &PackageId,
    today: Date,
) -> QResult<()> {
    let counted = row(
        client,
        location,
        "WITH stamp AS (
             UPDATE counters SET value = value + 1 WHERE name = 'download' RETURNING value
         ), found AS (
             SELECT ord, package_id FROM versions WHERE id_key = $1
         ), counted AS (
             INSERT INTO downloads (version_ord, day, count) SELECT ord, $2, 1 FROM found
             ON CONFLICT (version_ord, day) DO UPDATE SET count = downloads.count + 1
             RETURNING version_ord
         )
         UPDATE packages SET downloads = downloads + 1,
             download_stamp = (SELECT value FROM stamp)
         WHERE id = (SELECT package_id FROM found) AND EXISTS (SELECT 1 FROM counted)
         RETURNING id",
        &[&id.canonical(), &encoding::format_day(today)],
    )
    .await?;
    match counted {
        Some(_) => Ok(()),
        None => Err(not_found(id)),
    }
}

/// Packages downloaded after stamp `after`, by stamp (keyset paging on the stamp index).
pub(crate) async fn downloads_since(
    client: &impl GenericClient,
    location: &str,
    after: u64,
    limit: usize,
) -> QResult<Vec<DownloadCount>> {
    let found = rows(
        client,
        location,
        "SELECT key, downloads, download_stamp FROM packages
         WHERE download_stamp > $1 ORDER BY download_stamp LIMIT $2",
        &[&sql_u64(after), &sql_int(limit)],
    )
    .await?;
    let mut counts = Vec::with_capacity(found.len());
    for counted in &found {
        let key: String = column(location, counted, 0)?;
        let package: PackageRef = key
            .parse()
            .map_err(|e| corrupt(location, "package key", e))?;
        counts.push(DownloadCount::new(
            package,
            column::<i64>(location, counted, 1)?.max(0) as u64,
            column::<i64>(location, counted, 2)?.max(0) as u64,
        ));
    }
    Ok(counts)
}

pub(crate) async fn stats(
    client: &impl GenericClient,
    location: &str,
    id: &PackageId,
    today: Date,
) -> QResult<PackageStats> {
    let found = find(client, location, id).await?;
    let stored = parse_metadata_id(location, &found.metadata)?;
    let mut per_version = BTreeMap::new();
    let mut version_downloads = 0;
    for counted in rows(
        client,
        location,
        "SELECT v.ord, v.version, COALESCE(SUM(d.count), 0)::bigint FROM versions v
         LEFT JOIN downloads d ON d.version_ord = v.ord
         WHERE v.package_id = $1 GROUP BY v.ord, v.version",
        &[&found.package_id],
    )
    .await?
    {
        let ord: i64 = column(location, &counted, 0)?;
        let version: String = column(location, &counted, 1)?;
        let count = column::<i64>(location, &counted, 2)?.max(0) as u64;
        if ord == found.ord {
            version_downloads = count;
        }
        let version = Version::parse(&version).map_err(|e| corrupt(location, "version", e))?;
        per_version.insert(version, count);
    }
    let first_day = today
        .checked_sub(marketplace_core::time::Duration::days(29))
        .unwrap_or(today);
    let mut by_day = BTreeMap::new();
    for counted in rows(
        client,
        location,
        "SELECT d.day, SUM(d.count)::bigint FROM downloads d
         JOIN versions v ON v.ord = d.version_ord
         WHERE v.package_id = $1 AND d.day >= $2 GROUP BY d.day",
        &[&found.package_id, &encoding::format_day(first_day)],
    )
    .await?
    {
        let day: String = column(location, &counted, 0)?;
        let count = column::<i64>(location, &counted, 1)?.max(0) as u64;
        by_day.insert(parse_day(location, &day)?, count);
    }
    Ok(PackageStats::new(
        stored,
        version_downloads,
        per_version.values().sum(),
        per_version,
        last_30_days(&by_day, today),
    ))
}

pub(crate) async fn events_since(
    client: &impl GenericClient,
    location: &str,
    after: u64,
    limit: usize,
) -> QResult<Vec<RegistryEvent>> {
    let found = rows(
        client,
        location,
        "SELECT seq, at, kind FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[&sql_u64(after), &sql_int(limit)],
    )
    .await?;
    let mut events = Vec::with_capacity(found.len());
    for event in &found {
        let seq: i64 = column(location, event, 0)?;
        let at: String = column(location, event, 1)?;
        let kind: String = column(location, event, 2)?;
        events.push(RegistryEvent::new(
            seq.max(0) as u64,
            parse_time(location, &at)?,
            encoding::decode_event(&kind).map_err(|e| corrupt(location, "event", e))?,
        ));
    }
    Ok(events)
}

/// Whether `versions` holds at least 4,096 rows and twice as many as when the planner last
/// counted them (`pg_class.reltuples`, -1 before the first ANALYZE).
pub(crate) async fn statistics_stale(client: &impl GenericClient, location: &str) -> QResult<bool> {
    let found = row(
        client,
        location,
        "SELECT (SELECT value FROM counters WHERE name = 'version'),
                (SELECT reltuples::bigint FROM pg_class WHERE oid = 'versions'::regclass)",
        &[],
    )
    .await?
    .ok_or_else(|| corrupt(location, "counters", "no version counter"))?;
    let versions: i64 = column(location, &found, 0)?;
    let counted: i64 = column(location, &found, 1)?;
    Ok(versions >= 4_096 && versions >= counted.max(1).saturating_mul(2))
}

/// The `seq` of the newest event (0 for an empty log): the event counter, which commits with
/// the event it numbered.
pub(crate) async fn latest_event_seq(client: &impl GenericClient, location: &str) -> QResult<u64> {
    let found = row(
        client,
        location,
        "SELECT value FROM counters WHERE name = 'event'",
        &[],
    )
    .await?
    .ok_or_else(|| corrupt(location, "counters", "no event counter"))?;
    Ok(column::<i64>(location, &found, 0)?.max(0) as u64)
}
