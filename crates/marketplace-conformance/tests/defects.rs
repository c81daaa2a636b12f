//! One-defect backends written as a third party would write them: each is a reference backend
//! behind the kit's [`marketplace_conformance::layer::Layered`] wrapper (or a small backend of
//! its own) with one realistic mistake, and each must fail its suite with the named check. The
//! classes follow what backend authors get wrong: uniform fixtures that hide near-misses,
//! partial updates and clears, contracts only implied (paging, order, exclusivity, limits,
//! pins), corruption below the backend, state across a reopen, signatures without known
//! answers, overridden provided methods, and exposition formats.
//!
//! `broken.rs` holds the first set and the kit's own machinery (timeouts, selection).

#[path = "defects/common.rs"]
mod common;
#[path = "defects/crypto.rs"]
mod crypto;
#[path = "defects/metrics.rs"]
mod metrics;
#[path = "defects/registry.rs"]
mod registry;
#[path = "defects/search.rs"]
mod search;
#[path = "defects/store.rs"]
mod store;
