//! Where objects live: `<root>/sha256/ab/cd/<full hex>`, and `<root>/staging/<unique>` for
//! uploads whose digest is not known yet.

use marketplace_core::{ContentHash, HashAlgorithm};
use object_store::path::Path;

/// The directory of complete objects of `algorithm`.
pub(crate) fn algorithm_dir(root: &Path, algorithm: HashAlgorithm) -> Path {
    root.clone().join(algorithm.as_str())
}

/// The key of a complete object.
pub(crate) fn object_path(root: &Path, hash: &ContentHash) -> Path {
    let hex = hash.hex();
    algorithm_dir(root, hash.algorithm())
        .join(&hex[0..2])
        .join(&hex[2..4])
        .join(hex.as_str())
}

/// The directory of uploads in progress.
pub(crate) fn staging_dir(root: &Path) -> Path {
    root.clone().join("staging")
}

/// The address an object key stands for, if it is one of ours.
pub(crate) fn hash_of(root: &Path, algorithm: HashAlgorithm, key: &Path) -> Option<ContentHash> {
    let file = key.filename()?;
    let expected = object_path(root, &ContentHash::new(algorithm, hex_decode(file)?).ok()?);
    (&expected == key).then(|| ContentHash::new(algorithm, hex_decode(file)?).ok())?
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2)
        || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// What to list for a text prefix such as `sha256:ab`: the narrowest directory holding every
/// match, and the hex prefix object names must start with. `None` when nothing can match.
pub(crate) fn listing(root: &Path, prefix: &str) -> Option<(Path, String)> {
    let algorithm = HashAlgorithm::Sha256;
    let hex = algorithm.hex_prefix(prefix)?;
    let dir = algorithm_dir(root, algorithm);
    let dir = match hex.len() {
        0 | 1 => dir,
        2 | 3 => dir.join(&hex[0..2]),
        _ => dir.join(&hex[0..2]).join(&hex[2..4]),
    };
    Some((dir, hex.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sharded_and_round_trip() {
        let root = Path::from("packages");
        let hash = ContentHash::sha256(b"abc");
        let key = object_path(&root, &hash);
        assert_eq!(
            key.as_ref(),
            "packages/sha256/ba/78/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash_of(&root, HashAlgorithm::Sha256, &key), Some(hash));
        assert_eq!(
            hash_of(
                &root,
                HashAlgorithm::Sha256,
                &Path::from("packages/sha256/zz")
            ),
            None
        );
    }

    #[test]
    fn listing_narrows_to_the_shard() {
        let root = Path::from("r");
        assert_eq!(
            listing(&root, "sha256:ba78"),
            Some((Path::from("r/sha256/ba/78"), "ba78".into()))
        );
        assert_eq!(
            listing(&root, "sha256:b"),
            Some((Path::from("r/sha256"), "b".into()))
        );
        assert_eq!(
            listing(&root, "sha2"),
            Some((Path::from("r/sha256"), String::new()))
        );
        assert_eq!(
            listing(&root, ""),
            Some((Path::from("r/sha256"), String::new()))
        );
        assert_eq!(listing(&root, "sha512:"), None);
    }
}
