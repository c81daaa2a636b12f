//! How transfers go, for whoever shows it: [`Progress`] is told of every archive download and
//! upload and of each chunk that arrives or leaves (a terminal's progress bar, a log line).

use std::sync::Arc;

/// Which way a transfer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// An archive from the server.
    Download,
    /// An archive to the server (a publish).
    Upload,
}

/// Told of transfers as they happen ([`crate::RemoteOptions::with_progress`]). Called from the
/// transfers' tasks, so it must be cheap and never block.
pub trait Progress: Send + Sync {
    /// A transfer began: `label` names what moves (a version, or an archive's hash), `total`
    /// is its size when known. What it returns is told each chunk, and dropped when the
    /// transfer ends (complete or not).
    fn begin(&self, direction: Direction, label: &str, total: Option<u64>) -> Box<dyn Transfer>;
}

/// One transfer under way (see [`Progress::begin`]); dropped when it ends.
pub trait Transfer: Send {
    /// `bytes` more arrived or left.
    fn advance(&mut self, bytes: u64);
}

/// The transfer of a `Progress`, or nothing when there is none.
pub(crate) fn begin(
    progress: Option<&Arc<dyn Progress>>,
    direction: Direction,
    label: &str,
    total: Option<u64>,
) -> Option<Box<dyn Transfer>> {
    progress.map(|p| p.begin(direction, label, total))
}
