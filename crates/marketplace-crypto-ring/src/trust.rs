//! The trust store: trusted keys with levels, revocations with reason and time, persisted to a
//! JSON file atomically (temporary file in the same directory, fsync, rename, fsync directory).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use marketplace_core::time::OffsetDateTime;
use marketplace_core::{KeyId, PublicKey, TrustLevel, TrustResult, TrustedKey};
use serde::{Deserialize, Serialize};

use crate::error::RingError;

/// Version of the file format.
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    key_id: KeyId,
    public_key: Option<PublicKey>,
    trusted: Option<Trusted>,
    revoked: Option<Revoked>,
}

impl Entry {
    fn new(key_id: KeyId) -> Self {
        Entry {
            key_id,
            public_key: None,
            trusted: None,
            revoked: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Trusted {
    level: TrustLevel,
    #[serde(with = "marketplace_core::time::serde::rfc3339")]
    since: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Revoked {
    reason: String,
    #[serde(with = "marketplace_core::time::serde::rfc3339")]
    at: OffsetDateTime,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    keys: Vec<Entry>,
}

/// Trust decisions by key id, optionally backed by a file.
#[derive(Debug, Default)]
pub(crate) struct TrustStore {
    entries: BTreeMap<KeyId, Entry>,
    path: Option<PathBuf>,
}

/// Whether `name` is one of our temporary files for the store file `store_name`.
fn is_leftover(name: &str, store_name: &str) -> bool {
    name.starts_with(&format!(".{store_name}.")) && name.ends_with(".tmp")
}

impl TrustStore {
    /// Opens the store at `path`: reads it if it exists (creating parent directories
    /// otherwise) and removes temporary files a crash mid-write left behind.
    pub(crate) fn open(path: &Path) -> Result<Self, RingError> {
        let dir = parent(path);
        fs::create_dir_all(&dir).map_err(|source| RingError::Write {
            path: dir.clone(),
            source,
        })?;
        let store_name = file_name(path);
        if let Ok(listing) = fs::read_dir(&dir) {
            for entry in listing.flatten() {
                if is_leftover(&entry.file_name().to_string_lossy(), &store_name) {
                    // A write that never reached its rename: the real file is intact.
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        let entries = match fs::read(path) {
            Ok(bytes) => {
                let file: File =
                    serde_json::from_slice(&bytes).map_err(|e| RingError::Corrupt {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?;
                if file.version != FORMAT_VERSION {
                    return Err(RingError::Corrupt {
                        path: path.to_owned(),
                        reason: format!(
                            "format version {} is not supported (this library reads version {FORMAT_VERSION})",
                            file.version
                        ),
                    });
                }
                file.keys.into_iter().map(|e| (e.key_id, e)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(RingError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(TrustStore {
            entries,
            path: Some(path.to_owned()),
        })
    }

    /// The file backing the store, if any.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Trusts `key` at `level`. Returns `false` (changing nothing) if the key is revoked.
    pub(crate) fn trust(&mut self, key: &PublicKey, level: TrustLevel) -> Result<bool, RingError> {
        let key_id = key.key_id();
        let mut next = self.entries.clone();
        let entry = next.entry(key_id).or_insert_with(|| Entry::new(key_id));
        if entry.revoked.is_some() {
            return Ok(false);
        }
        entry.public_key = Some(key.clone());
        entry.trusted = Some(Trusted {
            level,
            since: OffsetDateTime::now_utc(),
        });
        self.commit(next)?;
        Ok(true)
    }

    /// Revokes `key_id`; the first revocation is kept.
    pub(crate) fn revoke(&mut self, key_id: &KeyId, reason: &str) -> Result<(), RingError> {
        if self.is_revoked(key_id) {
            return Ok(());
        }
        let mut next = self.entries.clone();
        let entry = next.entry(*key_id).or_insert_with(|| Entry::new(*key_id));
        entry.revoked = Some(Revoked {
            reason: reason.to_owned(),
            at: OffsetDateTime::now_utc(),
        });
        self.commit(next)
    }

    pub(crate) fn is_revoked(&self, key_id: &KeyId) -> bool {
        self.entries
            .get(key_id)
            .is_some_and(|e| e.revoked.is_some())
    }

    pub(crate) fn verdict(&self, key_id: &KeyId) -> TrustResult {
        let key_id = *key_id;
        match self.entries.get(&key_id) {
            Some(Entry {
                revoked: Some(r), ..
            }) => TrustResult::Revoked {
                key_id,
                reason: r.reason.clone(),
                at: r.at,
            },
            Some(Entry {
                trusted: Some(t), ..
            }) => TrustResult::Trusted {
                key_id,
                level: t.level,
                since: t.since,
            },
            _ => TrustResult::Unknown { key_id },
        }
    }

    pub(crate) fn list(&self) -> Vec<TrustedKey> {
        self.entries
            .values()
            .filter_map(|e| {
                e.public_key
                    .clone()
                    .map(|public_key| TrustedKey::new(public_key, self.verdict(&e.key_id)))
            })
            .collect()
    }

    /// Writes `next` to disk (if file-backed), then makes it the current state: a failed write
    /// changes nothing.
    fn commit(&mut self, next: BTreeMap<KeyId, Entry>) -> Result<(), RingError> {
        if let Some(path) = &self.path {
            write_atomically(path, &next)?;
        }
        self.entries = next;
        Ok(())
    }
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trust.json".into())
}

fn write_atomically(path: &Path, entries: &BTreeMap<KeyId, Entry>) -> Result<(), RingError> {
    let write_err = |source: std::io::Error| RingError::Write {
        path: path.to_owned(),
        source,
    };
    let file = File {
        version: FORMAT_VERSION,
        keys: entries.values().cloned().collect(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| write_err(std::io::Error::other(e)))?;
    let dir = parent(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", file_name(path)))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(write_err)?;
    tmp.write_all(&json).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    // Make the rename itself durable.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
