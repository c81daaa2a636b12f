//! For every archive we accept, GNU tar and Python's `tarfile` see the same files we do: the
//! bytes we validate are the bytes others unpack. The corpus: archives packed by `pack_dir`
//! from generated trees (long paths become GNU long names), hand-made archives with directory
//! entries, `./` components and zero padding, and the hostile ones of `tests/hostile.rs` (which
//! must all be refused). Skips visibly when `tar` or `python3` is missing.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Component, Path};
use std::process::Command;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use marketplace_package::testing::{EntryType, raw_archive, raw_tar};
use marketplace_package::{ArchiveLimits, inspect, pack_dir};
use marketplace_testing::corpus::Rng;

const MANIFEST: &[u8] = b"[package]\nname = \"web\"\nversion = \"1.0.0\"\n";

/// A path with `.` components removed, as every reader resolves it.
fn normal(path: &str) -> String {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn tool(name: &str, arg: &str) -> bool {
    Command::new(name)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The regular files GNU tar lists.
fn gnu_tar_files(path: &Path) -> BTreeSet<String> {
    let out = Command::new("tar")
        .arg("--list")
        .arg("--verbose")
        .arg("--gzip")
        .arg("--file")
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "GNU tar refused an archive we accept: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('-'))
        .map(|l| {
            // `-rw-r--r-- 0/0 5 1970-01-01 00:00 path`: the path follows the fifth field (no
            // generated path holds a space).
            let fields: Vec<&str> = l.split_whitespace().collect();
            normal(&fields[5..].join(" "))
        })
        .collect()
}

/// The regular files Python's `tarfile` lists in each archive (one interpreter for all: starting
/// it is what costs).
fn python_files(paths: &[std::path::PathBuf]) -> Vec<BTreeSet<String>> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, tarfile\n\
             for i, path in enumerate(sys.argv[1:]):\n\
             \x20   with tarfile.open(path, 'r:gz') as t:\n\
             \x20       for m in t.getmembers():\n\
             \x20           if m.isfile(): print(f'{i}\\t{m.name}')\n",
        )
        .args(paths)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "Python's tarfile refused an archive we accept: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files = vec![BTreeSet::new(); paths.len()];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((i, name)) = line.split_once('\t')
            && let Ok(i) = i.parse::<usize>()
        {
            files[i].insert(normal(name));
        }
    }
    files
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

/// Archives made by `pack_dir` from generated trees: varied depth, names up to the path
/// limit (beyond 100 bytes, GNU long names), sizes from 0 bytes to some KiB.
fn packed(rng: &mut Rng, scratch: &Path, n: usize) -> Vec<Vec<u8>> {
    let segment = |rng: &mut Rng| -> String {
        let len = 1 + rng.below_u64(40) as usize;
        (0..len)
            .map(|_| (b'a' + rng.below_u64(26) as u8) as char)
            .collect()
    };
    (0..n)
        .map(|i| {
            let dir = scratch.join(format!("tree{i}"));
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join("marketplace.toml"), MANIFEST).expect("manifest");
            for _ in 0..1 + rng.below_u64(8) {
                let depth = rng.below_u64(5) as usize;
                let mut path = dir.clone();
                let mut relative = 10; // "web-1.0.0/"
                for _ in 0..depth {
                    let s = segment(rng);
                    relative += s.len() + 1;
                    path = path.join(s);
                }
                let name = segment(rng);
                if relative + name.len() > 250 {
                    continue;
                }
                std::fs::create_dir_all(&path).expect("mkdir");
                let size = rng.below_u64(5000) as usize;
                std::fs::write(path.join(name), vec![b'x'; size]).expect("file");
            }
            pack_dir(&dir, &ArchiveLimits::default())
                .expect("pack")
                .archive()
                .to_vec()
        })
        .collect()
}

/// Hand-made archives: explicit directory entries, `./` components, zero padding up to records.
fn hand_made() -> Vec<Vec<u8>> {
    let m = (
        b"web/marketplace.toml".as_slice(),
        EntryType::Regular,
        MANIFEST,
    );
    let mut out = vec![
        raw_archive(&[
            m,
            (b"web/a/", EntryType::Directory, b""),
            (b"web/a/b", EntryType::Regular, b"1"),
        ]),
        raw_archive(&[
            m,
            (b"web/./x", EntryType::Regular, b"2"),
            (b"./web/y", EntryType::Regular, b"3"),
        ]),
        raw_archive(&[
            (b"web/", EntryType::Directory, b""),
            m,
            (b"web/e", EntryType::Regular, b""),
        ]),
    ];
    let mut padded = raw_tar(&[m, (b"web/z", EntryType::Regular, b"z")]);
    padded.resize(10240, 0);
    out.push(gzip(&padded));
    out
}

/// What `tests/hostile.rs` tries, in short: every one must be refused.
fn hostile() -> Vec<Vec<u8>> {
    let m = (
        b"web/marketplace.toml".as_slice(),
        EntryType::Regular,
        MANIFEST,
    );
    let good = raw_tar(&[m, (b"web/f", EntryType::Regular, b"f")]);
    let mut two = gzip(&good);
    two.extend(gzip(&raw_tar(&[(
        b"web/../../evil",
        EntryType::Regular,
        b"x",
    )])));
    let mut after_end = good.clone();
    after_end.extend(raw_tar(&[(b"web/hidden", EntryType::Regular, b"x")]));
    let mut trailing = gzip(&good);
    trailing.extend_from_slice(b"junk");
    vec![
        two,
        gzip(&after_end),
        trailing,
        gzip(&good[..good.len() - 1024]),
        raw_archive(&[
            m,
            (b"web/pax", EntryType::XHeader, b"20 path=web/other\n"),
            (b"web/g", EntryType::Regular, b"g"),
        ]),
        raw_archive(&[
            m,
            (b"web/s", EntryType::Regular, b"1"),
            (b"web/s/", EntryType::Directory, b""),
        ]),
    ]
}

#[test]
fn gnu_tar_and_python_see_the_files_we_accept() {
    if !tool("tar", "--version") || !tool("python3", "--version") {
        eprintln!("SKIP: GNU tar or python3 is not installed; the differential test needs both");
        return;
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng::new(7);
    let limits = ArchiveLimits::default();
    let mut ours = Vec::new();
    let mut paths = Vec::new();
    for (i, archive) in packed(&mut rng, scratch.path(), 150)
        .into_iter()
        .chain(hand_made())
        .enumerate()
    {
        let inspected = inspect(Bytes::from(archive.clone()), &limits)
            .unwrap_or_else(|e| panic!("archive {i} refused: {e}"));
        ours.push(
            inspected
                .files()
                .iter()
                .map(|f| format!("{}/{}", inspected.top(), f.path))
                .collect::<BTreeSet<String>>(),
        );
        let path = scratch.path().join(format!("a{i}.tar.gz"));
        std::fs::write(&path, &archive).expect("write");
        paths.push(path);
    }
    for (i, (path, ours)) in paths.iter().zip(&ours).enumerate() {
        assert_eq!(&gnu_tar_files(path), ours, "archive {i}: GNU tar differs");
    }
    for (i, (theirs, ours)) in python_files(&paths).iter().zip(&ours).enumerate() {
        assert_eq!(theirs, ours, "archive {i}: Python's tarfile differs");
    }
    let accepted = ours.len();
    assert!(accepted >= 150);
    for (i, archive) in hostile().into_iter().enumerate() {
        assert!(
            inspect(Bytes::from(archive), &limits).is_err(),
            "hostile archive {i} was accepted"
        );
    }
}
