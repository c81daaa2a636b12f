//! An install destination: the lock that keeps two installs into it apart, the journal that
//! makes an install all-or-nothing across its graph even when the process is killed, and the
//! repair of whatever an interrupted install left behind.
//!
//! An install stages every package, then writes the journal (the packages it is about to move
//! into place), moves them, writes the lockfile and removes the journal. Whoever opens the
//! destination next finds a journal only if that sequence was cut short: every journaled
//! package the lockfile does not record (with the same hash) is removed, as are staging
//! leftovers, and the install starts over from a destination as it was before.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use marketplace_core::{ContentHash, Error, PackageId, Result};
use marketplace_package::Lockfile;

/// The journal of an install in progress, inside the destination.
pub(crate) const JOURNAL: &str = ".marketplace-install.journal";
/// The file whose lock an install holds.
const LOCK: &str = ".marketplace-install.lock";
/// What `marketplace-package` names its staging directories.
const STAGING_PREFIX: &str = ".extract-";

fn io_error(what: String, e: std::io::Error) -> Error {
    Error::backend("filesystem", what, e, false)
}

/// One package an install is about to move into place.
pub(crate) struct Entry {
    pub(crate) id: PackageId,
    pub(crate) checksum: ContentHash,
    pub(crate) path: PathBuf,
}

/// A destination opened for one install; the lock is held until it is dropped.
pub(crate) struct Destination {
    root: PathBuf,
    lock: Option<File>,
    /// Whether this install created the destination directory (so it removes it again, with
    /// its lock file, if the install fails before anything was moved in).
    created: bool,
    completed: bool,
}

impl Destination {
    /// Creates `dest` if needed, takes its install lock (waiting, with a log line, while
    /// another install holds it), and repairs what an interrupted install left. Returns the
    /// destination and its lockfile.
    pub(crate) fn open(dest: &Path) -> Result<(Destination, Lockfile)> {
        let created = !dest.exists();
        fs::create_dir_all(dest).map_err(|e| io_error(format!("create {}", dest.display()), e))?;
        let lock_path = dest.join(LOCK);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error(format!("open {}", lock_path.display()), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                tracing::info!(destination = %dest.display(), "waiting for another install into this destination");
                lock.lock()
                    .map_err(|e| io_error(format!("lock {}", lock_path.display()), e))?;
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(io_error(format!("lock {}", lock_path.display()), e));
            }
        }
        let lockfile = Lockfile::read(dest)?.unwrap_or_default();
        let destination = Destination {
            root: dest.to_owned(),
            lock: Some(lock),
            created,
            completed: false,
        };
        destination.repair(&lockfile)?;
        Ok((destination, lockfile))
    }

    /// Removes what an interrupted install left: journaled packages the lockfile does not
    /// record with the same hash, then staging directories, then the journal.
    fn repair(&self, lockfile: &Lockfile) -> Result<()> {
        let journal = self.root.join(JOURNAL);
        match fs::read_to_string(&journal) {
            Ok(text) => {
                for line in text.lines() {
                    let mut fields = line.splitn(3, '\t');
                    let (Some(checksum), Some(id), Some(path)) =
                        (fields.next(), fields.next(), fields.next())
                    else {
                        continue;
                    };
                    let recorded = id
                        .parse::<PackageId>()
                        .ok()
                        .and_then(|id| lockfile.get(&id));
                    if recorded.is_some_and(|l| l.checksum.to_string() == checksum) {
                        continue;
                    }
                    let dir = self.root.join(path);
                    // Only ever below the destination: the journal is ours, but a path in it
                    // is checked like any other.
                    if !Path::new(path)
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)))
                    {
                        continue;
                    }
                    tracing::info!(path = %dir.display(), "removing a package an interrupted install left");
                    remove_dir(&dir)?;
                    if let Some(parent) = dir.parent().filter(|p| *p != self.root) {
                        let _ = fs::remove_dir(parent);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(format!("read {}", journal.display()), e)),
        }
        self.remove_staging()?;
        remove_file(&journal)
    }

    /// Staging directories in the destination and its namespace directories (where staging
    /// for `dest/ns/name-version` goes).
    fn remove_staging(&self) -> Result<()> {
        let mut dirs = vec![self.root.clone()];
        if let Ok(entries) = fs::read_dir(&self.root) {
            dirs.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        for dir in dirs {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(STAGING_PREFIX)
                {
                    remove_dir(&entry.path())?;
                }
            }
        }
        Ok(())
    }

    /// Records, durably, the packages about to be moved into place.
    pub(crate) fn begin(&self, entries: &[Entry]) -> Result<()> {
        let mut text = String::new();
        for entry in entries {
            let relative = entry.path.strip_prefix(&self.root).unwrap_or(&entry.path);
            text.push_str(&format!(
                "{}\t{}\t{}\n",
                entry.checksum,
                entry.id,
                relative.display()
            ));
        }
        let path = self.root.join(JOURNAL);
        let fail = |e| io_error(format!("write {}", path.display()), e);
        let mut file = tempfile::NamedTempFile::new_in(&self.root).map_err(fail)?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.as_file().sync_all())
            .map_err(fail)?;
        file.persist(&path).map_err(|e| fail(e.error))?;
        Ok(())
    }

    /// The install completed (lockfile written): the journal goes.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.completed = true;
        remove_file(&self.root.join(JOURNAL))
    }
}

impl Drop for Destination {
    /// An install that failed before moving anything in leaves a destination it created as it
    /// was: absent.
    fn drop(&mut self) {
        if self.completed || !self.created {
            return;
        }
        drop(self.lock.take());
        let journal = self.root.join(JOURNAL);
        if journal.exists() {
            return;
        }
        let _ = fs::remove_file(self.root.join(LOCK));
        let _ = fs::remove_dir(&self.root);
    }
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(format!("remove {}", dir.display()), e)),
    }
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(format!("remove {}", path.display()), e)),
    }
}
