//! A package's readme, read from its stored archive: what a catalogue shows on the package's
//! page.
//!
//! The manifest says which file it is: `readme = "docs/README.md"` under `[package]` (in
//! `marketplace.toml`, and in a crate's `Cargo.toml`), or `readme = false` for none. Without
//! the field, the first top-level file named `README.md`, `README.markdown`, `README.txt` or
//! `README` (in any case) is the readme.

use std::io::Read;

use flate2::bufread::GzDecoder;
use marketplace_core::{Error, Result};
use tar::EntryType;

use crate::archive::{raw_entries, read_long_name, unreadable};
use crate::limits::ArchiveLimits;
use crate::manifest::MAX_MANIFEST_BYTES;

/// The conventional readme names, best first (compared ignoring case).
const CONVENTIONAL: [&str; 4] = ["README.md", "README.markdown", "README.txt", "README"];

/// A readme read from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Readme {
    /// Its path inside the top-level directory.
    pub path: String,
    /// Its text, at most the bytes asked for (cut at a character boundary); bytes that are not
    /// UTF-8 are replaced with U+FFFD.
    pub text: String,
    /// The file's whole size in bytes.
    pub size: u64,
    /// Whether `text` is only the beginning of the file.
    pub truncated: bool,
}

impl Readme {
    /// Whether the readme is Markdown (`.md`, `.markdown`, or a file without an extension
    /// other than `.txt`): how a catalogue renders it.
    pub fn is_markdown(&self) -> bool {
        let name = self.path.rsplit('/').next().unwrap_or(&self.path);
        match name.rsplit_once('.') {
            Some((_, ext)) => {
                ext.eq_ignore_ascii_case("md") || ext.eq_ignore_ascii_case("markdown")
            }
            None => true,
        }
    }
}

/// What the manifest says about the readme.
#[derive(Debug, PartialEq, Eq)]
enum Choice {
    /// No `readme` field (or `readme = true`): a conventional name.
    Conventional,
    /// `readme = "path"`.
    Named(String),
    /// `readme = false`.
    None,
}

/// The `readme` field of a manifest's `[package]` table (the same in `marketplace.toml` and
/// `Cargo.toml`). A manifest that does not parse here was parsed when the archive was
/// published, so it is read as giving no field.
fn choice(manifest: &str) -> Choice {
    let Ok(table) = manifest.parse::<toml::Table>() else {
        return Choice::Conventional;
    };
    match table.get("package").and_then(|p| p.get("readme")) {
        Some(toml::Value::String(path)) => Choice::Named(path.trim_start_matches("./").to_owned()),
        Some(toml::Value::Boolean(false)) => Choice::None,
        _ => Choice::Conventional,
    }
}

/// The readme of a stored archive whose manifest is `manifest_file` (`marketplace.toml`,
/// `Cargo.toml`), keeping at most `max_bytes` of its text; `None` when it has none.
///
/// The archive is read as it was stored, after it was inspected: entries under the top-level
/// directory, GNU long names, nothing else interpreted and no rule checked again (a broken one
/// is `Invalid`). One pass when the readme has a conventional name or comes after the
/// manifest; two when the manifest names a file that came before it.
pub fn find_readme(
    archive: &[u8],
    manifest_file: &str,
    max_bytes: usize,
) -> Result<Option<Readme>> {
    let mut manifest: Option<String> = None;
    // The best conventional readme seen so far, by its rank in CONVENTIONAL.
    let mut conventional: Option<(usize, Readme)> = None;
    let mut named: Option<Readme> = None;
    let mut names_seen: Vec<String> = Vec::new();
    for_each_file(archive, |path, entry, size| {
        if path == manifest_file {
            let mut text = String::new();
            entry
                .take(MAX_MANIFEST_BYTES)
                .read_to_string(&mut text)
                .map_err(|e| unreadable(path, e))?;
            manifest = Some(text);
            return Ok(());
        }
        if let Some(Choice::Named(wanted)) = manifest.as_deref().map(choice)
            && wanted == path
        {
            named = Some(read_text(path, entry, size, max_bytes)?);
            return Ok(());
        }
        if let Some(rank) = CONVENTIONAL
            .iter()
            .position(|name| name.eq_ignore_ascii_case(path))
            && conventional.as_ref().is_none_or(|(best, _)| rank < *best)
        {
            conventional = Some((rank, read_text(path, entry, size, max_bytes)?));
            return Ok(());
        }
        if manifest.is_none() {
            names_seen.push(path.to_owned());
        }
        Ok(())
    })?;
    let choice = manifest.as_deref().map_or(Choice::Conventional, choice);
    match choice {
        Choice::None => Ok(None),
        Choice::Conventional => Ok(conventional.map(|(_, readme)| readme)),
        Choice::Named(wanted) => {
            if named.is_some() {
                return Ok(named);
            }
            if let Some((_, readme)) = conventional.filter(|(_, r)| r.path == wanted) {
                return Ok(Some(readme));
            }
            if !names_seen.contains(&wanted) {
                // The manifest names a file the archive does not hold.
                return Ok(None);
            }
            let mut found = None;
            for_each_file(archive, |path, entry, size| {
                if found.is_none() && path == wanted {
                    found = Some(read_text(path, entry, size, max_bytes)?);
                }
                Ok(())
            })?;
            Ok(found)
        }
    }
}

