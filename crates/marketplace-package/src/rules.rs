//! The archive rules, checked entry by entry: one checker serves packing and reading, so both
//! apply exactly the same rules.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use marketplace_core::{Error, Result};

use crate::limits::ArchiveLimits;

/// An `Invalid` error about one entry.
pub(crate) fn rule(entry: &str, rule: impl Into<String>) -> Error {
    Error::invalid(format!("archive entry {entry:?}"), entry, rule)
}

/// The proper ancestors of a `/`-separated path, longest first (`a/b/c` → `a/b`, `a`).
fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices()
        .rev()
        .filter(|(_, c)| *c == '/')
        .map(move |(i, _)| &path[..i])
}

/// What an entry is, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Directory,
    File,
    Symlink,
    HardLink,
    /// Anything else (devices, FIFOs, …), named for the message.
    Other(&'static str),
}

/// Running state of the rules over one archive.
pub(crate) struct Checker<'a> {
    limits: &'a ArchiveLimits,
    top: Option<String>,
    /// File paths (inside the top-level directory) seen so far.
    files: BTreeSet<String>,
    /// Directory paths seen so far: explicit directory entries and every file's parents.
    dirs: BTreeSet<String>,
    entries: usize,
    unpacked: u64,
    longest_path: usize,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(limits: &'a ArchiveLimits) -> Self {
        Checker {
            limits,
            top: None,
            files: BTreeSet::new(),
            dirs: BTreeSet::new(),
            entries: 0,
            unpacked: 0,
            longest_path: 0,
        }
    }

    /// Counts one header against the entry limit (extension headers count too).
    pub(crate) fn count_header(&mut self) -> Result<()> {
        if self.entries >= self.limits.max_entries {
            return Err(Error::invalid(
                "archive",
                format!("{} entries", self.entries + 1),
                format!("has more than {} entries", self.limits.max_entries),
            ));
        }
        self.entries += 1;
        Ok(())
    }

    /// Checks the next entry's path, kind and announced size. Returns the path inside the
    /// top-level directory for a file, `None` for a directory (which carries no data).
    ///
    /// What extraction could not do is refused here, so that an archive that passes unpacks:
    /// a path given twice, a file where a directory is (or will be) and the reverse, in either
    /// order, a directory entry carrying data.
    pub(crate) fn entry(
        &mut self,
        raw: &[u8],
        kind: EntryKind,
        size: u64,
    ) -> Result<Option<String>> {
        self.count_header()?;
        let shown = String::from_utf8_lossy(raw);
        // What an entry is decides before where it is: a refused kind is named as such.
        match kind {
            EntryKind::Directory | EntryKind::File => {}
            EntryKind::Symlink => {
                return Err(rule(&shown, "is a symbolic link; links are not allowed"));
            }
            EntryKind::HardLink => {
                return Err(rule(&shown, "is a hard link; links are not allowed"));
            }
            EntryKind::Other(what) => {
                return Err(rule(
                    &shown,
                    format!("has entry type {what}; only files and directories are allowed"),
                ));
            }
        }
        let (top, inner) = self.split_path(raw, &shown)?;
        match &self.top {
            None => self.top = Some(top),
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
        if kind == EntryKind::Directory {
            if size > 0 {
                return Err(rule(
                    &shown,
                    format!("is a directory entry carrying {size} bytes of data"),
                ));
            }
            if self.files.contains(&inner) {
                return Err(rule(&shown, "is a directory with the path of a file"));
            }
            self.add_dirs(&inner, true);
            return Ok(None);
        }
        if inner.is_empty() {
            return Err(rule(
                &shown,
                "is a file at the top level; files must be inside the top-level directory",
            ));
        }
        if self.files.contains(&inner) {
            return Err(rule(&shown, "appears twice in the archive"));
        }
        if self.dirs.contains(&inner) {
            return Err(rule(&shown, "is a file with the path of a directory"));
        }
        if let Some(parent) = parents(&inner).find(|p| self.files.contains(*p)) {
            return Err(rule(
                &shown,
                format!("is under {parent:?}, which is a file"),
            ));
        }
        self.add_dirs(&inner, false);
        self.files.insert(inner.clone());
        Ok(Some(inner))
    }

    /// Records the directories a path implies: its parents, and itself when it is one.
    fn add_dirs(&mut self, inner: &str, itself: bool) {
        if itself && !inner.is_empty() {
            self.dirs.insert(inner.to_owned());
        }
        for parent in parents(inner) {
            self.dirs.insert(parent.to_owned());
        }
    }

    /// How many more bytes may be unpacked.
    pub(crate) fn budget(&self) -> u64 {
        self.limits.max_unpacked.saturating_sub(self.unpacked)
    }

    /// Refuses an entry whose announced size is over the remaining budget, before any of it is
    /// read.
    pub(crate) fn announce(&self, shown: &str, size: u64) -> Result<()> {
        if size > self.budget() {
            return Err(self.over_budget(shown));
        }
        Ok(())
    }

    /// Counts the bytes actually read for an entry (not the size its header claims).
    pub(crate) fn unpacked(&mut self, shown: &str, size: u64) -> Result<()> {
        self.unpacked += size;
        if self.unpacked > self.limits.max_unpacked {
            return Err(self.over_budget(shown));
        }
        Ok(())
    }

    fn over_budget(&self, shown: &str) -> Error {
        rule(
            shown,
            format!("unpacks past the {} byte limit", self.limits.max_unpacked),
        )
    }

    /// The top-level directory, once an entry was seen.
    pub(crate) fn top(&self) -> Option<&str> {
        self.top.as_deref()
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    pub(crate) fn unpacked_size(&self) -> u64 {
        self.unpacked
    }

    pub(crate) fn longest_path(&self) -> usize {
        self.longest_path
    }

    /// Checks one entry path and splits off the top-level directory.
    fn split_path(&mut self, raw: &[u8], shown: &str) -> Result<(String, String)> {
        if raw.contains(&0) {
            return Err(rule(shown, "path contains a NUL byte"));
        }
        let text = std::str::from_utf8(raw).map_err(|_| rule(shown, "path is not UTF-8"))?;
        if text.len() > self.limits.max_path_len {
            return Err(rule(
                shown,
                format!("path is longer than {} bytes", self.limits.max_path_len),
            ));
        }
        self.longest_path = self.longest_path.max(text.len());
        let mut parts = Vec::new();
        for component in Path::new(text).components() {
            match component {
                Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
                Component::CurDir => {}
                Component::ParentDir => return Err(rule(shown, "path contains `..`")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(rule(shown, "path is absolute"));
                }
            }
        }
        if text.contains('\\') {
            return Err(rule(shown, "path contains a backslash"));
        }
        let Some((top, rest)) = parts.split_first() else {
            return Err(rule(shown, "path is empty"));
        };
        Ok((top.clone(), rest.join("/")))
    }
}
