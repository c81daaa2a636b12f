//! Auditing an install destination: its lockfile and installed files held against what the
//! marketplace says now (yanks, revoked or untrusted keys, archive hashes), and the files on
//! disk against the verified archives.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use marketplace_core::{Error, ErrorKind, PackageId, Result};
use marketplace_package::{Inspected, LOCKFILE, Lockfile, extract};

use crate::client::{MarketplaceClient, blocking, install_dir};

/// What is wrong with one installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The version was yanked since it was installed.
    Yanked,
    /// The marketplace no longer holds the version.
    Missing,
    /// The registry's archive hash is not the locked one.
    HashChanged {
        /// What the lockfile says.
        locked: String,
        /// What the registry says now.
        registered: String,
    },
    /// The signature does not verify now (the key was revoked, is not trusted, or the
    /// signature or archive is bad); the error says which.
    Verification(String),
    /// The package's directory is missing from the destination.
    NotInstalled,
    /// Files on disk differ from the verified archive: changed, missing or added, by path.
    FilesDiffer {
        /// Files whose bytes differ.
        changed: Vec<String>,
        /// Files of the archive missing on disk.
        missing: Vec<String>,
        /// Files on disk the archive does not have.
        added: Vec<String>,
    },
}

/// One finding of an audit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// The locked package.
    pub id: PackageId,
    /// What is wrong.
    pub problem: Problem,
}

/// What [`MarketplaceClient::audit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditReport {
    /// How many locked packages were checked.
    pub checked: usize,
    /// What is wrong, by package, in lockfile order.
    pub findings: Vec<Finding>,
}

impl MarketplaceClient {
    /// Audits the install destination `dest`: for every package its lockfile names, whether
    /// the version still exists with the locked hash, is yanked, and verifies now (signature,
    /// the signer's trust and revocation, the stored archive's hash and rules), and whether
    /// the files in its directory are byte for byte the verified archive's. Nothing is
    /// changed (downloads are not counted). Errors: `NotFound` when `dest` has no lockfile,
    /// `Invalid` for a lockfile that cannot be read, `Backend`.
    pub async fn audit(&self, dest: &Path) -> Result<AuditReport> {
        let span = tracing::info_span!("marketplace.audit", dest = %dest.display());
        self.flow("audit", span, async {
            let lock = Lockfile::read(dest)?.ok_or_else(|| {
                Error::not_found(format!(
                    "{} (nothing is installed in {})",
                    dest.join(LOCKFILE).display(),
                    dest.display()
                ))
            })?;
            let mut findings = Vec::new();
            for locked in &lock.packages {
                let id = &locked.id;
                let finding = |problem| Finding {
                    id: id.clone(),
                    problem,
                };
                let metadata = match self.get_checked("audit", id).await {
                    Ok(metadata) => metadata,
                    Err(Error::NotFound { .. }) => {
                        findings.push(finding(Problem::Missing));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if metadata.checksum != locked.checksum {
                    findings.push(finding(Problem::HashChanged {
                        locked: locked.checksum.to_string(),
                        registered: metadata.checksum.to_string(),
                    }));
                    continue;
                }
                let yanked = self
                    .call("registry", "is_yanked", true, || {
                        self.registry.is_yanked(id)
                    })
                    .await?;
                if yanked {
                    findings.push(finding(Problem::Yanked));
                }
                let verified = async {
                    self.check_signature("audit", &metadata).await?;
                    let archive = self.fetch_checked("audit", &metadata).await?;
                    self.inspect_checked("audit", &metadata, archive).await
                }
                .await;
                let inspected = match verified {
                    Ok(inspected) => inspected,
                    Err(e) if e.kind() == ErrorKind::Backend => return Err(e),
                    Err(e) => {
                        findings.push(finding(Problem::Verification(e.to_string())));
                        continue;
                    }
                };
                let dir = install_dir(dest, id);
                if !dir.is_dir() {
                    findings.push(finding(Problem::NotInstalled));
                    continue;
                }
                if let Some(problem) =
                    blocking("compare installed files", move || compare(&inspected, &dir)).await?
                {
                    findings.push(finding(problem));
                }
            }
            Ok(AuditReport {
                checked: lock.packages.len(),
                findings,
            })
        })
        .await
    }
}

/// The files of `dir` against the archive's, extracted into a scratch directory: `None` when
/// they are the same, byte for byte.
fn compare(inspected: &Inspected, dir: &Path) -> Result<Option<Problem>> {
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::backend("filesystem", "make a scratch directory", e, false))?;
    let expected = scratch.path().join("package");
    extract(inspected, &expected)?;
    let want = files_under(&expected)?;
    let have = files_under(dir)?;
    let mut changed = Vec::new();
    for path in want.intersection(&have) {
        let read = |root: &Path| {
            std::fs::read(root.join(path)).map_err(|e| {
                Error::backend(
                    "filesystem",
                    format!("read {}", root.join(path).display()),
                    e,
                    false,
                )
            })
        };
        if read(&expected)? != read(dir)? {
            changed.push(path.clone());
        }
    }
    let missing: Vec<String> = want.difference(&have).cloned().collect();
    let added: Vec<String> = have.difference(&want).cloned().collect();
    if changed.is_empty() && missing.is_empty() && added.is_empty() {
        return Ok(None);
    }
    Ok(Some(Problem::FilesDiffer {
        changed,
        missing,
        added,
    }))
}

/// Every regular file under `root`, as `/`-separated paths relative to it.
fn files_under(root: &Path) -> Result<BTreeSet<String>> {
    let mut files = BTreeSet::new();
    let mut pending: Vec<PathBuf> = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            Error::backend("filesystem", format!("read {}", dir.display()), e, false)
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                Error::backend("filesystem", format!("read {}", dir.display()), e, false)
            })?;
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(root) {
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                files.insert(parts.join("/"));
            }
        }
    }
    Ok(files)
}
