//! Reading a package archive: every rule checked, the manifest parsed and the archive hashed in
//! one pass over its bytes ([`inspect`], [`stage`]); extraction of what was proved
//! ([`extract`], [`Staged::commit`]) without checking it again.
//!
//! Rules: exactly one gzip member (CRC and length checked) holding one complete tar stream and
//! nothing after it; every entry under one top-level directory; no absolute paths, no `..`, no
//! NUL bytes, no symlinks, hard links, devices, PAX headers or sparse files; UTF-8 paths; no
//! path twice and no file where a directory is; limits on compressed size, unpacked size,
//! entry count and path length, checked before anything is read; exactly one manifest. A
//! violation is `Invalid`, naming the entry and the rule.

use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::bufread::GzDecoder;
use marketplace_core::{
    ContentHash, ContentHasher, Error, HashAlgorithm, PackageId, PackageMetadata, Result,
};
use tar::EntryType;

use crate::limits::ArchiveLimits;
use crate::manifest::{MANIFEST_FILE, MAX_MANIFEST_BYTES, Manifest};
use crate::rules::{Checker, EntryKind, rule};

/// One file of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// Path inside the top-level directory, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// A valid archive and everything one pass over it proved: its manifest as validated
/// metadata, its entries and sizes, and its digest.
///
/// Only [`inspect`], [`stage`] and [`crate::pack_dir`] make one, and it keeps the bytes it
/// describes, so whoever holds an `Inspected` holds a valid archive and need not check it again.
/// Cloning is cheap (the bytes are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    archive: Bytes,
    metadata: PackageMetadata,
    top: String,
    files: Vec<ArchiveEntry>,
    unpacked_size: u64,
    entries: usize,
    longest_path: usize,
}

impl Inspected {
    /// The archive bytes.
    pub fn archive(&self) -> &Bytes {
        &self.archive
    }

    /// The package's metadata from its manifest, valid by construction: `checksum` is the
    /// archive's digest, `size` its length, `published_at` the time of inspection, no
    /// signature.
    pub fn metadata(&self) -> &PackageMetadata {
        &self.metadata
    }

    /// The package and version the manifest names.
    pub fn id(&self) -> &PackageId {
        &self.metadata.id
    }

    /// The archive's digest (the algorithm asked for; SHA-256 by default).
    pub fn digest(&self) -> &ContentHash {
        &self.metadata.checksum
    }

    /// The top-level directory.
    pub fn top(&self) -> &str {
        &self.top
    }

    /// The files, in archive order (directories left out).
    pub fn files(&self) -> &[ArchiveEntry] {
        &self.files
    }

    /// Total unpacked size of the files.
    pub fn unpacked_size(&self) -> u64 {
        self.unpacked_size
    }

    /// Entries in the archive, directories included.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Length in bytes of the longest entry path.
    pub fn longest_path(&self) -> usize {
        self.longest_path
    }

    /// The bytes and the metadata, taken apart.
    pub fn into_parts(self) -> (Bytes, PackageMetadata) {
        (self.archive, self.metadata)
    }

    pub(crate) fn from_parts(
        archive: Bytes,
        mut metadata: PackageMetadata,
        digest: ContentHash,
        checker: &Checker<'_>,
        files: Vec<ArchiveEntry>,
    ) -> Result<Self> {
        let top = checker
            .top()
            .ok_or_else(|| Error::invalid("archive", "", "is empty"))?
            .to_owned();
        metadata.checksum = digest;
        metadata.size = archive.len() as u64;
        Ok(Inspected {
            archive,
            metadata,
            top,
            files,
            unpacked_size: checker.unpacked_size(),
            entries: checker.entries(),
            longest_path: checker.longest_path(),
        })
    }
}

/// Validates an archive without writing anything and hashes it with SHA-256, in one pass.
pub fn inspect(archive: Bytes, limits: &ArchiveLimits) -> Result<Inspected> {
    inspect_as(archive, limits, HashAlgorithm::Sha256)
}

