//! `mkt cargo import`: `.crate` files into the home, bytes and checksums unchanged.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use marketplace_client::Archive;
use marketplace_core::ErrorKind;
use serde_json::json;

use crate::home::Home;
use crate::output::Output;
use crate::{CliError, CliResult, exit};

/// Crates read and published per batch (bounds the memory an import of a large cache takes).
const BATCH: usize = 256;

/// Every `.crate` file among `paths` (directories searched recursively), in path order.
fn crate_files(paths: &[PathBuf]) -> CliResult<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        let meta = std::fs::metadata(&path).map_err(|e| CliError {
            code: exit::NOT_FOUND,
            message: format!("{}: {e}", path.display()),
            hint: None,
        })?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(&path).map_err(|e| CliError {
                code: exit::FAILURE,
                message: format!("read the directory {}: {e}", path.display()),
                hint: None,
            })?;
            for entry in entries.flatten() {
                let child = entry.path();
                if child.is_dir() || child.extension().is_some_and(|x| x == "crate") {
                    pending.push(child);
                }
            }
        } else {
            files.push(path);
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Reads and inspects one `.crate` file (its index line from the `Cargo.toml` inside).
fn read_crate(path: &Path) -> Result<Archive, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("read it: {e}"))?;
    marketplace_cargo::inspect_crate(Bytes::from(bytes), &marketplace_cargo::crate_limits())
        .map(Archive::from)
        .map_err(|e| e.to_string())
}

/// `mkt cargo import PATH…`.
pub(crate) async fn import(home: &Home, paths: &[PathBuf], key: &str, out: &Output) -> CliResult {
    let key = home.load_key(key).await?;
    let files = crate_files(paths)?;
    if files.is_empty() {
        return Err(CliError {
            code: exit::NOT_FOUND,
            message: "no .crate files there".into(),
            hint: Some("name .crate files, or directories holding them (cargo keeps its downloads in ~/.cargo/registry/cache)".into()),
        });
    }
    let bar = out.progress(files.len() as u64, "importing");
    let (mut imported, mut present) = (Vec::new(), 0usize);
    let mut refused: Vec<(PathBuf, String)> = Vec::new();
    for chunk in files.chunks(BATCH) {
        let owned = chunk.to_vec();
        let read = tokio::task::spawn_blocking(move || {
            owned
                .iter()
                .map(|path| (path.clone(), read_crate(path)))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| CliError {
            code: exit::FAILURE,
            message: format!("read .crate files: {e}"),
            hint: None,
        })?;
        let mut archives = Vec::new();
        let mut origins = Vec::new();
        for (path, result) in read {
            match result {
                Ok(archive) => {
                    archives.push(archive);
                    origins.push(path);
                }
                Err(e) => refused.push((path, e)),
            }
        }
        let outcome = home
            .client
            .publish_many(archives, &key.private_key, false)
            .await?;
        for (position, e) in outcome.refused {
            if e.kind() == ErrorKind::AlreadyExists {
                present += 1;
            } else {
                refused.push((origins[position].clone(), e.to_string()));
            }
        }
        imported.extend(outcome.published);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    for (path, e) in &refused {
        out.error(&CliError {
            code: exit::INVALID,
            message: format!("{}: {e}", path.display()),
            hint: None,
        });
    }
    out.line(format!(
        "imported {} crates from {} files ({present} already present, {} refused)",
        imported.len(),
        files.len(),
        refused.len()
    ));
    out.json(&json!({
        "imported": imported.iter().map(|p| json!({
            "id": p.id,
            "checksum": p.checksum,
            "size": p.size,
        })).collect::<Vec<_>>(),
        "already_present": present,
        "refused": refused.iter().map(|(path, e)| json!({
            "path": path,
            "error": e,
        })).collect::<Vec<_>>(),
    }))?;
    if refused.is_empty() {
        Ok(())
    } else {
        Err(CliError {
            code: exit::INVALID,
            message: format!(
                "{} .crate files were refused (each is listed above)",
                refused.len()
            ),
            hint: None,
        })
    }
}
