//! The Marketplace workload harness: a deterministic synthetic corpus, the workloads of SPEC §8
//! and their raw baselines, shared by the criterion benchmarks and `bench-report`.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod corpus;
pub mod workloads;
