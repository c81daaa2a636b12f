//! What an attacker's hand-made archives try, refused by the one validator that publish and
//! install share: parser differentials (several gzip members, bytes after the stream or after
//! the tar end, truncated or corrupt gzip), metadata bombs (PAX headers, huge long names, data
//! on directories), archives that would not extract (a file and a directory on one path, in
//! either order; NUL bytes), and what still passes (long paths as GNU long names).

use std::io::Write as _;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use marketplace_core::{Error, HashAlgorithm};
use marketplace_package::testing::{EntryType, raw_archive, raw_tar};
use marketplace_package::{ArchiveLimits, inspect, pack_dir, stage};

const MANIFEST: &[u8] = b"[package]\nname = \"web\"\nversion = \"1.0.0\"\n";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

fn refused(archive: Vec<u8>, needle: &str) {
    match inspect(Bytes::from(archive), &ArchiveLimits::default()) {
        Err(Error::Invalid { field, value, rule }) => {
            let all = format!("{field} {value} {rule}");
            assert!(all.contains(needle), "expected {needle:?} in: {all}");
        }
        other => panic!("expected Invalid ({needle}), got {other:?}"),
    }
}

fn good_tar() -> Vec<u8> {
    raw_tar(&[
        (b"web/marketplace.toml", EntryType::Regular, MANIFEST),
        (b"web/index.html", EntryType::Regular, b"<h1>hi</h1>"),
    ])
}

#[test]
fn the_plain_archive_passes() {
    inspect(Bytes::from(gzip(&good_tar())), &ArchiveLimits::default()).expect("valid");
}

#[test]
fn anything_but_one_gzip_member_holding_one_tar_stream_is_refused() {
    // Two gzip members: `tar` (and a multi-member decoder) would read the second's entries.
    let mut two = gzip(&good_tar());
    two.extend(gzip(&raw_tar(&[(
        b"web/../../evil",
        EntryType::Regular,
        b"owned",
    )])));
    refused(two, "after the end of the gzip stream");

    // Bytes after the compressed stream.
    let mut trailing = gzip(&good_tar());
    trailing.extend_from_slice(b"junk");
    refused(trailing, "after the end of the gzip stream");

    // Entries after the tar end-of-archive blocks.
    let mut tar = good_tar();
    tar.extend(raw_tar(&[(b"web/../evil", EntryType::Regular, b"owned")]));
    refused(gzip(&tar), "after the end-of-archive blocks");

    // No end-of-archive blocks at all, or only one.
    let tar = good_tar();
    refused(gzip(&tar[..tar.len() - 1024]), "two zero blocks");
    refused(gzip(&tar[..tar.len() - 512]), "two zero blocks");

    // Zero padding is fine (GNU tar pads to 10 KiB records) — up to a bound.
    let mut padded = good_tar();
    padded.resize(10240, 0);
    inspect(Bytes::from(gzip(&padded)), &ArchiveLimits::default()).expect("padded to a record");
    let mut huge = good_tar();
    huge.resize(huge.len() + 1024 * 1024, 0);
    refused(gzip(&huge), "after the end-of-archive blocks");

    // A truncated trailer, a flipped CRC, a wrong length.
    let whole = gzip(&good_tar());
    refused(whole[..whole.len() - 4].to_vec(), "not a readable");
    let mut bad_crc = whole.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff;
    refused(bad_crc, "not a readable");
    let mut bad_len = whole.clone();
    bad_len[n - 1] ^= 0x01;
    refused(bad_len, "not a readable");
}

