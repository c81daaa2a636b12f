//! Size and shape limits of an archive.

use marketplace_core::{Error, Result};

use crate::archive::Inspected;

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

impl ArchiveLimits {
    /// Checks an archive that was validated under other limits (for example packed with the
    /// defaults) against these, from the figures [`Inspected`] recorded — without reading the
    /// archive again. `Invalid` names the limit.
    pub fn admit(&self, inspected: &Inspected) -> Result<()> {
        let size = inspected.archive().len() as u64;
        if size > self.max_compressed {
            return Err(Error::invalid(
                "archive",
                format!("{size} bytes"),
                format!("is larger than the {} byte limit", self.max_compressed),
            ));
        }
        if inspected.unpacked_size() > self.max_unpacked {
            return Err(Error::invalid(
                "archive",
                format!("{} bytes unpacked", inspected.unpacked_size()),
                format!("unpacks past the {} byte limit", self.max_unpacked),
            ));
        }
        if inspected.entries() > self.max_entries {
            return Err(Error::invalid(
                "archive",
                format!("{} entries", inspected.entries()),
                format!("has more than {} entries", self.max_entries),
            ));
        }
        if inspected.longest_path() > self.max_path_len {
            return Err(Error::invalid(
                "archive",
                format!("a path of {} bytes", inspected.longest_path()),
                format!("has a path longer than {} bytes", self.max_path_len),
            ));
        }
        Ok(())
    }
}
