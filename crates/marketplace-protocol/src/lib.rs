//! The wire format of the Marketplace HTTP API: versioned types, documented field by field,
//! held to golden JSON fixtures, converted to and from the core's types.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod v1;
