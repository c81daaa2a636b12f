//! Downloading one version, and installing a package with its whole dependency graph.
//!
//! Install reads each node's metadata once (the resolver's graph carries it) and each archive
//! once: it is validated, hashed and unpacked into a staging directory in one pass, and the
//! staged packages are moved into place only when every one of them passed.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt as _;
use marketplace_core::semver::{Version, VersionReq};
use marketplace_core::{
    ByteStream, ContentHash, DependencyGraph, Error, GraphNode, PackageId, PackageMetadata,
    PackageRef, ResolveOptions, Result, TrustResult, YankInfo, is_exact_pin, verify_stream,
};
use marketplace_package::{LOCKFILE, LockedPackage, Lockfile, Staged};

use crate::client::{MarketplaceClient, blocking, install_dir};
use crate::destination::{Destination, Entry};
use crate::instrument::{PostHook, Refusal};

/// Archives of one install fetched at once, and downloads counted at once.
const FETCH_CONCURRENCY: usize = 8;

/// A downloaded, verified package.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Downloaded {
    /// Its metadata.
    pub metadata: PackageMetadata,
    /// The archive, whose hash and signature were checked.
    pub archive: Bytes,
}

/// A download on its way: the version's metadata, checked, and its archive as a stream of
/// chunks (see [`MarketplaceClient::download_stream`]).
#[non_exhaustive]
pub struct DownloadStream {
    /// Its metadata; `size` is the length the stream will have.
    pub metadata: PackageMetadata,
    /// The archive's bytes, verified as they pass: if they are not the bytes the signed
    /// checksum names, the last item is an `Integrity` error.
    pub body: ByteStream,
}

impl std::fmt::Debug for DownloadStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadStream")
            .field("metadata", &self.metadata.id)
            .finish_non_exhaustive()
    }
}

/// One package an install put into its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstalledPackage {
    /// The exact version.
    pub id: PackageId,
    /// The archive's content hash.
    pub checksum: ContentHash,
    /// Where it was extracted.
    pub path: PathBuf,
}

/// How an install holds the destination's lockfile (cargo's `--locked` and `--frozen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LockMode {
    /// Use the lockfile's graph when it has the package, else resolve and update it.
    #[default]
    Prefer,
    /// Resolve anew, whatever the lockfile holds for the package, and update the lockfile
    /// (an update: the newest versions the requirement and dependencies allow).
    Refresh,
    /// The lockfile must not change: it must already lock the package.
    Locked,
    /// [`LockMode::Locked`], and nothing fetched: every locked package already in place.
    Frozen,
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstallReport {
    /// The version of the requested package.
    pub root: PackageId,
    /// Packages extracted by this install, dependencies first.
    pub installed: Vec<InstalledPackage>,
    /// Packages of the graph that were already in place (same version and hash).
    pub already_present: Vec<PackageId>,
    /// Whether the versions came from the destination's lockfile instead of resolution.
    pub from_lockfile: bool,
    /// The lockfile written.
    pub lockfile: PathBuf,
    /// Versions of the graph that are yanked (chosen by an exact pin, or kept from the
    /// lockfile), with why and when: the graph installs, and says so.
    pub yanked: Vec<(PackageId, YankInfo)>,
    /// Newer versions of the requested package that its range allowed but that were passed
    /// over because their signer's key is revoked, newest first, each with the revocation: the
    /// root is the newest version whose signer's key is not.
    pub passed_over: Vec<(PackageId, String)>,
}

impl MarketplaceClient {
    /// Downloads one version: runs the `pre_download` hooks, checks the signature and trust,
    /// fetches the archive and checks its hash, then counts the download.
    ///
    /// Errors: `NotFound`, `Integrity` (tampered bytes), `Signature` (unsigned, wrongly
    /// signed, untrusted or revoked key), a plugin's error, `Backend`.
    pub async fn download(&self, id: &PackageId) -> Result<Downloaded> {
        let span = tracing::info_span!("marketplace.download", package = %id);
        self.flow("download", span, async {
            let metadata = self.get_checked("download", id).await?;
            self.pre_download_hooks(&metadata).await?;
            self.check_signature("download", &metadata).await?;
            let archive = self.fetch_checked("download", &metadata).await?;
            self.record_download(&metadata.id).await;
            self.add_bytes("downloaded", archive.len());
            self.post_hooks(PostHook::Download, &metadata, &archive)
                .await;
            Ok(Downloaded { metadata, archive })
        })
        .await
    }