#[test]
fn extension_headers_and_data_on_directories_are_refused_before_they_are_read() {
    // PAX headers could rename the next entry behind the rules' back.
    refused(
        raw_archive(&[
            (b"web/marketplace.toml", EntryType::Regular, MANIFEST),
            (
                b"web/pax",
                EntryType::XHeader,
                b"30 path=../../../etc/passwd\n",
            ),
            (b"web/innocent", EntryType::Regular, b"x"),
        ]),
        "PAX extended header",
    );
    refused(
        raw_archive(&[
            (b"pax_global", EntryType::XGlobalHeader, b"20 path=evil/x\n"),
            (b"web/marketplace.toml", EntryType::Regular, MANIFEST),
        ]),
        "PAX global header",
    );
    refused(
        raw_archive(&[
            (b"web/marketplace.toml", EntryType::Regular, MANIFEST),
            (b"././@LongLink", EntryType::GNULongLink, b"/etc/passwd\0"),
            (b"web/f", EntryType::Regular, b"x"),
        ]),
        "GNU long link",
    );
    // A long name announcing more than a path can be is refused before it is read.
    let huge_name = vec![b'a'; 300];
    refused(
        raw_archive(&[
            (b"web/marketplace.toml", EntryType::Regular, MANIFEST),
            (b"././@LongLink", EntryType::GNULongName, &huge_name),
            (b"web/f", EntryType::Regular, b"x"),
        ]),
        "longer than 255 bytes",
    );
    // A NUL inside a long name (GNU tar would cut the name there).
    refused(
        raw_archive(&[
            (b"web/marketplace.toml", EntryType::Regular, MANIFEST),
            (
                b"././@LongLink",
                EntryType::GNULongName,
                b"web/ok\0/../../evil\0",
            ),
            (b"web/f", EntryType::Regular, b"x"),
        ]),
        "NUL byte",
    );
    refused(
        raw_archive(&[
            (b"web/marketplace.toml", EntryType::Regular, MANIFEST),
            (b"././@LongLink", EntryType::GNULongName, b"web/dangling\0"),
        ]),
        "names no entry",
    );
    // A directory entry carrying data counts for nothing and is refused.
    refused(
        raw_archive(&[
            (b"web/marketplace.toml", EntryType::Regular, MANIFEST),
            (b"web/dir/", EntryType::Directory, &[0u8; 4096]),
        ]),
        "directory entry carrying 4096 bytes",
    );
}

#[test]
fn what_would_not_extract_is_refused_at_publish() {
    let m = (
        b"web/marketplace.toml".as_slice(),
        EntryType::Regular,
        MANIFEST,
    );
    refused(
        raw_archive(&[
            m,
            (b"web/same", EntryType::Regular, b"file"),
            (b"web/same/", EntryType::Directory, b""),
        ]),
        "directory with the path of a file",
    );
    refused(
        raw_archive(&[
            m,
            (b"web/same/", EntryType::Directory, b""),
            (b"web/same", EntryType::Regular, b"file"),
        ]),
        "file with the path of a directory",
    );
    refused(
        raw_archive(&[
            m,
            (b"web/a/b", EntryType::Regular, b"x"),
            (b"web/a", EntryType::Regular, b"y"),
        ]),
        "file with the path of a directory",
    );
    refused(
        raw_archive(&[
            m,
            (b"web/a", EntryType::Regular, b"y"),
            (b"web/a/b", EntryType::Regular, b"x"),
        ]),
        "which is a file",
    );
    refused(
        raw_archive(&[
            m,
            (b"web/x", EntryType::Regular, b"1"),
            (b"web/./x", EntryType::Regular, b"2"),
        ]),
        "appears twice",
    );
}

#[test]
fn long_paths_pack_as_gnu_long_names_and_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("marketplace.toml"), MANIFEST).expect("manifest");
    let deep = dir.path().join("a".repeat(60)).join("b".repeat(60));
    std::fs::create_dir_all(&deep).expect("mkdir");
    std::fs::write(deep.join("c".repeat(60)), "deep").expect("file");
    let limits = ArchiveLimits::default();
    let packed = pack_dir(dir.path(), &limits).expect("pack");
    let inspected = inspect(packed.archive().clone(), &limits).expect("a long name reads back");
    assert_eq!(inspected.files(), packed.files());
    assert!(inspected.files().iter().any(|f| f.path.len() > 150));
    let out = tempfile::tempdir().expect("tempdir");
    let dest = out.path().join("x");
    stage(
        packed.archive().clone(),
        &limits,
        HashAlgorithm::Sha256,
        &dest,
    )
    .expect("stage")
    .commit()
    .expect("commit");
    let file = dest
        .join("a".repeat(60))
        .join("b".repeat(60))
        .join("c".repeat(60));
    assert_eq!(std::fs::read_to_string(file).expect("read"), "deep");
}
