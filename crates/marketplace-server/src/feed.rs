//! Following the registry's change feed, for what the server derives from the registry and
//! keeps in memory (Cargo index files, the catalogue's reverse dependencies): requests read the
//! feed at most every [`FOLLOW_INTERVAL`], and a write this server made reads it at once, so
//! what the server shows holds its own writes before their response returns.

use std::time::{Duration, Instant};

use marketplace_core::{Registry, RegistryEvent, Result};

/// How old a follower's view of the change feed may get before a request reads it again.
pub(crate) const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// Events read per page when catching up.
const FOLLOW_PAGE: usize = 1000;

/// Where a follower stands in the change feed.
#[derive(Debug, Default)]
struct Position {
    /// The newest event applied; `None` until the first catch-up.
    seq: Option<u64>,
    at: Option<Instant>,
}

/// One reader of the change feed.
#[derive(Debug, Default)]
pub(crate) struct Follower {
    position: tokio::sync::Mutex<Position>,
}

impl Follower {
    /// Hands `apply` every event after the last one applied, a page at a time, in order. With
    /// `force`, waits for a catch-up in progress and makes one; otherwise at most one runs,
    /// and only when the last is older than [`FOLLOW_INTERVAL`].
    ///
    /// The first catch-up applies nothing: it starts at the feed's head, for a view built
    /// from the registry as it is (built after this call, so that events it already holds are
    /// applied again, which a view must take as a no-op).
    pub(crate) async fn catch_up(
        &self,
        registry: &dyn Registry,
        force: bool,
        mut apply: impl FnMut(&[RegistryEvent]),
    ) -> Result<()> {
        let mut position = if force {
            self.position.lock().await
        } else {
            match self.position.try_lock() {
                Ok(p) if p.at.is_none_or(|at| at.elapsed() >= FOLLOW_INTERVAL) => p,
                _ => return Ok(()),
            }
        };
        let Some(mut seq) = position.seq else {
            position.seq = Some(registry.latest_event_seq().await?);
            position.at = Some(Instant::now());
            return Ok(());
        };
        loop {
            let events = registry.events_since(seq, FOLLOW_PAGE).await?;
            let Some(last) = events.last() else {
                break;
            };
            seq = last.seq;
            apply(&events);
            if events.len() < FOLLOW_PAGE {
                break;
            }
        }
        position.seq = Some(seq);
        position.at = Some(Instant::now());
        Ok(())
    }
}
