//! Facet counts for the catalogue's pages, kept until the registry changes.
//!
//! Counting facets visits every package a search matches (a results page reads only the best
//! twenty), so it is most of a search page's cost. The counts depend only on the query's text
//! and filters — not its order or page — and change only when a version is published, yanked,
//! restored or edited, all of which the change feed says: the cache is emptied whenever the
//! feed has moved (read at most every 250 ms, see [`crate::feed`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use marketplace_core::{Facets, Result, SearchQuery};

use crate::AppState;
use crate::cache::{Bounded, Cost};
use crate::feed::Follower;

/// Most bytes of facet counts kept.
const MAX_CACHE_BYTES: usize = 8 * 1024 * 1024;

impl Cost for Facets {
    fn cost(&self) -> usize {
        [&self.categories, &self.keywords, &self.namespaces]
            .iter()
            .flat_map(|list| list.iter())
            .map(|(name, _)| name.len() + 32)
            .sum()
    }
}

/// The facet counts asked for lately, by query.
#[derive(Debug)]
pub(crate) struct FacetCache {
    counts: RwLock<Bounded<Facets>>,
    follower: Follower,
    /// Bumped when the cache is emptied: counts made across that are not kept.
    generation: AtomicU64,
}

impl Default for FacetCache {
    fn default() -> Self {
        FacetCache {
            counts: RwLock::new(Bounded::new(MAX_CACHE_BYTES)),
            follower: Follower::default(),
            generation: AtomicU64::new(0),
        }
    }
}

/// What facet counts depend on: the text and the filters.
fn key(query: &SearchQuery) -> String {
    serde_json::json!([
        query.bounded_text(),
        query.categories,
        query.keywords,
        query.namespace,
        query.min_downloads,
        query.include_yanked,
        query.forgive_short_typos,
    ])
    .to_string()
}

impl FacetCache {
    /// The facet counts of `query`'s matches: kept, or counted by the search engine and kept.
    pub(crate) async fn of(&self, state: &AppState, query: &SearchQuery) -> Result<Arc<Facets>> {
        let mut changed = false;
        self.follower
            .catch_up(state.client.registry(), false, |_| changed = true)
            .await?;
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.counts
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        let key = key(query);
        if let Some(facets) = self
            .counts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(facets);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let facets = Arc::new(state.client.facets(query).await?);
        let mut counts = self.counts.write().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::Acquire) == generation {
            counts.insert(key, Arc::clone(&facets));
        }
        Ok(facets)
    }
}