/// Reads at most `max_bytes` of a file as text.
fn read_text(path: &str, entry: &mut dyn Read, size: u64, max_bytes: usize) -> Result<Readme> {
    let mut bytes = Vec::with_capacity((size as usize).min(max_bytes));
    entry
        .take(max_bytes as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(path, e))?;
    let truncated = size > bytes.len() as u64;
    if truncated {
        // A character cut in two at the end is dropped, not replaced.
        let valid = match std::str::from_utf8(&bytes) {
            Ok(_) => bytes.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => bytes.len(),
        };
        bytes.truncate(valid);
    }
    Ok(Readme {
        path: path.to_owned(),
        text: String::from_utf8_lossy(&bytes).into_owned(),
        size,
        truncated,
    })
}

/// Calls `visit` with every regular file of a stored archive: its path inside the top-level
/// directory, its contents and its size.
fn for_each_file(
    archive: &[u8],
    mut visit: impl FnMut(&str, &mut dyn Read, u64) -> Result<()>,
) -> Result<()> {
    let limits = ArchiveLimits::default();
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    let mut long_name: Option<Vec<u8>> = None;
    for entry in raw_entries(&mut tar)? {
        let mut entry = entry.map_err(|e| unreadable("entry", e))?;
        let kind = entry.header().entry_type();
        let size = entry.header().size().map_err(|e| unreadable("entry", e))?;
        if kind == EntryType::GNULongName {
            long_name = Some(read_long_name(&mut entry, size, &limits)?);
            continue;
        }
        let raw = match long_name.take() {
            Some(name) => name,
            None => entry.path_bytes().into_owned(),
        };
        if kind != EntryType::Regular && kind != EntryType::Continuous {
            continue;
        }
        let path = String::from_utf8(raw)
            .map_err(|_| Error::invalid("archive", "entry", "has a path that is not UTF-8"))?;
        let Some((_top, inner)) = path.split_once('/') else {
            continue;
        };
        visit(inner, &mut entry, size)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_field_decides() {
        assert_eq!(choice("[package]\nname = \"a\"\n"), Choice::Conventional);
        assert_eq!(
            choice("[package]\nreadme = \"./docs/intro.md\"\n"),
            Choice::Named("docs/intro.md".into())
        );
        assert_eq!(choice("[package]\nreadme = false\n"), Choice::None);
        assert_eq!(choice("[package]\nreadme = true\n"), Choice::Conventional);
        assert_eq!(choice("not toml ["), Choice::Conventional);
    }

    #[test]
    fn markdown_is_told_by_the_extension() {
        let readme = |path: &str| Readme {
            path: path.into(),
            text: String::new(),
            size: 0,
            truncated: false,
        };
        assert!(readme("README.md").is_markdown());
        assert!(readme("docs/Intro.MARKDOWN").is_markdown());
        assert!(readme("README").is_markdown());
        assert!(!readme("README.txt").is_markdown());
    }
}
