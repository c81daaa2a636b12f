//! Archive validation and extraction: any bytes are an archive or an `Invalid` error; an archive
//! that passes validation extracts, and extracts exactly the files validation listed.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use marketplace_package::{ArchiveLimits, extract, inspect};

fuzz_target!(|data: &[u8]| {
    let mut limits = ArchiveLimits::default();
    // Small limits keep each run fast; the rules are the same.
    limits.max_unpacked = 1 << 20;
    limits.max_entries = 64;
    let Ok(inspected) = inspect(Bytes::copy_from_slice(data), &limits) else {
        return;
    };
    let dir = tempfile::tempdir().expect("a scratch directory");
    let dest = dir.path().join("out");
    extract(&inspected, &dest).expect("a validated archive extracts");
    for file in inspected.files() {
        let path = dest.join(&file.path);
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{} was not extracted: {e}", file.path))
            .len();
        assert_eq!(len, file.size, "{} has the size validation counted", file.path);
    }
});