/// [`inspect`], hashing with `algorithm` (SHA-256 or SHA-512; others are `Invalid`).
pub fn inspect_as(
    archive: Bytes,
    limits: &ArchiveLimits,
    algorithm: HashAlgorithm,
) -> Result<Inspected> {
    read_archive(archive, limits, algorithm, None, &MARKETPLACE)
}

/// The manifest of an archive format and what makes metadata of it: the format of another
/// packaging system (a Cargo `.crate`, whose manifest is `Cargo.toml`) read under exactly the
/// rules of a marketplace archive.
pub struct ManifestFormat<'a> {
    /// The manifest's file name in the top-level directory (`marketplace.toml`, `Cargo.toml`).
    pub file: &'a str,
    /// The metadata the archive describes, from the manifest's text and the archive's
    /// top-level directory; its `checksum` and `size` are set by the reader afterwards.
    /// `Invalid` refuses the archive.
    pub describe: &'a (dyn Fn(&str, &str) -> Result<PackageMetadata> + Sync),
}

/// Marketplace archives: `marketplace.toml`.
const MARKETPLACE: ManifestFormat<'static> = ManifestFormat {
    file: MANIFEST_FILE,
    describe: &|text, _top| {
        Manifest::parse(text).map(|m| m.to_metadata(ContentHash::sha256(b""), 0))
    },
};

/// [`inspect_as`] for an archive of another format: the same rules, one pass, the manifest
/// named by `format` read and turned into metadata by it.
pub fn inspect_format(
    archive: Bytes,
    limits: &ArchiveLimits,
    algorithm: HashAlgorithm,
    format: &ManifestFormat<'_>,
) -> Result<Inspected> {
    read_archive(archive, limits, algorithm, None, format)
}

/// An archive validated and unpacked into a staging directory beside its destination, in one
/// pass. [`Staged::commit`] moves it into place; dropping it removes the staging directory, so
/// a caller can stage several packages and commit them only once every one passed its checks.
#[derive(Debug)]
pub struct Staged {
    inspected: Inspected,
    staging: tempfile::TempDir,
    dest: PathBuf,
}

impl Staged {
    /// What the pass proved.
    pub fn inspected(&self) -> &Inspected {
        &self.inspected
    }

    /// Where [`Staged::commit`] puts the files.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Renames the staging directory to the destination (which must still be absent or
    /// empty). `AlreadyExists` if something was put there meanwhile; `Backend` for I/O.
    pub fn commit(self) -> Result<Inspected> {
        let Staged {
            inspected,
            staging,
            dest,
        } = self;
        check_destination(&dest)?;
        if dest.exists() {
            fs::remove_dir(&dest).map_err(|e| write_error(&dest, e))?;
        } else if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| write_error(parent, e))?;
        }
        let staged = staging.keep();
        fs::rename(&staged, &dest).map_err(|e| {
            let _ = fs::remove_dir_all(&staged);
            write_error(&dest, e)
        })?;
        Ok(inspected)
    }
}

/// Validates `archive` and unpacks it into a staging directory beside `dest` in one pass
/// (decompressing once and hashing with `algorithm` on the way). `dest` must be absent or an
/// empty directory. Nothing is written to `dest` until [`Staged::commit`].
pub fn stage(
    archive: Bytes,
    limits: &ArchiveLimits,
    algorithm: HashAlgorithm,
    dest: &Path,
) -> Result<Staged> {
    let staging = staging_beside(dest)?;
    let inspected = read_archive(
        archive,
        limits,
        algorithm,
        Some(staging.path()),
        &MARKETPLACE,
    )?;
    Ok(Staged {
        inspected,
        staging,
        dest: dest.to_owned(),
    })
}

/// [`stage`] for an archive of another format (see [`inspect_format`]).
pub fn stage_format(
    archive: Bytes,
    limits: &ArchiveLimits,
    algorithm: HashAlgorithm,
    dest: &Path,
    format: &ManifestFormat<'_>,
) -> Result<Staged> {
    let staging = staging_beside(dest)?;
    let inspected = read_archive(archive, limits, algorithm, Some(staging.path()), format)?;
    Ok(Staged {
        inspected,
        staging,
        dest: dest.to_owned(),
    })
}