    /// [`MarketplaceClient::download`] without holding the archive: the same checks before a
    /// byte is sent (identity, the plugins' `pre_download` vetoes, the author's signature and
    /// the key's trust), the download counted when the stream is opened, and the bytes hashed
    /// as they stream (a mismatch ends the stream with an `Integrity` error, so a reader that
    /// reads to the end never accepts bad data). For servers handing archives on.
    ///
    /// With plugins, whose `post_download` hooks see the whole archive, this reads it whole
    /// first (as `download` does) and streams it from memory.
    ///
    /// Errors: as `download`, for everything checked before the stream is returned.
    pub async fn download_stream(&self, id: &PackageId) -> Result<DownloadStream> {
        if !self.plugins.is_empty() {
            let Downloaded { metadata, archive } = self.download(id).await?;
            let body: ByteStream = Box::pin(futures_util::stream::once(async move { Ok(archive) }));
            return Ok(DownloadStream { metadata, body });
        }
        let span = tracing::info_span!("marketplace.download", package = %id, streamed = true);
        self.flow("download", span, async {
            let metadata = self.get_checked("download", id).await?;
            self.check_signature("download", &metadata).await?;
            let stream = match self
                .call("store", "stream", true, || {
                    self.store.stream(&metadata.checksum)
                })
                .await
            {
                Ok(stream) => stream,
                Err(Error::NotFound { .. }) => return Err(self.missing_archive(&metadata)),
                Err(e) => return Err(e),
            };
            // The client's own check: it does not rely on the store's.
            let body = verify_stream(
                stream,
                metadata.checksum.clone(),
                format!("the download of {}", metadata.id),
            )?;
            self.record_download(&metadata.id).await;
            self.add_bytes("downloaded", metadata.size as usize);
            Ok(DownloadStream { metadata, body })
        })
        .await
    }

    async fn record_download(&self, id: &PackageId) {
        if self.read_only {
            // A read-only home counts nothing.
            return;
        }
        if let Err(e) = self
            .call("registry", "record_download", false, || {
                self.registry.record_download(id)
            })
            .await
        {
            tracing::warn!(package = %id, error = %e, "download not counted");
        }
    }

    /// Installs the highest version of `package` matching `requirement`, with its whole
    /// dependency graph, into `dest` (created if needed): each package goes to
    /// `dest/name-version` (or `dest/namespace/name-version`) and `dest/marketplace.lock`
    /// records exact versions and hashes.
    ///
    /// If the lockfile already holds a version of `package` that matches `requirement`, its
    /// locked graph is installed instead of resolving again, and an archive whose hash
    /// differs from the locked one is refused. Every package of the graph is fetched and
    /// verified (hash, signature, trust, archive rules, plugin policy) before anything is
    /// written, so a refusal leaves `dest` as it was; packages already in place with the
    /// locked hash are skipped.
    ///
    /// Errors: `NotFound` (no such package, or no version matches — the message says when
    /// only yanked versions do), `Conflict` (unsatisfiable dependencies), `Integrity`,
    /// `Signature`, `Invalid` (archive rules), a plugin's error, `Backend`.
    pub async fn install(
        &self,
        package: &PackageRef,
        requirement: &VersionReq,
        dest: &Path,
    ) -> Result<InstallReport> {
        self.install_with(package, requirement, dest, LockMode::Prefer)
            .await
    }

    /// [`MarketplaceClient::install`], holding the destination's lockfile as `mode` says: with
    /// [`LockMode::Locked`] the lockfile must already hold a version of `package` matching
    /// `requirement` (its locked graph is installed and the lockfile does not change); with
    /// [`LockMode::Frozen`] every package of that graph must also be in place already, so
    /// nothing is fetched. Otherwise `Invalid` (field `lockfile`) says what would change, and
    /// `dest` is left as it was.
    pub async fn install_with(
        &self,
        package: &PackageRef,
        requirement: &VersionReq,
        dest: &Path,
        mode: LockMode,
    ) -> Result<InstallReport> {
        let span = tracing::info_span!("marketplace.install", package = %package, requirement = %requirement);
        self.flow(
            "install",
            span,
            self.install_inner(package, requirement, dest, mode),
        )
        .await
    }

