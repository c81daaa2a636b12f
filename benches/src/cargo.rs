//! W12: the server as a Cargo registry, with the machine's own cargo. The release `mkt serve`
//! runs on a home into which `mkt cargo import` took the machine's cargo download cache; wrk
//! (Debian's) revalidates index files against it; cargo itself publishes crates and resolves a
//! project through `[source.crates-io] replace-with`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use marketplace_testing::mirror::{PROJECT, cargo_cache};

use crate::http::{
    CONNECTIONS, Served, WRK_SCRIPT, load_with, release_mkt, unavailable, wrk_version,
};
use crate::workloads::{Mode, Row, duration};

/// The issue #22 target: index files revalidated per second, load generator on the same cores.
const REVALIDATIONS_PER_S: f64 = 20_000.0;

/// The wrk script of revalidation: each line of the file is `path<TAB>etag`, and each request
/// asks for the next path with its `If-None-Match`.
const REVALIDATE: &str = r#"
local paths = {}
local tags = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    local p, t = line:match("([^\t]+)\t(.*)")
    paths[#paths + 1] = p
    tags[#tags + 1] = t
  end
  i = math.random(#paths)
end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], { ["If-None-Match"] = tags[i] })
end
"#;

/// The crate names of the cache's files (`name-1.2.3.crate`).
fn crate_names(cache: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for dir in std::fs::read_dir(cache).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let file = file.file_name().to_string_lossy().into_owned();
            let Some(stem) = file.strip_suffix(".crate") else {
                continue;
            };
            let name = stem.match_indices('-').find_map(|(at, _)| {
                marketplace_core::semver::Version::parse(&stem[at + 1..])
                    .is_ok()
                    .then(|| stem[..at].to_owned())
            });
            names.extend(name);
        }
    }
    names
}