/// Extracts an inspected archive's top-level directory into `dest` (absent or empty): one
/// decompression, no rule checked again. Files go to a staging directory beside `dest` that is
/// renamed into place at the end, so a failure writes nothing to `dest`.
pub fn extract(inspected: &Inspected, dest: &Path) -> Result<()> {
    let staging = staging_beside(dest)?;
    #[cfg(feature = "counters")]
    crate::counters::decompressed();
    let mut tar = tar::Archive::new(GzDecoder::new(inspected.archive.as_ref()));
    let mut files = inspected.files.iter();
    for entry in raw_entries(&mut tar)? {
        let mut entry = entry.map_err(|e| unreadable("entry", e))?;
        // Inspection admitted only directories, long names and files: the files come in the
        // order recorded.
        if entry.header().entry_type() != EntryType::Regular
            && entry.header().entry_type() != EntryType::Continuous
        {
            continue;
        }
        let Some(file) = files.next() else {
            return Err(unreadable(
                "entries",
                io::Error::other("more entries than inspected"),
            ));
        };
        let target = staging.path().join(&file.path);
        copy_entry(&mut entry, Some(&target), file.size, &file.path)?;
    }
    Staged {
        inspected: inspected.clone(),
        staging,
        dest: dest.to_owned(),
    }
    .commit()
    .map(drop)
}

/// Hands the archive to the decompressor and hashes every byte as it goes.
struct Hashing<'a> {
    rest: &'a [u8],
    hasher: ContentHasher,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.rest.len());
        let (chunk, rest) = self.rest.split_at(n);
        buf[..n].copy_from_slice(chunk);
        self.hasher.update(chunk);
        self.rest = rest;
        Ok(n)
    }
}

/// Longest zero padding accepted after the end-of-archive blocks (GNU tar pads to 10 KiB
/// records; this leaves room for larger blocking factors and refuses a zero bomb).
const MAX_TRAILING_PADDING: u64 = 64 * 1024;

/// The decompressor of exactly one gzip member over the hashed archive.
type Decoder<'a> = GzDecoder<BufReader<Hashing<'a>>>;

/// The entries of a tar stream as they are: no extension header is interpreted by the tar
/// crate, so nothing renames an entry behind the rules.
pub(crate) fn raw_entries<R: Read>(tar: &mut tar::Archive<R>) -> Result<tar::Entries<'_, R>> {
    Ok(tar
        .entries()
        .map_err(|e| unreadable("entries", e))?
        .raw(true))
}

fn entry_kind(kind: EntryType) -> EntryKind {
    match kind {
        EntryType::Directory => EntryKind::Directory,
        EntryType::Regular | EntryType::Continuous => EntryKind::File,
        EntryType::Symlink => EntryKind::Symlink,
        EntryType::Link => EntryKind::HardLink,
        EntryType::Char => EntryKind::Other("character device"),
        EntryType::Block => EntryKind::Other("block device"),
        EntryType::Fifo => EntryKind::Other("FIFO"),
        EntryType::GNULongLink => EntryKind::Other("GNU long link name"),
        EntryType::XHeader => EntryKind::Other("PAX extended header"),
        EntryType::XGlobalHeader => EntryKind::Other("PAX global header"),
        EntryType::GNUSparse => EntryKind::Other("GNU sparse file"),
        _ => EntryKind::Other("unknown"),
    }
}

