//! Test support shared by the Marketplace workspace: the S3 test-server harness and the
//! synthetic corpus. Not published, not a stable API.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod corpus;
pub mod mirror;
pub mod postgres;
pub mod real;
pub mod s3;