    async fn install_inner(
        &self,
        package: &PackageRef,
        requirement: &VersionReq,
        dest: &Path,
        mode: LockMode,
    ) -> Result<InstallReport> {
        // An existing destination is locked for this install, and repaired if an earlier one
        // was interrupted, before anything is read from it; a new one is created (and locked)
        // only when there is something to put in it.
        let mut destination = None;
        let mut lock = Lockfile::default();
        if dest.is_dir() {
            let (opened, read) = open_destination(dest).await?;
            destination = Some(opened);
            lock = read;
        }
        // 1. Which versions: the lockfile's, or a fresh resolution.
        let locked = lock
            .root_for(package)
            .filter(|_| mode != LockMode::Refresh)
            .filter(|root| requirement.matches(&root.version))
            .and_then(|root| Some((root.clone(), lock.graph_of(root)?)));
        let from_lockfile = locked.is_some();
        if matches!(mode, LockMode::Locked | LockMode::Frozen) && !from_lockfile {
            return Err(Error::invalid(
                "lockfile",
                dest.join(LOCKFILE).display().to_string(),
                format!(
                    "holds no version of {package} matching {requirement}, so installing it would change the lockfile (refused: the lockfile is {})",
                    if mode == LockMode::Frozen {
                        "frozen"
                    } else {
                        "locked"
                    }
                ),
            ));
        }
        let mut passed_over = Vec::new();
        let graph = match locked {
            Some((root, locked)) => self.locked_graph(root, locked).await?,
            None => {
                self.resolve_graph("install", package, requirement, &mut passed_over)
                    .await?
            }
        };
        // 2. Verify and stage everything before writing anything to `dest`.
        let mut staged: Vec<(&PackageMetadata, Staged)> = Vec::new();
        let mut wanted = Vec::new();
        let mut already_present = Vec::new();
        for id in graph.install_order() {
            let Some(metadata) = graph.metadata_of(&id) else {
                continue;
            };
            let target = install_dir(dest, &id);
            let in_place = lock
                .get(&id)
                .is_some_and(|l| l.checksum == metadata.checksum)
                && target.is_dir();
            if in_place {
                already_present.push(id);
                continue;
            }
            if mode == LockMode::Frozen {
                return Err(Error::invalid(
                    "lockfile",
                    dest.join(LOCKFILE).display().to_string(),
                    format!(
                        "locks {id}, which is not in place in {} with its locked hash, and a frozen install fetches nothing",
                        dest.display()
                    ),
                ));
            }
            self.pre_download_hooks(metadata).await?;
            self.check_signature("install", metadata).await?;
            wanted.push((metadata, target));
        }
        // Every archive checked so far is fetched a few at a time (over a network each waits
        // mostly on its round trip), then staged in order; any failure ends the install
        // before anything is written.
        let fetches: Vec<_> = wanted
            .iter()
            .map(|(metadata, _)| self.fetch("install", metadata))
            .collect();
        let mut fetched = futures_util::stream::iter(fetches).buffered(FETCH_CONCURRENCY);
        for (metadata, target) in wanted {
            let archive = match fetched.next().await {
                Some(archive) => archive?,
                None => break,
            };
            if destination.is_none() {
                destination = Some(open_destination(dest).await?.0);
            }
            let package = self
                .stage_checked("install", metadata, archive, target)
                .await?;
            staged.push((metadata, package));
        }
        drop(fetched);
        // 3. Journal, then move every staged package into place; on a failure, remove what this
        //    install moved (and should the process die meanwhile, the journal lets the next
        //    install do it).
        let entries: Vec<Entry> = staged
            .iter()
            .map(|(metadata, package)| Entry {
                id: metadata.id.clone(),
                checksum: metadata.checksum.clone(),
                path: package.dest().to_owned(),
            })
            .collect();
        let (metadata, packages): (Vec<&PackageMetadata>, Vec<Staged>) = staged.into_iter().unzip();
        let destination = match destination {
            Some(destination) => destination,
            // Everything was in place already; the lockfile is still rewritten.
            None => open_destination(dest).await?.0,
        };
        let dest_owned = dest.to_owned();
        let (destination, committed) = blocking("extract packages", move || {
            destination.begin(&entries)?;
            let committed = commit_all(packages, &dest_owned)?;
            Ok((destination, committed))
        })
        .await?;
        // 4. Count (a few at a time), hook, lock.
        let counts: Vec<_> = metadata
            .iter()
            .map(|m| self.record_download(&m.id))
            .collect();
        futures_util::stream::iter(counts)
            .buffer_unordered(FETCH_CONCURRENCY)
            .collect::<Vec<()>>()
            .await;
        let mut installed = Vec::with_capacity(committed.len());
        for (metadata, (path, archive)) in metadata.into_iter().zip(committed) {
            self.post_hooks(PostHook::Download, metadata, &archive)
                .await;
            self.add_bytes("downloaded", archive.len());
            installed.push(InstalledPackage {
                id: metadata.id.clone(),
                checksum: metadata.checksum.clone(),
                path,
            });
        }
        let locked_packages = graph.nodes.iter().map(|(id, node)| LockedPackage {
            id: id.clone(),
            checksum: node.metadata.checksum.clone(),
            dependencies: node.dependencies.clone(),
        });
        lock.record(graph.root.clone(), locked_packages);
        let lock_dest = dest.to_owned();
        blocking("write the lockfile", move || {
            lock.write(&lock_dest)?;
            destination.finish()
        })
        .await?;
        let yanked = graph
            .nodes
            .iter()
            .filter_map(|(id, node)| Some((id.clone(), node.yanked.clone()?)))
            .collect();
        Ok(InstallReport {
            root: graph.root,
            installed,
            already_present,
            from_lockfile,
            lockfile: dest.join(LOCKFILE),
            yanked,
            passed_over,
        })
    }

