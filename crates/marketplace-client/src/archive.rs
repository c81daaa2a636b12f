//! The package archive: a `.tar.gz` with one top-level directory holding `marketplace.toml`.
//!
//! Rules, enforced when packing, inspecting and extracting: every entry under one top-level
//! directory; no absolute paths, no `..`, no symlinks, hard links or devices; UTF-8 paths;
//! limits on compressed size, unpacked size, entry count and path length; exactly one
//! manifest. A violation is `Invalid`, naming the entry and the rule.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::GzDecoder;
use marketplace_core::{Error, Result};
use tar::{EntryType, Header};

use crate::manifest::{MANIFEST_FILE, MAX_MANIFEST_BYTES, Manifest};

/// Size and shape limits of an archive. The defaults suit template and plugin packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchiveLimits {
    /// Largest archive, compressed (default 50 MiB).
    pub max_compressed: u64,
    /// Largest total size of the files, unpacked: the zip-bomb guard (default 500 MiB).
    pub max_unpacked: u64,
    /// Most entries (default 10,000).
    pub max_entries: usize,
    /// Longest entry path in bytes (default 255).
    pub max_path_len: usize,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_compressed: 50 * 1024 * 1024,
            max_unpacked: 500 * 1024 * 1024,
            max_entries: 10_000,
            max_path_len: 255,
        }
    }
}

/// One file of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// Path inside the top-level directory, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// What [`inspect`] found in a valid archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// The top-level directory.
    pub top: String,
    /// The manifest.
    pub manifest: Manifest,
    /// The files, in archive order (directories left out).
    pub files: Vec<ArchiveEntry>,
    /// Total unpacked size.
    pub unpacked_size: u64,
}

fn rule(entry: &str, rule: impl Into<String>) -> Error {
    Error::invalid(format!("archive entry {entry:?}"), entry, rule)
}

fn io_invalid(what: &str, e: io::Error) -> Error {
    Error::invalid(
        "archive",
        what,
        format!("is not a readable .tar.gz archive ({e})"),
    )
}

/// Checks one entry path and splits off the top-level directory.
fn split_path(raw: &[u8], limits: &ArchiveLimits) -> Result<(String, String)> {
    let shown = String::from_utf8_lossy(raw).into_owned();
    let text = std::str::from_utf8(raw).map_err(|_| rule(&shown, "path is not UTF-8"))?;
    if text.len() > limits.max_path_len {
        return Err(rule(
            &shown,
            format!("path is longer than {} bytes", limits.max_path_len),
        ));
    }
    let path = Path::new(text);
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err(rule(&shown, "path contains `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(rule(&shown, "path is absolute"));
            }
        }
    }
    if text.contains('\\') {
        return Err(rule(&shown, "path contains a backslash"));
    }
    let Some((top, rest)) = parts.split_first() else {
        return Err(rule(&shown, "path is empty"));
    };
    Ok((top.clone(), rest.join("/")))
}

/// Validates an archive without writing anything, and returns what it holds.
pub fn inspect(archive: &[u8], limits: &ArchiveLimits) -> Result<ArchiveInfo> {
    if archive.len() as u64 > limits.max_compressed {
        return Err(Error::invalid(
            "archive",
            format!("{} bytes", archive.len()),
            format!("is larger than the {} byte limit", limits.max_compressed),
        ));
    }
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    let mut top_dir: Option<String> = None;
    let mut manifest_text: Option<String> = None;
    let mut files = Vec::new();
    let mut seen = BTreeSet::new();
    let mut unpacked = 0u64;
    let entries = tar.entries().map_err(|e| io_invalid("entries", e))?;
    for (count, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| io_invalid("entry", e))?;
        if count >= limits.max_entries {
            return Err(Error::invalid(
                "archive",
                format!("{} entries", count + 1),
                format!("has more than {} entries", limits.max_entries),
            ));
        }
        let raw = entry.path_bytes().into_owned();
        let (top, inner) = split_path(&raw, limits)?;
        let shown = String::from_utf8_lossy(&raw).into_owned();
        match &top_dir {
            None => top_dir = Some(top.clone()),
            Some(existing) if *existing != top => {
                return Err(rule(
                    &shown,
                    format!(
                        "is outside the top-level directory {existing:?}; every entry must be under one directory"
                    ),
                ));
            }
            Some(_) => {}
        }
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Directory => continue,
            EntryType::Regular | EntryType::Continuous => {}
            EntryType::Symlink => {
                return Err(rule(&shown, "is a symbolic link; links are not allowed"));
            }
            EntryType::Link => return Err(rule(&shown, "is a hard link; links are not allowed")),
            other => {
                return Err(rule(
                    &shown,
                    format!("has entry type {other:?}; only files and directories are allowed"),
                ));
            }
        }
        if inner.is_empty() {
            return Err(rule(
                &shown,
                "is a file at the top level; files must be inside the top-level directory",
            ));
        }
        if !seen.insert(inner.clone()) {
            return Err(rule(&shown, "appears twice in the archive"));
        }
        // A header that announces more than the budget is refused before anything is
        // decompressed; otherwise count the bytes actually read, not the size claimed.
        let budget = limits.max_unpacked.saturating_sub(unpacked);
        if entry.header().size().unwrap_or(0) > budget {
            return Err(rule(
                &shown,
                format!("unpacks past the {} byte limit", limits.max_unpacked),
            ));
        }
        let size = if inner == MANIFEST_FILE {
            let mut text = String::new();
            (&mut entry)
                .take(MAX_MANIFEST_BYTES + 1)
                .read_to_string(&mut text)
                .map_err(|_| rule(&shown, "manifest is not UTF-8 text"))?;
            if text.len() as u64 > MAX_MANIFEST_BYTES {
                return Err(rule(
                    &shown,
                    format!("manifest is larger than {MAX_MANIFEST_BYTES} bytes"),
                ));
            }
            let size = text.len() as u64;
            manifest_text = Some(text);
            size
        } else {
            io::copy(&mut (&mut entry).take(budget + 1), &mut io::sink())
                .map_err(|e| io_invalid(&shown, e))?
        };
        unpacked += size;
        if unpacked > limits.max_unpacked {
            return Err(rule(
                &shown,
                format!("unpacks past the {} byte limit", limits.max_unpacked),
            ));
        }
        files.push(ArchiveEntry { path: inner, size });
    }
    let top = top_dir.ok_or_else(|| Error::invalid("archive", "", "is empty"))?;
    let text = manifest_text.ok_or_else(|| {
        Error::invalid(
            "archive",
            &top,
            format!("has no {MANIFEST_FILE} in its top-level directory {top:?}"),
        )
    })?;
    let manifest = Manifest::parse(&text)?;
    Ok(ArchiveInfo {
        top,
        manifest,
        files,
        unpacked_size: unpacked,
    })
}

