//! `marketplace.toml` parsing: any text is a manifest or an `Invalid` error, never a panic; a
//! manifest that parses builds metadata that passes the data-model rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use marketplace_core::ContentHash;
use marketplace_package::Manifest;

fuzz_target!(|text: &str| {
    if let Ok(manifest) = Manifest::parse(text) {
        let metadata = manifest.to_metadata(ContentHash::sha256(text.as_bytes()), 0);
        assert!(
            metadata.validate().is_ok(),
            "a parsed manifest built invalid metadata"
        );
    }
});
