//! Hand-made archives for test suites (feature `testing`): entries written byte for byte, so
//! that malicious paths, links, devices and bombs can be built. Not a stable API.

use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;
pub use tar::EntryType;

/// One raw tar header (old format) for `path`, announcing `size` bytes of type `kind`. Links
/// point at `/etc/passwd`.
fn header(path: &[u8], kind: EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..path.len()].copy_from_slice(path);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_entry_type(kind);
    if kind == EntryType::Symlink || kind == EntryType::Link {
        header.as_old_mut().linkname[..11].copy_from_slice(b"/etc/passwd");
    }
    header.set_cksum();
    header
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).expect("gzip in memory");
    gz.finish().expect("gzip in memory")
}

/// The uncompressed tar stream of `entries` (path bytes, type, data), ending with the two
/// end-of-archive blocks.
pub fn raw_tar(entries: &[(&[u8], EntryType, &[u8])]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (path, kind, data) in entries {
        tar.extend_from_slice(header(path, *kind, data.len() as u64).as_bytes());
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

/// A `.tar.gz` of `entries` (path bytes, type, data), paths written as given.
pub fn raw_archive(entries: &[(&[u8], EntryType, &[u8])]) -> Vec<u8> {
    gzip(&raw_tar(entries))
}

/// A `.tar.gz` holding `top/marketplace.toml` with `manifest`, then `top/zeros`: `size` zero
/// bytes, streamed into the compressor (1 GiB compresses to about 1 MiB).
pub fn zeros_bomb(top: &str, manifest: &[u8], size: u64) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    let manifest_path = format!("{top}/marketplace.toml");
    let mut start = header(
        manifest_path.as_bytes(),
        EntryType::Regular,
        manifest.len() as u64,
    )
    .as_bytes()
    .to_vec();
    start.extend_from_slice(manifest);
    start.resize(start.len().div_ceil(512) * 512, 0);
    let zeros_path = format!("{top}/zeros");
    start.extend_from_slice(header(zeros_path.as_bytes(), EntryType::Regular, size).as_bytes());
    gz.write_all(&start).expect("gzip in memory");
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64);
        gz.write_all(&chunk[..n as usize]).expect("gzip in memory");
        left -= n;
    }
    let pad = (size.div_ceil(512) * 512 - size) as usize;
    gz.write_all(&vec![0u8; pad + 1024])
        .expect("gzip in memory");
    gz.finish().expect("gzip in memory")
}