    /// The locked graph of `root`, with each node's metadata and yank state read once from the
    /// registry (a locked version may have been yanked since); a registered hash that differs
    /// from the locked one is refused.
    async fn locked_graph(
        &self,
        root: PackageId,
        locked: std::collections::BTreeMap<PackageId, LockedPackage>,
    ) -> Result<DependencyGraph> {
        let mut nodes = std::collections::BTreeMap::new();
        for (id, locked) in locked {
            let metadata = self.get_checked("install", &id).await?;
            if metadata.checksum != locked.checksum {
                return Err(self.refused(
                    "install",
                    Refusal::Checksum,
                    Error::integrity(
                        format!("{id} (locked in {LOCKFILE})"),
                        &locked.checksum,
                        &metadata.checksum,
                    ),
                ));
            }
            let yanked = self.yank_of(&id).await?;
            nodes.insert(
                id,
                GraphNode::new(metadata, locked.dependencies).with_yank(yanked),
            );
        }
        Ok(DependencyGraph::new(root, nodes))
    }

    /// The whole dependency graph an install of `package` at `requirement` would put in place
    /// (under this client's resolution policy), nothing fetched or written: the root is the
    /// highest version matching that is not yanked (a yanked one only by exact pin).
    ///
    /// Errors: `NotFound` (no such package, or no version matches — the message says when
    /// only yanked versions do), `Conflict` (unsatisfiable dependencies), `Backend`.
    pub async fn resolve(
        &self,
        package: &PackageRef,
        requirement: &VersionReq,
    ) -> Result<DependencyGraph> {
        let span = tracing::info_span!("marketplace.resolve", package = %package, requirement = %requirement);
        self.flow(
            "resolve",
            span,
            self.resolve_graph("resolve", package, requirement, &mut Vec::new()),
        )
        .await
    }

    async fn resolve_graph(
        &self,
        flow: &'static str,
        package: &PackageRef,
        requirement: &VersionReq,
        passed_over: &mut Vec<(PackageId, String)>,
    ) -> Result<DependencyGraph> {
        let mut root = self.resolve_root(package, requirement).await?;
        let mut first = None;
        let mut candidates: Option<Vec<Version>> = None;
        loop {
            let graph = self
                .call("registry", "resolve_dependencies", true, || {
                    self.registry.resolve_dependencies(
                        &root,
                        ResolveOptions::TRANSITIVE.with_policy(self.resolution),
                    )
                })
                .await?;
            self.check_graph(flow, &root, &graph)?;
            // A range passes over a version whose signer's key was revoked since, to the
            // newest version whose signer's key is not; an exact pin means that version.
            let revoked = match graph.metadata_of(&root).and_then(|m| m.signature.as_ref()) {
                Some(signature) if !is_exact_pin(requirement) => {
                    let key_id = signature.key_id();
                    let trust = self
                        .call("crypto", "verify_trust", true, || {
                            self.crypto.verify_trust(&key_id)
                        })
                        .await?;
                    matches!(trust, TrustResult::Revoked { .. }).then(|| trust.to_string())
                }
                _ => None,
            };
            let Some(revocation) = revoked else {
                return Ok(graph);
            };
            passed_over.push((root.clone(), revocation));
            first.get_or_insert(graph);
            if candidates.is_none() {
                let states = self
                    .call("registry", "list_version_states", true, || {
                        self.registry.list_version_states(package)
                    })
                    .await?;
                candidates = Some(
                    states
                        .into_iter()
                        .filter(|s| !s.is_yanked() && requirement.matches(&s.version))
                        .map(|s| s.version)
                        .collect(),
                );
            }
            let below = candidates
                .iter()
                .flatten()
                .filter(|v| **v < root.version)
                .max()
                .cloned();
            match below {
                Some(version) => root = package.at(version),
                // Every candidate's signer is revoked: the newest, whose install then fails
                // naming the revocation.
                None => {
                    passed_over.clear();
                    return first.ok_or_else(|| {
                        Error::not_found(format!("a version of {package} matching {requirement}"))
                    });
                }
            }
        }
    }