/// The one pass: decompress, check every rule, parse the manifest, hash, and write the files
/// under `out` when given.
///
/// What is read is exactly what others unpack: one gzip member, its CRC and length checked,
/// holding one tar stream that ends with its end-of-archive blocks (zero padding after them
/// allowed, up to a bound), followed by nothing. Tar entries are read raw, so no extension is
/// interpreted behind the rules' back: GNU long names (the only extension `pack_dir` and cargo
/// write) are read here, bounded by the path limit; PAX headers, long link names and sparse
/// files are refused.
fn read_archive(
    archive: Bytes,
    limits: &ArchiveLimits,
    algorithm: HashAlgorithm,
    out: Option<&Path>,
    format: &ManifestFormat<'_>,
) -> Result<Inspected> {
    if archive.len() as u64 > limits.max_compressed {
        return Err(Error::invalid(
            "archive",
            format!("{} bytes", archive.len()),
            format!("is larger than the {} byte limit", limits.max_compressed),
        ));
    }
    let hashing = Hashing {
        rest: &archive,
        hasher: ContentHasher::new(algorithm)?,
    };
    #[cfg(feature = "counters")]
    {
        crate::counters::decompressed();
        crate::counters::hashed();
    }
    let mut decoder: Decoder<'_> = GzDecoder::new(BufReader::with_capacity(64 * 1024, hashing));
    let mut checker = Checker::new(limits);
    let mut manifest_text: Option<String> = None;
    let mut files = Vec::new();
    {
        let mut tar = tar::Archive::new(&mut decoder);
        let mut long_name: Option<Vec<u8>> = None;
        for entry in raw_entries(&mut tar)? {
            let mut entry = entry.map_err(|e| unreadable("entry", e))?;
            let header_type = entry.header().entry_type();
            let size = entry.header().size().map_err(|e| unreadable("entry", e))?;
            if header_type == EntryType::GNULongName {
                checker.count_header()?;
                long_name = Some(read_long_name(&mut entry, size, limits)?);
                continue;
            }
            let raw = match long_name.take() {
                Some(name) => name,
                None => entry.path_bytes().into_owned(),
            };
            let Some(inner) = checker.entry(&raw, entry_kind(header_type), size)? else {
                continue;
            };
            let shown = String::from_utf8_lossy(&raw).into_owned();
            // A header that announces more than the budget is refused before anything is
            // decompressed; otherwise count the bytes actually read, not the size claimed.
            checker.announce(&shown, size)?;
            let target = out.map(|dir| dir.join(&inner));
            let read = if inner == format.file {
                let text = read_manifest(&mut entry, &shown)?;
                if let Some(target) = &target {
                    write_file(target, text.as_bytes())?;
                }
                let read = text.len() as u64;
                manifest_text = Some(text);
                read
            } else {
                copy_entry(&mut entry, target.as_deref(), checker.budget() + 1, &shown)?
            };
            if read != size {
                return Err(rule(
                    &shown,
                    format!("announces {size} bytes but holds {read}"),
                ));
            }
            checker.unpacked(&shown, read)?;
            files.push(ArchiveEntry {
                path: inner,
                size: read,
            });
        }
        if long_name.is_some() {
            return Err(Error::invalid(
                "archive",
                "GNU long name",
                "ends with a long name that names no entry",
            ));
        }
    }
    let digest = finish_stream(decoder)?;
    let top = checker
        .top()
        .ok_or_else(|| Error::invalid("archive", "", "is empty"))?;
    let text = manifest_text.ok_or_else(|| {
        Error::invalid(
            "archive",
            top,
            format!("has no {} in its top-level directory {top:?}", format.file),
        )
    })?;
    let metadata = (format.describe)(&text, top)?;
    Inspected::from_parts(archive, metadata, digest, &checker, files)
}

/// A GNU long name: bounded by the path limit before it is read, NUL-terminated, no NUL inside.
pub(crate) fn read_long_name(
    entry: &mut impl Read,
    size: u64,
    limits: &ArchiveLimits,
) -> Result<Vec<u8>> {
    // The name plus its NUL terminator.
    let cap = limits.max_path_len as u64 + 1;
    if size > cap {
        return Err(Error::invalid(
            "archive",
            format!("a GNU long name of {size} bytes"),
            format!("names a path longer than {} bytes", limits.max_path_len),
        ));
    }
    let mut name = Vec::with_capacity(size as usize);
    entry
        .take(cap)
        .read_to_end(&mut name)
        .map_err(|e| unreadable("GNU long name", e))?;
    while name.last() == Some(&0) {
        name.pop();
    }
    if name.contains(&0) {
        let shown = String::from_utf8_lossy(&name).into_owned();
        return Err(rule(&shown, "path contains a NUL byte"));
    }
    Ok(name)
}