fn run(command: &mut Command, what: &str) -> Result<String, String> {
    let output = command.output().map_err(|e| format!("{what}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Requests the server answered on the index route with `status`, from `/metrics`.
async fn answered(server: &Served, status: u16) -> u64 {
    let Ok(response) = reqwest::get(server.url("/metrics")).await else {
        return 0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("marketplace_http_requests_total"))
        .filter(|l| {
            l.contains("route=\"/cargo/index/{*path}\"")
                && l.contains(&format!("status=\"{status}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// W12: every Cargo row. Rows that cannot be measured (no `mkt`, cargo, cache or wrk) say why.
pub async fn w12_cargo(mode: Mode) -> Vec<Row> {
    let mkt = match release_mkt() {
        Ok(mkt) => mkt,
        Err(why) => return vec![unavailable("W12 Cargo registry", "—", &why)],
    };
    let Some(cache) = cargo_cache() else {
        return vec![unavailable(
            "W12 Cargo registry",
            "—",
            "no cargo download cache",
        )];
    };
    if Command::new("cargo").arg("--version").output().is_err() {
        return vec![unavailable("W12 Cargo registry", "—", "no cargo on PATH")];
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let mkt_at = |args: &[&str]| {
        let mut command = Command::new(&mkt);
        command.arg("--home").arg(&home).args(args);
        command
    };
    let mut rows = Vec::new();
    if let Err(e) = run(&mut mkt_at(&["init"]), "mkt init") {
        return vec![unavailable("W12 Cargo registry", "—", &e)];
    }
    let started = Instant::now();
    let imported = run(mkt_at(&["cargo", "import"]).arg(&cache), "mkt cargo import");
    let import_time = started.elapsed();
    let names = crate_names(&cache);
    match imported {
        Ok(said) => {
            let files: usize = said
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            rows.push(Row {
                workload: format!(
                    "W12 mkt cargo import of the cargo cache ({files} crates, {} names)",
                    names.len()
                ),
                measured: format!(
                    "{:.0} crates/s ({})",
                    files as f64 / import_time.as_secs_f64(),
                    duration(import_time)
                ),
                target: "— (reported)".into(),
                baseline: "—".into(),
                ratio: None,
                met: None,
            });
        }
        Err(e) => return vec![unavailable("W12 Cargo registry", "—", &e)],
    }
    let token = match run(
        &mut mkt_at(&["token", "create", "--name", "bench", "--user", "bench"]),
        "mkt token create",
    ) {
        Ok(out) => out.lines().next().unwrap_or_default().trim().to_owned(),
        Err(e) => return vec![unavailable("W12 Cargo registry", "—", &e)],
    };
    let server = Served::start(&mkt, &home).await;
    let http = reqwest::Client::new();

    // Every crate's index file, once, for its ETag.
    let mut revalidations = Vec::new();
    let mut fetches = Vec::new();
    for name in &names {
        let path = format!("/cargo/index/{}", marketplace_cargo::index_path(name));
        let Ok(response) = http.get(server.url(&path)).send().await else {
            continue;
        };
        if let Some(etag) = response.headers().get("etag").and_then(|e| e.to_str().ok()) {
            revalidations.push(format!("{path}\t{etag}"));
            fetches.push(path);
        }
    }
    let seconds = mode.pick(5, 15);
    match wrk_version() {
        Err(why) => rows.push(unavailable(
            "W12 cargo index revalidation",
            "≥ 20,000 req/s",
            &why,
        )),
        Ok(wrk) => {
            let how = format!(
                "{} crates, {CONNECTIONS} connections, {seconds} s, {wrk}",
                fetches.len()
            );
            let before = answered(&server, 304).await;
            let row = match load_with(
                &server,
                dir.path(),
                "revalidate",
                &revalidations,
                seconds,
                REVALIDATE,
            ) {
                Ok(m) => {
                    let not_modified = answered(&server, 304).await - before;
                    let rps = m.requests as f64 / m.seconds;
                    Row {
                        workload: format!("W12 cargo index file revalidated, 304 ({how})"),
                        measured: format!(
                            "{rps:.0} req/s · p50 {} · p99 {} · {:.1}% answered 304",
                            duration(m.p50),
                            duration(m.p99),
                            // wrk's warm-up second is counted by the server too.
                            100.0 * (not_modified as f64 / m.requests as f64).min(1.0)
                        ),
                        target: "≥ 20,000 req/s".into(),
                        baseline: "—".into(),
                        ratio: Some(rps / REVALIDATIONS_PER_S),
                        met: Some(rps >= REVALIDATIONS_PER_S && not_modified >= m.requests),
                    }
                }
                Err(e) => unavailable("W12 cargo index revalidation", "≥ 20,000 req/s", &e),
            };
            rows.push(row);
            let row = match load_with(&server, dir.path(), "fetch", &fetches, seconds, WRK_SCRIPT) {
                Ok(m) => Row {
                    workload: format!("W12 cargo index file fetched whole ({how})"),
                    measured: format!(
                        "{:.0} req/s · {:.0} MB/s · p50 {} · p99 {}",
                        m.requests as f64 / m.seconds,
                        m.bytes as f64 / 1e6 / m.seconds,
                        duration(m.p50),
                        duration(m.p99)
                    ),
                    target: "— (reported)".into(),
                    baseline: "—".into(),
                    ratio: None,
                    met: None,
                },
                Err(e) => unavailable("W12 cargo index fetch", "—", &e),
            };
            rows.push(row);
        }
    }

    // Cold `cargo generate-lockfile` through the mirror: a fresh CARGO_HOME each time.
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("src")).expect("project");
    std::fs::write(project.join("Cargo.toml"), PROJECT).expect("manifest");
    std::fs::write(project.join("src/main.rs"), "fn main() {}\n").expect("main");
    let mut times = Vec::new();
    let mut locked = 0;
    for attempt in 0..mode.pick(3, 7) {
        let cargo_home = dir.path().join(format!("mirror-home-{attempt}"));
        std::fs::create_dir_all(&cargo_home).expect("cargo home");
        std::fs::write(
            cargo_home.join("config.toml"),
            format!(
                "[source.crates-io]\nreplace-with = \"mirror\"\n\n[source.mirror]\nregistry = \"sparse+{}/cargo/index/\"\n",
                server.base
            ),
        )
        .expect("config");
        let _ = std::fs::remove_file(project.join("Cargo.lock"));
        let started = Instant::now();
        let result = run(
            Command::new("cargo")
                .arg("generate-lockfile")
                .current_dir(&project)
                .env("CARGO_HOME", &cargo_home),
            "cargo generate-lockfile",
        );
        if let Err(e) = result {
            rows.push(unavailable("W12 cold cargo generate-lockfile", "—", &e));
            break;
        }
        times.push(started.elapsed());
        locked = std::fs::read_to_string(project.join("Cargo.lock"))
            .map(|l| l.matches("[[package]]").count())
            .unwrap_or(0);
    }
    if !times.is_empty() {
        let first = times[0];
        let mut sorted = times.clone();
        sorted.sort();
        rows.push(Row {
            workload: format!(
                "W12 cold cargo generate-lockfile through the mirror ({locked} packages, fresh CARGO_HOME, {} runs)",
                times.len()
            ),
            measured: format!(
                "median {} (first, server cache cold: {})",
                duration(sorted[sorted.len() / 2]),
                duration(first)
            ),
            target: "— (reported)".into(),
            baseline: "—".into(),
            ratio: None,
            met: None,
        });
    }

    // `cargo publish` of small crates, one after another, through the machine's cargo.
    let crates = mode.pick(10, 30);
    let cargo_home = dir.path().join("publish-home");
    std::fs::create_dir_all(&cargo_home).expect("cargo home");
    std::fs::write(
        cargo_home.join("config.toml"),
        format!(
            "[registries.bench]\nindex = \"sparse+{}/cargo/index/\"\n\n[registry]\nglobal-credential-providers = [\"cargo:token\"]\n",
            server.base
        ),
    )
    .expect("config");
    let mut elapsed = Duration::ZERO;
    let mut published = 0;
    for i in 0..crates {
        let krate = dir.path().join(format!("bench-crate-{i}"));
        std::fs::create_dir_all(krate.join("src")).expect("crate dir");
        std::fs::write(
            krate.join("Cargo.toml"),
            format!("[package]\nname = \"bench-crate-{i}\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\ndescription = \"Crate {i} of the publish benchmark\"\n\n[features]\ndefault = [\"std\"]\nstd = []\n\n[workspace]\n"),
        )
        .expect("manifest");
        std::fs::write(krate.join("src/lib.rs"), "pub fn f() -> u32 { 1 }\n").expect("lib");
        let started = Instant::now();
        let result = run(
            Command::new("cargo")
                .args([
                    "publish",
                    "--registry",
                    "bench",
                    "--no-verify",
                    "--allow-dirty",
                ])
                .current_dir(&krate)
                .env("CARGO_HOME", &cargo_home)
                .env("CARGO_TARGET_DIR", dir.path().join("publish-target"))
                .env("CARGO_REGISTRIES_BENCH_TOKEN", &token),
            "cargo publish",
        );
        elapsed += started.elapsed();
        match result {
            Ok(_) => published += 1,
            Err(e) => {
                rows.push(unavailable("W12 cargo publish", "—", &e));
                break;
            }
        }
    }
    if published > 0 {
        rows.push(Row {
            workload: format!(
                "W12 cargo publish through the machine's cargo ({published} crates, one at a time, --no-verify)"
            ),
            measured: format!(
                "{:.1} crates/s ({} each)",
                published as f64 / elapsed.as_secs_f64(),
                duration(elapsed / published)
            ),
            target: "— (reported)".into(),
            baseline: "—".into(),
            ratio: None,
            met: None,
        });
    }
    drop(server);
    rows
}
