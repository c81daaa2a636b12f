//! Packing a directory into a reproducible archive, checking the archive rules as it goes.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::Compression;
use marketplace_core::{ContentHash, Error, Result};
use tar::{EntryType, Header};

use crate::archive::{ArchiveEntry, Inspected};
use crate::limits::ArchiveLimits;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::rules::{Checker, EntryKind, rule};

/// Packs `dir` (which holds `marketplace.toml`) reproducibly: entries sorted, timestamps,
/// owners and modes normalised, gzip without a timestamp, so the same directory always gives
/// the same bytes. `.git` directories are left out; links are refused. Every archive rule is
/// checked while packing, so the result is [`Inspected`] without reading it back.
pub fn pack_dir(dir: &Path, limits: &ArchiveLimits) -> Result<Inspected> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = fs::read_to_string(&manifest_path).map_err(|e| {
        Error::invalid(
            "package directory",
            dir.display().to_string(),
            format!("has no readable {MANIFEST_FILE} ({e})"),
        )
    })?;
    let manifest = Manifest::parse(&text)?;
    let top = manifest.top_dir();
    let mut sources = Vec::new();
    collect(dir, dir, &mut sources)?;
    sources.sort();
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    let mut builder = tar::Builder::new(gz);
    let mut checker = Checker::new(limits);
    let mut files = Vec::with_capacity(sources.len());
    for relative in &sources {
        let source = dir.join(relative);
        let inner = relative
            .to_str()
            .ok_or_else(|| rule(&relative.to_string_lossy(), "path is not UTF-8"))?
            .replace('\\', "/");
        let name = format!("{top}/{inner}");
        let metadata = fs::metadata(&source).map_err(|e| pack_error(&source, e))?;
        checker.entry(name.as_bytes(), EntryKind::File, metadata.len())?;
        let mut header = Header::new_gnu();
        header.set_mode(if is_executable(&metadata) {
            0o755
        } else {
            0o644
        });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(EntryType::Regular);
        // The manifest goes in as the text that was parsed, so the archive holds exactly what
        // was validated even if the file changes meanwhile.
        let size = if inner == MANIFEST_FILE {
            header.set_size(text.len() as u64);
            checker.announce(&name, text.len() as u64)?;
            builder
                .append_data(&mut header, &name, text.as_bytes())
                .map_err(|e| pack_error(&source, e))?;
            text.len() as u64
        } else {
            header.set_size(metadata.len());
            checker.announce(&name, metadata.len())?;
            let file = fs::File::open(&source).map_err(|e| pack_error(&source, e))?;
            let mut reader = Counted {
                inner: file.take(metadata.len()),
                read: 0,
            };
            builder
                .append_data(&mut header, &name, &mut reader)
                .map_err(|e| pack_error(&source, e))?;
            if reader.read != metadata.len() {
                return Err(pack_error(
                    &source,
                    io::Error::other("the file changed while it was being packed"),
                ));
            }
            metadata.len()
        };
        checker.unpacked(&name, size)?;
        files.push(ArchiveEntry { path: inner, size });
    }
    let gz = builder.into_inner().map_err(|e| pack_error(dir, e))?;
    let bytes = Bytes::from(gz.finish().map_err(|e| pack_error(dir, e))?);
    if bytes.len() as u64 > limits.max_compressed {
        return Err(Error::invalid(
            "archive",
            format!("{} bytes", bytes.len()),
            format!("is larger than the {} byte limit", limits.max_compressed),
        ));
    }
    #[cfg(feature = "counters")]
    crate::counters::hashed();
    let digest = ContentHash::sha256(&bytes);
    let metadata = manifest.to_metadata(digest.clone(), 0);
    Inspected::from_parts(bytes, metadata, digest, &checker, files)
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn pack_error(path: &Path, e: io::Error) -> Error {
    Error::invalid(
        "package directory",
        path.display().to_string(),
        format!("could not be packed ({e})"),
    )
}

#[cfg(unix)]
fn is_executable(metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &fs::Metadata) -> bool {
    false
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let listing = fs::read_dir(dir).map_err(|e| pack_error(dir, e))?;
    for entry in listing {
        let entry = entry.map_err(|e| pack_error(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| pack_error(&path, e))?;
        let relative = path.strip_prefix(root).unwrap_or(&path).to_owned();
        if kind.is_symlink() {
            return Err(rule(
                &relative.to_string_lossy(),
                "is a symbolic link; links are not allowed",
            ));
        }
        if kind.is_dir() {
            if entry.file_name() != ".git" {
                collect(root, &path, out)?;
            }
        } else if kind.is_file() {
            out.push(relative);
        } else {
            return Err(rule(&relative.to_string_lossy(), "is not a regular file"));
        }
    }
    Ok(())
}
