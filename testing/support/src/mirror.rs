//! The crates.io mirror scenario that the mirror test and the W12 benchmark share: the `.crate`
//! files of this machine's cargo download cache (what `mkt cargo import` takes) and a project
//! whose whole dependency graph that cache holds, because this workspace builds with it.

use std::path::PathBuf;

/// The project resolved and built through the mirror: crates this workspace depends on, so the
/// cache of any machine that built the workspace holds their graph (more than 20 crates).
pub const PROJECT: &str = r#"[package]
name = "mirror-user"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
semver = "1"
toml = "1"
hex = "0.4"
thiserror = "2"
smallvec = "1"

[workspace]
"#;

/// The `.crate` cache of the machine's cargo (`$CARGO_HOME/registry/cache`, `~/.cargo` when
/// `CARGO_HOME` is unset), if there is one.
pub fn cargo_cache() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let cache = home.join("registry").join("cache");
    cache.is_dir().then_some(cache)
}
