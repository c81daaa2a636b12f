//! The Marketplace workload harness: the workloads of SPEC §8 and their raw baselines over the
//! shared synthetic corpus, used by the criterion benchmarks and `bench-report`.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The synthetic corpus, shared with the other benchmarks and tests.
pub use marketplace_testing::corpus;
pub mod cargo;
pub mod http;
pub mod postgres;
pub mod workloads;
