//! The canonical signing payload: the bytes a publisher signs and a verifier checks.
//!
//! Layout, version 1 (all integers big-endian; a *string* is a `u32` byte length followed by
//! that many UTF-8 bytes; a *list* is a `u32` count followed by that many strings):
//!
//! | # | field | encoding |
//! |---|-------|----------|
//! | 0 | domain separator | the 31 ASCII bytes `marketplace/signing-payload/v1\n` |
//! | 1 | namespace | string (`""` when there is none) |
//! | 2 | name | string, as spelled |
//! | 3 | version | string, semver text including pre-release and build metadata |
//! | 4 | authors | list, in the order given |
//! | 5 | license | string (`""` when there is none) |
//! | 6 | dependencies | `u32` count, then per dependency in ascending order of its text form: string `[namespace/]name`, string requirement (semver `VersionReq` display form, e.g. `^1.2`) |
//! | 7 | checksum | string, text form `sha256:<hex>` |
//! | 8 | size | `u64` |
//! | 9 | published_at | `i64` Unix seconds, then `u32` nanoseconds |
//! | 10 | renamed dependencies, only when there are any | `u32` count, then per dependency in ascending order of its alias: string alias, string `[namespace/]name` of the package, string requirement |
//!
//! Field 10 is absent (not an empty list) for a package without renamed dependencies, so the
//! payload of every such package is what it was before renamed dependencies existed and its
//! signature still holds; fields 0–9 have a fixed shape, so a payload with field 10 can never
//! read as one without it.
//!
//! A version with [`PackageMetadata::extensions`] (a crate: its Cargo index fields) is signed
//! over layout **version 2**, the same fields behind its own domain separator, with field 10
//! always present and one more:
//!
//! | # | field | encoding |
//! |---|-------|----------|
//! | 0 | domain separator | the 31 ASCII bytes `marketplace/signing-payload/v2\n` |
//! | 1–9 | as version 1 | |
//! | 10 | renamed dependencies | as version 1, but always present (count 0 when there are none) |
//! | 11 | extensions | `u32` count, then per extension in ascending order of its name: string name, string JSON text exactly as stored |
//!
//! Every payload of a version without extensions stays version 1, byte for byte.
//!
//! The payload covers what can never change after publishing. The fields that
//! [`crate::Registry::update_metadata`] may change (description, keywords, categories, homepage,
//! repository) are deliberately left out, so that editing them does not invalidate signatures;
//! the archive itself, including its manifest, is covered through the checksum.

use crate::metadata::PackageMetadata;

/// The domain separator that starts every version-1 payload.
pub const SIGNING_PAYLOAD_DOMAIN: &[u8] = b"marketplace/signing-payload/v1\n";

/// The domain separator that starts every version-2 payload (a version with extensions).
pub const SIGNING_PAYLOAD_DOMAIN_V2: &[u8] = b"marketplace/signing-payload/v2\n";

/// The canonical bytes to sign for `metadata` (layout in the module docs).
pub fn signing_payload(metadata: &PackageMetadata) -> Vec<u8> {
    let extended = !metadata.extensions.is_empty();
    let extension_bytes: usize = metadata
        .extensions
        .iter()
        .map(|(k, v)| k.len() + v.len() + 8)
        .sum();
    let mut out = Vec::with_capacity(256 + extension_bytes);
    out.extend_from_slice(if extended {
        SIGNING_PAYLOAD_DOMAIN_V2
    } else {
        SIGNING_PAYLOAD_DOMAIN
    });
    let id = &metadata.id;
    put_str(&mut out, id.namespace.as_ref().map_or("", |n| n.as_str()));
    put_str(&mut out, id.name.as_str());
    put_str(&mut out, &id.version.to_string());
    put_len(&mut out, metadata.authors.len());
    for author in &metadata.authors {
        put_str(&mut out, author);
    }
    put_str(
        &mut out,
        metadata.license.as_ref().map_or("", |l| l.as_str()),
    );
    let mut deps: Vec<(String, String)> = metadata
        .dependencies
        .iter()
        .map(|(name, req)| (name.to_string(), req.to_string()))
        .collect();
    deps.sort();
    put_len(&mut out, deps.len());
    for (name, req) in &deps {
        put_str(&mut out, name);
        put_str(&mut out, req);
    }
    put_str(&mut out, &metadata.checksum.to_string());
    out.extend_from_slice(&metadata.size.to_be_bytes());
    out.extend_from_slice(&metadata.published_at.unix_timestamp().to_be_bytes());
    out.extend_from_slice(&metadata.published_at.nanosecond().to_be_bytes());
    if extended || !metadata.renamed_dependencies.is_empty() {
        // A BTreeMap iterates in ascending order of its alias.
        put_len(&mut out, metadata.renamed_dependencies.len());
        for (alias, renamed) in &metadata.renamed_dependencies {
            put_str(&mut out, alias.as_str());
            put_str(&mut out, &renamed.package.to_string());
            put_str(&mut out, &renamed.requirement.to_string());
        }
    }
    if extended {
        // A BTreeMap iterates in ascending order of its name.
        put_len(&mut out, metadata.extensions.len());
        for (name, value) in &metadata.extensions {
            put_str(&mut out, name);
            put_str(&mut out, value);
        }
    }
    out
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Lengths are bounded far below u32::MAX by validation; saturate rather than wrap regardless.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}
