//! `--database-url` (and `[registry]` in `mkt serve --config`): the home's registry and
//! accounts in PostgreSQL, shared by every server and home that names the same database. The
//! home keeps its keys, trust store and (unless S3 is chosen) its archives; its search index
//! for that database lives beside its own, in `index-postgres-<id>/`, and follows the
//! database's change feed.

use std::path::Path;
use std::sync::Arc;

use marketplace_client::MarketplaceBuilder;
use marketplace_client::backends::tantivy::TantivySearchEngine;
use marketplace_core::{AccountStore, ContentHash, Registry};

#[cfg(not(feature = "postgres"))]
use crate::exit;
use crate::{CliError, CliResult};

/// A shared registry, opened, and where this home indexes it.
#[derive(Clone)]
pub(crate) struct Database {
    pub(crate) location: String,
    registry: Arc<dyn Registry>,
    accounts: Arc<dyn AccountStore>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Opens the PostgreSQL registry at `url`, or as the `PG*` environment says when `None`.
#[cfg(feature = "postgres")]
pub(crate) async fn open(url: Option<&str>) -> CliResult<Database> {
    use marketplace_client::backends::postgres::PostgresRegistry;
    let opened = match url {
        Some(url) => PostgresRegistry::connect(url).await,
        None => PostgresRegistry::from_env().await,
    };
    let registry = Arc::new(opened.map_err(|e| {
        CliError::from(e).with_hint(
            "check --database-url (MKT_DATABASE_URL, or url under [registry]) or the PG* variables, and that the server is up",
        )
    })?);
    Ok(Database {
        location: registry.location().to_owned(),
        registry: registry.clone(),
        accounts: registry,
    })
}

#[cfg(not(feature = "postgres"))]
pub(crate) async fn open(url: Option<&str>) -> CliResult<Database> {
    Err(CliError {
        code: exit::INVALID,
        message: format!(
            "this mkt was built without PostgreSQL support, so it cannot use the database {}",
            url.unwrap_or("of the PG* environment")
        ),
        hint: Some("build marketplace-cli with its default features (feature `postgres`)".into()),
    })
}

impl Database {
    /// The directory of this database's search index in the home at `root`: named by the
    /// database, so a home pointed at another one never reuses an index of the wrong log.
    fn index_dir(&self, root: &Path) -> std::path::PathBuf {
        let id = ContentHash::sha256(self.location.as_bytes()).to_string();
        let hex = id.rsplit(':').next().unwrap_or(&id);
        root.join(format!("index-postgres-{}", &hex[..12.min(hex.len())]))
    }

    /// `builder` (the home's composition) with this registry, its accounts and its index.
    pub(crate) fn compose(
        &self,
        builder: MarketplaceBuilder,
        root: &Path,
        reading: bool,
    ) -> CliResult<MarketplaceBuilder> {
        let dir = self.index_dir(root);
        let search = if reading {
            // A reader never writes: without an index yet, a copy in memory serves.
            TantivySearchEngine::open_read_only(&dir).or_else(|_| TantivySearchEngine::in_memory())
        } else {
            TantivySearchEngine::open(&dir)
        }
        .map_err(|e| {
            CliError::from(e).with_hint(format!(
                "the search index of {} is derived: remove {} and it is rebuilt",
                self.location,
                dir.display()
            ))
        })?;
        Ok(builder
            .registry(self.registry.clone())
            .accounts(self.accounts.clone())
            .search(Arc::new(search)))
    }
}
