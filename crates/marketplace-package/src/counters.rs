//! Process-wide counts of the passes this crate makes over archive bytes (feature `counters`).
//!
//! Tests use them to prove that a flow decompresses and hashes each archive once: read the
//! counts, run the flow, read them again. The counts are shared by every thread of the process,
//! so such a test must be the only one running in its test binary. Not a stable API.

use std::sync::atomic::{AtomicU64, Ordering};

static DECOMPRESSIONS: AtomicU64 = AtomicU64::new(0);
static HASHES: AtomicU64 = AtomicU64::new(0);

/// How many times an archive was decompressed (inspected, staged or extracted) so far.
pub fn decompressions() -> u64 {
    DECOMPRESSIONS.load(Ordering::SeqCst)
}

/// How many times a whole archive was hashed so far.
pub fn hashes() -> u64 {
    HASHES.load(Ordering::SeqCst)
}

pub(crate) fn decompressed() {
    DECOMPRESSIONS.fetch_add(1, Ordering::SeqCst);
}

pub(crate) fn hashed() {
    HASHES.fetch_add(1, Ordering::SeqCst);
}