/// After the last entry: the rest of the tar stream is its end-of-archive blocks and bounded
/// zero padding, the gzip member ends with a matching CRC and length, and nothing follows it.
/// Returns the digest of the whole archive.
fn finish_stream(mut decoder: Decoder<'_>) -> Result<ContentHash> {
    let end = |rule: &str| Error::invalid("archive", "end of archive", rule.to_owned());
    // The tar reader stopped after the first zero block (or at the end of the stream).
    let mut rest = Vec::new();
    (&mut decoder)
        .take(MAX_TRAILING_PADDING + 1)
        .read_to_end(&mut rest)
        .map_err(|e| unreadable("end of archive", e))?;
    if rest.len() as u64 > MAX_TRAILING_PADDING {
        return Err(end(&format!(
            "has more than {MAX_TRAILING_PADDING} bytes after the end-of-archive blocks"
        )));
    }
    if rest.iter().any(|b| *b != 0) {
        return Err(end(
            "has data after the end-of-archive blocks (a second archive?)",
        ));
    }
    if rest.len() < 512 || rest.len() % 512 != 0 {
        return Err(end(
            "does not end with the two zero blocks of a complete tar stream",
        ));
    }
    // One byte more: reaching the end of the member makes the decoder check CRC and length.
    let mut probe = [0u8; 1];
    match decoder.read(&mut probe) {
        Ok(0) => {}
        Ok(_) => return Err(end("has data after the end-of-archive blocks")),
        Err(e) => return Err(unreadable("gzip trailer", e)),
    }
    let reader = decoder.into_inner();
    if !reader.buffer().is_empty() || !reader.get_ref().rest.is_empty() {
        return Err(end(
            "has bytes after the end of the gzip stream (a second member, or trailing data)",
        ));
    }
    Ok(reader.into_inner().hasher.finish())
}

fn read_manifest(entry: &mut impl Read, shown: &str) -> Result<String> {
    let mut text = String::new();
    entry
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|_| rule(shown, "manifest is not UTF-8 text"))?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(rule(
            shown,
            format!("manifest is larger than {MAX_MANIFEST_BYTES} bytes"),
        ));
    }
    Ok(text)
}

/// Copies at most `limit` bytes of an entry to `target` (or nowhere), telling read errors (a
/// broken archive: `Invalid`) from write errors (`Backend`). Returns the bytes read.
fn copy_entry(
    entry: &mut impl Read,
    target: Option<&Path>,
    limit: u64,
    shown: &str,
) -> Result<u64> {
    let mut file = match target {
        Some(path) => Some(create_file(path)?),
        None => None,
    };
    let mut reader = entry.take(limit);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(unreadable(shown, e)),
        };
        if let (Some(file), Some(path)) = (&mut file, target) {
            file.write_all(&buf[..n])
                .map_err(|e| write_error(path, e))?;
        }
        total += n as u64;
    }
    Ok(total)
}

fn create_file(path: &Path) -> Result<fs::File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    }
    fs::File::create(path).map_err(|e| write_error(path, e))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    create_file(path)?
        .write_all(bytes)
        .map_err(|e| write_error(path, e))
}

/// `dest` must be absent or an empty directory.
fn check_destination(dest: &Path) -> Result<()> {
    if dest.exists()
        && fs::read_dir(dest)
            .map_err(|e| write_error(dest, e))?
            .next()
            .is_some()
    {
        return Err(Error::already_exists(format!(
            "directory {} (not empty)",
            dest.display()
        )));
    }
    Ok(())
}

/// A staging directory on the same file system as `dest` (so that committing is a rename), in
/// the nearest directory above `dest` that exists: staging creates no directory that a failure
/// would leave behind. [`Staged::commit`] creates the missing ones.
fn staging_beside(dest: &Path) -> Result<tempfile::TempDir> {
    check_destination(dest)?;
    let parent = dest
        .ancestors()
        .skip(1)
        .find(|p| !p.as_os_str().is_empty() && p.is_dir())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(parent)
        .map_err(|e| write_error(parent, e))
}

pub(crate) fn unreadable(what: &str, e: io::Error) -> Error {
    Error::invalid(
        "archive",
        what,
        format!("is not a readable .tar.gz archive ({e})"),
    )
}

fn write_error(path: &Path, e: io::Error) -> Error {
    Error::backend(
        "filesystem",
        format!("extract into {}", path.display()),
        e,
        false,
    )
}