/// Packs `dir` (which holds `marketplace.toml`) reproducibly: entries sorted, timestamps,
/// owners and modes normalised, gzip without a timestamp, so the same directory always gives
/// the same bytes. `.git` directories are left out; links are refused.
pub fn pack_dir(dir: &Path, limits: &ArchiveLimits) -> Result<(Bytes, Manifest)> {
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
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    let mut builder = tar::Builder::new(gz);
    for relative in &files {
        let source = dir.join(relative);
        let name = format!("{top}/{}", relative.to_string_lossy().replace('\\', "/"));
        let metadata = fs::metadata(&source).map_err(|e| pack_error(&source, e))?;
        let mut header = Header::new_gnu();
        header.set_size(metadata.len());
        header.set_mode(if is_executable(&metadata) {
            0o755
        } else {
            0o644
        });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(EntryType::Regular);
        let file = fs::File::open(&source).map_err(|e| pack_error(&source, e))?;
        builder
            .append_data(&mut header, &name, file)
            .map_err(|e| pack_error(&source, e))?;
    }
    let gz = builder.into_inner().map_err(|e| pack_error(dir, e))?;
    let bytes = Bytes::from(gz.finish().map_err(|e| pack_error(dir, e))?);
    inspect(&bytes, limits)?;
    Ok((bytes, manifest))
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

/// Validates the archive, then extracts the contents of its top-level directory into `dest`
/// (created; it must not exist or be empty). Files go to a temporary directory beside `dest`
/// that is renamed into place at the end, so a failure writes nothing to `dest`.
pub fn extract(archive: &[u8], dest: &Path, limits: &ArchiveLimits) -> Result<ArchiveInfo> {
    let info = inspect(archive, limits)?;
    let fail = |what: &Path, e: io::Error| {
        Error::backend(
            "filesystem",
            format!("extract into {}", what.display()),
            e,
            false,
        )
    };
    if dest.exists()
        && fs::read_dir(dest)
            .map_err(|e| fail(dest, e))?
            .next()
            .is_some()
    {
        return Err(Error::already_exists(format!(
            "directory {} (not empty)",
            dest.display()
        )));
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(parent)
        .map_err(|e| fail(parent, e))?;
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    for entry in tar.entries().map_err(|e| io_invalid("entries", e))? {
        let mut entry = entry.map_err(|e| io_invalid("entry", e))?;
        if entry.header().entry_type() == EntryType::Directory {
            continue;
        }
        let (_, inner) = split_path(&entry.path_bytes(), limits)?;
        let target = staging.path().join(&inner);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
        }
        let mut file = fs::File::create(&target).map_err(|e| fail(&target, e))?;
        io::copy(&mut (&mut entry).take(limits.max_unpacked), &mut file)
            .map_err(|e| fail(&target, e))?;
    }
    if dest.exists() {
        fs::remove_dir(dest).map_err(|e| fail(dest, e))?;
    }
    let staged = staging.keep();
    fs::rename(&staged, dest).map_err(|e| {
        let _ = fs::remove_dir_all(&staged);
        fail(dest, e)
    })?;
    Ok(info)
}
