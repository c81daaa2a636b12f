//! The lockfile an install writes into its destination: exact versions and hashes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::path::Path;

use marketplace_core::{ContentHash, Error, PackageId, PackageRef, Result};
use serde::{Deserialize, Serialize};

/// The lockfile's name inside an install destination.
pub const LOCKFILE: &str = "marketplace.lock";

const FORMAT_VERSION: u32 = 1;

/// What was installed into a destination: the packages asked for (roots) and every package of
/// their graphs with its archive hash and resolved dependencies.
///
/// The next install of a root into the same destination uses the locked versions (if they
/// still satisfy the requirement) instead of resolving again, and refuses an archive whose hash
/// differs from the locked one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockfile {
    /// Format version (1).
    pub version: u32,
    /// The packages installed on request.
    #[serde(default)]
    pub roots: BTreeSet<PackageId>,
    /// Every installed package.
    #[serde(default, rename = "package")]
    pub packages: Vec<LockedPackage>,
}

/// One locked package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedPackage {
    /// The exact version.
    pub id: PackageId,
    /// The archive's content hash.
    pub checksum: ContentHash,
    /// Its resolved direct dependencies.
    #[serde(default)]
    pub dependencies: Vec<PackageId>,
}

impl Lockfile {
    /// Reads the lockfile of `dest`; `None` if there is none. `Invalid` if it cannot be parsed.
    pub fn read(dest: &Path) -> Result<Option<Self>> {
        let path = dest.join(LOCKFILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::backend(
                    "filesystem",
                    format!("read {}", path.display()),
                    e,
                    false,
                ));
            }
        };
        let lock: Lockfile = toml::from_str(&text).map_err(|e| {
            Error::invalid(
                path.display().to_string(),
                text.lines().next().unwrap_or(""),
                format!("is not a valid lockfile: {}", e.message()),
            )
        })?;
        if lock.version != FORMAT_VERSION {
            return Err(Error::invalid(
                path.display().to_string(),
                format!("version = {}", lock.version),
                format!("this client reads lockfile version {FORMAT_VERSION}"),
            ));
        }
        Ok(Some(lock))
    }

    /// Writes the lockfile into `dest` atomically (temporary file, fsync, rename).
    pub fn write(&self, dest: &Path) -> Result<()> {
        let fail = |e: std::io::Error| {
            Error::backend(
                "filesystem",
                format!("write {}", dest.join(LOCKFILE).display()),
                e,
                false,
            )
        };
        let text = toml::to_string(self)
            .map_err(|e| Error::backend("toml", "serialize the lockfile", e, false))?;
        let mut file = tempfile::NamedTempFile::new_in(dest).map_err(fail)?;
        file.write_all(b"# Written by marketplace install. Exact versions and archive hashes.\n")
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.as_file().sync_all())
            .map_err(fail)?;
        file.persist(dest.join(LOCKFILE))
            .map_err(|e| fail(e.error))?;
        Ok(())
    }

    /// The locked package with this exact id.
    pub fn get(&self, id: &PackageId) -> Option<&LockedPackage> {
        self.packages.iter().find(|p| &p.id == id)
    }

    /// The locked root for `package`, if any.
    pub fn root_for(&self, package: &PackageRef) -> Option<&PackageId> {
        let key = package.canonical();
        self.roots.iter().find(|r| r.package().canonical() == key)
    }

    /// The locked graph of `root`: every package reachable from it, with its dependencies.
    /// `None` if a package of the graph is missing from the lockfile.
    pub fn graph_of(&self, root: &PackageId) -> Option<BTreeMap<PackageId, LockedPackage>> {
        let mut graph = BTreeMap::new();
        let mut pending = vec![root.clone()];
        while let Some(id) = pending.pop() {
            if graph.contains_key(&id) {
                continue;
            }
            let locked = self.get(&id)?;
            pending.extend(locked.dependencies.iter().cloned());
            graph.insert(id, locked.clone());
        }
        Some(graph)
    }

    /// Records `root` and its graph, replacing any other root of the same package. Packages
    /// no root reaches any more are dropped from the lock (their directories stay).
    pub fn record(&mut self, root: PackageId, graph: impl IntoIterator<Item = LockedPackage>) {
        self.version = FORMAT_VERSION;
        let key = root.package().canonical();
        self.roots.retain(|r| r.package().canonical() != key);
        self.roots.insert(root);
        for package in graph {
            match self.packages.iter_mut().find(|p| p.id == package.id) {
                Some(existing) => *existing = package,
                None => self.packages.push(package),
            }
        }
        self.drop_unreachable();
        self.packages.sort_by(|a, b| a.id.cmp(&b.id));
    }

    /// Removes the root for `package` and every package no other root reaches; returns that
    /// root and the packages removed (the root among them), or `None` when `package` is not
    /// a root here.
    pub fn remove_root(&mut self, package: &PackageRef) -> Option<(PackageId, Vec<PackageId>)> {
        let root = self.root_for(package)?.clone();
        self.roots.remove(&root);
        Some((root, self.drop_unreachable()))
    }

    /// Drops the packages no root reaches; returns their ids.
    fn drop_unreachable(&mut self) -> Vec<PackageId> {
        let mut reachable = BTreeSet::new();
        for root in &self.roots {
            if let Some(graph) = self.graph_of(root) {
                reachable.extend(graph.into_keys());
            }
        }
        let mut dropped = Vec::new();
        self.packages.retain(|p| {
            let keep = reachable.contains(&p.id);
            if !keep {
                dropped.push(p.id.clone());
            }
            keep
        });
        dropped
    }
}