    /// The version to install: the highest match that is not yanked (yanked only by exact
    /// pin). `NotFound` says when the package is unknown and when only yanked versions match.
    async fn resolve_root(
        &self,
        package: &PackageRef,
        requirement: &VersionReq,
    ) -> Result<PackageId> {
        if let Some(id) = self
            .call("registry", "resolve_version", true, || {
                self.registry.resolve_version(package, requirement)
            })
            .await?
        {
            return Ok(id);
        }
        let states = self
            .call("registry", "list_version_states", true, || {
                self.registry.list_version_states(package)
            })
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::not_found(format!("package {package}")),
                e => e,
            })?;
        let yanked: Vec<String> = states
            .iter()
            .filter(|s| requirement.matches(&s.version))
            .filter_map(|s| {
                let yank = s.yanked.as_ref()?;
                Some(format!("{} ({})", s.version, yank.reason))
            })
            .collect();
        Err(if yanked.is_empty() {
            Error::not_found(format!("a version of {package} matching {requirement}"))
        } else {
            Error::not_found(format!(
                "a version of {package} matching {requirement} that is not yanked (yanked: {}; pin one with =VERSION to use it)",
                yanked.join(", ")
            ))
        })
    }
}

async fn open_destination(dest: &Path) -> Result<(Destination, Lockfile)> {
    let dest = dest.to_owned();
    blocking("open the destination", move || Destination::open(&dest)).await
}

/// Commits staged packages in order; on a failure removes the ones already committed (and a
/// namespace directory this left empty) and returns the error. Returns each package's path and
/// archive.
fn commit_all(packages: Vec<Staged>, dest: &Path) -> Result<Vec<(PathBuf, Bytes)>> {
    let mut done: Vec<(PathBuf, Bytes)> = Vec::with_capacity(packages.len());
    for package in packages {
        let path = package.dest().to_owned();
        match package.commit() {
            Ok(inspected) => done.push((path, inspected.archive().clone())),
            Err(e) => {
                for (dir, _) in &done {
                    let _ = std::fs::remove_dir_all(dir);
                    if let Some(parent) = dir.parent().filter(|p| *p != dest) {
                        let _ = std::fs::remove_dir(parent);
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(done)
}

/// Removes what installing `package` into `dest` put there: its directory, and those of
/// its dependencies no other installed package needs; the lockfile is rewritten first, so
/// an interrupted uninstall leaves at most directories the lockfile no longer names.
/// Needs no marketplace: only the destination and its lockfile. Returns the packages
/// removed, the root first. Errors: `NotFound` when `dest` has no
/// lockfile or its lockfile does not list `package` as installed on request (nothing is
/// changed or created), `Backend`.
pub async fn uninstall(package: &PackageRef, dest: &Path) -> Result<Vec<PackageId>> {
    use tracing::Instrument as _;
    let span = tracing::info_span!("marketplace.uninstall", package = %package);
    async {
        let lockfile = dest.join(LOCKFILE);
        if !lockfile.is_file() {
            return Err(Error::not_found(format!(
                "{} (nothing is installed in {})",
                lockfile.display(),
                dest.display()
            )));
        }
        let (destination, mut lock) = open_destination(dest).await?;
        let Some((root, mut removed)) = lock.remove_root(package) else {
            let roots: Vec<String> = lock.roots.iter().map(ToString::to_string).collect();
            return Err(Error::not_found(format!(
                "package {package} installed in {} (installed on request: {})",
                dest.display(),
                if roots.is_empty() {
                    "none".to_owned()
                } else {
                    roots.join(", ")
                }
            )));
        };
        removed.sort_by_key(|id| *id != root);
        let dest = dest.to_owned();
        let gone = removed.clone();
        blocking("uninstall packages", move || {
            lock.write(&dest)?;
            for id in &gone {
                let dir = install_dir(&dest, id);
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::backend(
                            "filesystem",
                            format!("remove {}", dir.display()),
                            e,
                            false,
                        ));
                    }
                }
                // A namespace directory left empty goes too.
                if let Some(parent) = dir.parent().filter(|p| *p != dest) {
                    let _ = std::fs::remove_dir(parent);
                }
            }
            Ok(())
        })
        .await?;
        drop(destination);
        Ok(removed)
    }
    .instrument(span)
    .await
}
