//! Validating any archive under the default limits stays below 64 MiB of resident memory: data
//! streams through a fixed buffer, and no header, extension or name is read into memory before
//! its size passed a small cap. Measured with the process's peak resident set (Linux
//! `VmHWM`), so this binary holds this one test.

use bytes::Bytes;
use marketplace_package::testing::{EntryType, zeros_bomb};
use marketplace_package::{ArchiveLimits, inspect};

const MANIFEST: &[u8] = b"[package]\nname = \"web\"\nversion = \"1.0.0\"\n";

/// The peak resident set of this process, in KiB (`None` off Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn validating_hostile_archives_stays_below_64_mib() {
    let Some(before) = peak_rss_kib() else {
        eprintln!("SKIP: no /proc/self/status on this platform; peak memory is not measured");
        return;
    };
    let limits = ArchiveLimits::default();
    // 400 MiB of zeros: valid under the 500 MiB default, read through and hashed.
    let big = zeros_bomb("web-1.0.0", MANIFEST, 400 << 20);
    inspect(Bytes::from(big), &limits).expect("a 400 MiB package is valid");
    // 1 GiB of zeros: refused at the unpacked-size limit, after reading no more than that.
    let bomb = zeros_bomb("web-1.0.0", MANIFEST, 1 << 30);
    assert!(inspect(Bytes::from(bomb), &limits).is_err());
    // A PAX header and a GNU long name each announcing 512 MiB: refused before a byte of them
    // is read (the data is not even there).
    for kind in [EntryType::XHeader, EntryType::GNULongName] {
        let mut header = tar::Header::new_gnu();
        header.set_path("web-1.0.0/x").expect("path");
        header.set_size(512 << 20);
        header.set_entry_type(kind);
        header.set_cksum();
        let mut stream = header.as_bytes().to_vec();
        stream.extend_from_slice(&[0u8; 4096]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &stream).expect("gzip");
        let archive = gz.finish().expect("gzip");
        assert!(inspect(Bytes::from(archive), &limits).is_err());
    }
    let peak = peak_rss_kib().unwrap_or(before);
    eprintln!("peak resident memory: {} KiB (before: {before} KiB)", peak);
    assert!(
        peak < 64 * 1024,
        "validating peaked at {peak} KiB, over the 64 MiB budget"
    );
}
