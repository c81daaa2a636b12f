//! Content hashes, package ids, package references and requirements: any text parses or is an
//! `Invalid` error, and what parses displays as text that parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use marketplace_core::{ContentHash, PackageId, PackageRef, parse_requirement};

fuzz_target!(|text: &str| {
    if let Ok(hash) = text.parse::<ContentHash>() {
        assert_eq!(hash.to_string().parse::<ContentHash>().ok(), Some(hash));
    }
    if let Ok(id) = text.parse::<PackageId>() {
        assert_eq!(id.to_string().parse::<PackageId>().ok(), Some(id));
    }
    if let Ok(package) = text.parse::<PackageRef>() {
        assert_eq!(package.to_string().parse::<PackageRef>().ok(), Some(package));
    }
    if let Ok(req) = parse_requirement(text) {
        assert_eq!(parse_requirement(&req.to_string()).ok(), Some(req));
    }
});
