//! [`RemoteSearch`]: the core's `SearchEngine` answered by a server's index.

use std::sync::Arc;

use async_trait::async_trait;
use marketplace_core::{
    Facets, IndexStats, PackageId, PackageRecord, PackageRef, Result, SearchEngine, SearchQuery,
    SearchResult,
};
use marketplace_protocol::v1;

use crate::connection::{Connection, version_path};

/// The most hits, names or similar packages the server sends for one request.
const PAGE: usize = 100;

/// The search index of a remote marketplace: search (a limit over one page is read page by
/// page), suggestions, facets and similar packages, over `/api/v1`. What it finds is a list of
/// names; whatever is then installed from it is verified by the client.
///
/// The server keeps its index itself: writes (`index`, `update`, `remove`, `rebuild`,
/// `optimize`) are refused, and `stats` is not served by the API (v1).
#[derive(Clone, Debug)]
pub struct RemoteSearch {
    connection: Arc<Connection>,
}

impl RemoteSearch {
    pub(crate) fn new(connection: Arc<Connection>) -> Self {
        RemoteSearch { connection }
    }
}

fn hits(results: v1::SearchResults) -> Result<Vec<SearchResult>> {
    results
        .hits
        .into_iter()
        .map(SearchResult::try_from)
        .collect()
}

#[async_trait]
impl SearchEngine for RemoteSearch {
    async fn index(&self, record: &PackageRecord) -> Result<()> {
        Err(self
            .connection
            .refused_write(&format!("index {}", record.metadata.id)))
    }

    async fn remove(&self, id: &PackageId) -> Result<()> {
        Err(self
            .connection
            .refused_write(&format!("remove {id} from the index")))
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchResult>> {
        let operation = format!("search for {:?}", query.text);
        let mut found = Vec::new();
        while found.len() < query.limit {
            let mut page = query.clone();
            page.offset = query.offset + found.len();
            page.limit = (query.limit - found.len()).min(PAGE);
            let params = v1::SearchParams::from(&page);
            let results: v1::SearchResults = self
                .connection
                .get_json(&operation, "/search", &params)
                .await?;
            let page_hits = hits(results)?;
            let last = page_hits.len() < page.limit;
            found.extend(page_hits);
            if last {
                break;
            }
        }
        Ok(found)
    }

    async fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<PackageRef>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let params = v1::SuggestParams {
            q: Some(prefix.to_owned()),
            limit: Some(limit.min(PAGE)),
        };
        let body: v1::Suggestions = self
            .connection
            .get_json(
                &format!("suggest names for {prefix:?}"),
                "/suggest",
                &params,
            )
            .await?;
        body.names.iter().map(|name| name.parse()).collect()
    }

    async fn facets(&self, query: &SearchQuery) -> Result<Facets> {
        let mut counted = query.clone();
        // Facets ignore paging; a limit the server accepts.
        counted.limit = PAGE;
        counted.offset = 0;
        let params = v1::SearchParams::from(&counted);
        let body: v1::FacetCounts = self
            .connection
            .get_json(
                &format!("count facets for {:?}", query.text),
                "/facets",
                &params,
            )
            .await?;
        Ok(Facets::from(body))
    }

    async fn similar(&self, id: &PackageId, limit: usize) -> Result<Vec<SearchResult>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let params = v1::LimitParams {
            limit: Some(limit.min(PAGE)),
        };
        let path = format!("{}/similar", version_path(id));
        let results: v1::SearchResults = self
            .connection
            .get_json(&format!("find packages like {id}"), &path, &params)
            .await?;
        hits(results)
    }

    async fn rebuild(
        &self,
        _records: Box<dyn Iterator<Item = PackageRecord> + Send>,
    ) -> Result<u64> {
        Err(self.connection.refused_write("rebuild the index"))
    }

    async fn optimize(&self) -> Result<()> {
        Err(self.connection.refused_write("optimize the index"))
    }

    async fn stats(&self) -> Result<IndexStats> {
        Err(self.connection.not_served("count the indexed packages"))
    }
}
