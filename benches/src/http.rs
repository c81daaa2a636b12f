//! W9: the HTTP server under load. The release `mkt serve` runs as its own process on a home
//! made for it, on 127.0.0.1; a load generator (wrk, from the distribution) and this process
//! share the machine's cores with it. Publishes are signed here, on the author's side, before
//! the clock starts; only the HTTP requests are timed.

use std::collections::HashSet;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use marketplace_client::{MarketplaceBuilder, MarketplaceClient};
use marketplace_core::{PackageMetadata, PrivateKey, Scope, UserName};
use marketplace_protocol::v1;

use crate::corpus;
use crate::workloads::{Latency, Mode, Row, duration, local_client};

/// The SPEC §10 targets of the server (issue #19).
const METADATA_RPS: f64 = 15_000.0;
const METADATA_P99: Duration = Duration::from_millis(5);
const SEARCH_RPS: f64 = 3_000.0;
const DOWNLOAD_MB_PER_S: f64 = 800.0;
const SINGLE_RATIO: f64 = 0.8;
const PAGE_RPS: f64 = 2_000.0;
const SEARCH_PAGE_RPS: f64 = 1_000.0;
const BATCH_RATE: f64 = 1_500.0;

/// Connections the load generator keeps open.
pub(crate) const CONNECTIONS: usize = 32;

/// The release `mkt` beside this binary (`cargo xtask bench-report` builds it), or why not.
pub fn release_mkt() -> Result<PathBuf, String> {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("mkt"))
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            "no mkt beside bench-report: cargo build --release -p marketplace-cli".into()
        })
}

/// A row for a measurement that could not be made, saying why.
pub(crate) fn unavailable(workload: &str, target: &str, why: &str) -> Row {
    Row {
        workload: workload.into(),
        measured: format!("unavailable ({why})"),
        target: target.into(),
        baseline: "—".into(),
        ratio: None,
        met: None,
    }
}

/// W9: every server row. Rows that cannot be measured (no `mkt`, no wrk) say why.
pub async fn w9_http(mode: Mode) -> Vec<Row> {
    let mkt = match release_mkt() {
        Ok(mkt) => mkt,
        Err(why) => return vec![unavailable("W9 HTTP server", "—", &why)],
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let wrk = wrk_version();
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::new(&dir.path().join("author")).await;
    let mut rows = Vec::new();

    // Single publishes, first on the library (a fresh home), then over HTTP (a fresh home).
    let singles = mode.pick(100, 300);
    let library_rate = {
        let (client, key) = local_client(&dir.path().join("library")).await;
        let archives = crate::workloads::archives(singles, 31);
        let started = Instant::now();
        for archive in archives {
            client
                .publish(archive, &key.private_key)
                .await
                .expect("library publish");
        }
        singles as f64 / started.elapsed().as_secs_f64()
    };
    let home = dir.path().join("home");
    let token = prepare_home(&home, &signer).await;
    let server = Served::start(&mkt, &home).await;
    let http = reqwest::Client::new();
    // The corpus holds 1–4 versions of each package: the first `singles` records are the
    // same number of archives the library published.
    let mut served = HashSet::new();
    let mut items = Vec::with_capacity(singles);
    for record in corpus::corpus(singles, 32).into_iter().take(singles) {
        served.insert(record.metadata.id.package().canonical());
        items.push(signer.sign(corpus::archive(&record.metadata, 2_000)).await);
    }
    let started = Instant::now();
    for (archive, item) in &items {
        let response = http
            .put(server.url("/api/v1/packages"))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .header(
                v1::SIGNATURE_HEADER,
                v1::SignatureBody::from(&item.signature).header_value(),
            )
            .header(
                v1::PUBLISHED_AT_HEADER,
                v1::published_at_header(item.published_at),
            )
            .body(archive.clone())
            .send()
            .await
            .expect("publish over HTTP");
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }
    let http_rate = singles as f64 / started.elapsed().as_secs_f64();
    let ratio = http_rate / library_rate;
    rows.push(Row {
        workload: format!("W9 HTTP publish, one at a time ({singles} packages)"),
        measured: format!("{http_rate:.0} packages/s"),
        target: "≥ 80% of the library's single rate".into(),
        baseline: format!("library {library_rate:.0} packages/s"),
        ratio: Some(ratio),
        met: Some(ratio >= SINGLE_RATIO),
    });

    // The batch endpoint: 1,000 archives per request, the bodies made before the clock starts.
    // Every version of the corpus's packages is published, and counted.
    let packages = mode.pick(2_000, 10_000);
    let records = corpus::corpus(packages, 33);
    served.extend(records.iter().map(|r| r.metadata.id.package().canonical()));
    let mut bodies = Vec::new();
    for chunk in records.chunks(1_000) {
        bodies.push(
            batch_body(
                &signer,
                chunk.iter().map(|r| corpus::archive(&r.metadata, 2_000)),
            )
            .await,
        );
    }
    // The library's `publish_batch` of the same archives on a fresh home, for the machine's
    // pace in this run (the HTTP target is absolute).
    let library_batch = {
        let (client, key) = local_client(&dir.path().join("library-batch")).await;
        let archives: Vec<Bytes> = records
            .iter()
            .map(|r| corpus::archive(&r.metadata, 2_000))
            .collect();
        crate::workloads::publish_batch_rate(&client, &key.private_key, &archives).await
    };
    let started = Instant::now();
    for body in bodies {
        post_batch(&http, &server, &token, body).await;
    }
    let batch_rate = records.len() as f64 / started.elapsed().as_secs_f64();
    rows.push(Row {
        workload: format!(
            "W9 HTTP batch publish, 1,000 per request ({} versions of {packages} packages)",
            records.len()
        ),
        measured: format!("{batch_rate:.0} packages/s"),
        target: "≥ 1,500/s".into(),
        baseline: format!("library publish_batch {library_batch:.0} packages/s"),
        ratio: Some(batch_rate / BATCH_RATE),
        met: Some(batch_rate >= BATCH_RATE),
    });

    // 1 MiB archives for the download row.
    let blobs: Vec<PackageMetadata> = corpus::corpus(64, 34)
        .into_iter()
        .map(|r| r.metadata)
        .collect();
    let body = batch_body(
        &signer,
        blobs.iter().map(|m| corpus::blob_archive(m, 1 << 20)),
    )
    .await;
    post_batch(&http, &server, &token, body).await;

    served.extend(blobs.iter().map(|m| m.id.package().canonical()));
    let seconds = mode.pick(5, 15);
    // Paths over every version (`prefix/PACKAGE/VERSION`), and over the W1 queries.
    let version_paths = |prefix: &str| -> Vec<String> {
        records
            .iter()
            .map(|r| {
                format!(
                    "{prefix}/{}/{}",
                    segment(&r.metadata),
                    r.metadata.id.version
                )
            })
            .collect()
    };
    let query_paths = |prefix: &str| -> Vec<String> {
        corpus::queries(false)
            .iter()
            .map(|q| format!("{prefix}{}", query_text(&q.text)))
            .collect()
    };
    let metadata_paths = version_paths("/api/v1/packages");
    let search_paths: Vec<String> = query_paths("/api/v1/search?q=")
        .into_iter()
        .map(|p| p + "&limit=20")
        .collect();
    let download_paths: Vec<String> = blobs
        .iter()
        .map(|m| format!("/api/v1/packages/{}/{}/download", segment(m), m.id.version))
        .collect();
    // The web catalogue's pages over the same server: every version's page, and the search
    // page (results and facets) for the W1 queries.
    let page_paths = version_paths("/packages");
    let search_page_paths = query_paths("/search?q=");
    // What the search page keeps between changes: facet counts, counted afresh by the API.
    let facets_paths = query_paths("/api/v1/facets?q=");
    let loads = [
        ("metadata", metadata_paths),
        ("search", search_paths),
        ("download", download_paths),
        ("package page", page_paths),
        ("search page", search_page_paths),
        ("facets", facets_paths),
    ];
    for (what, paths) in loads {
        let row = match &wrk {
            Err(why) => unavailable(&format!("W9 HTTP {what}"), "—", why),
            Ok(version) => match load(&server, dir.path(), what, &paths, seconds) {
                Ok(measured) => load_row(what, &measured, served.len(), version, seconds),
                Err(why) => unavailable(&format!("W9 HTTP {what}"), "—", &why),
            },
        };
        rows.push(row);
    }
    drop(server);

    rows.push(idle_rss(&mkt, dir.path(), &signer, mode).await);
    rows
}

/// The author's side: a marketplace of its own (it holds no lock on the served home) that
/// prepares and signs archives with the key registered to the publisher.
struct Signer {
    client: MarketplaceClient,
    key: PrivateKey,
    public: marketplace_core::PublicKey,
}

/// One archive's detached signature and the publication time it covers.
struct SignedItem {
    signature: marketplace_core::Signature,
    published_at: marketplace_core::time::OffsetDateTime,
}

impl Signer {
    async fn new(dir: &Path) -> Signer {
        let client = MarketplaceBuilder::local(dir)
            .and_then(MarketplaceBuilder::build)
            .expect("the author's marketplace");
        let key = client.generate_keypair().await.expect("keygen");
        Signer {
            client,
            key: key.private_key,
            public: key.public_key,
        }
    }

    /// `archive` and its detached signature, as `mkt publish` makes them.
    async fn sign(&self, archive: Bytes) -> (Bytes, SignedItem) {
        let prepared = self.client.prepare(archive.clone()).await.expect("prepare");
        let signature = self
            .client
            .crypto()
            .sign(&prepared.metadata, &self.key)
            .await
            .expect("sign");
        let item = SignedItem {
            signature,
            published_at: prepared.metadata.published_at,
        };
        (archive, item)
    }
}

/// Makes the served home: a publisher `bench` with the signer's key and a token that may
/// publish; returns the token.
async fn prepare_home(home: &Path, signer: &Signer) -> String {
    let client = MarketplaceBuilder::local(home)
        .and_then(MarketplaceBuilder::build)
        .expect("the served home");
    let user = UserName::new("bench").expect("name");
    client.create_user(user.clone(), false).await.expect("user");
    client
        .register_key(&user, &signer.public)
        .await
        .expect("register key");
    client
        .create_token(
            &user,
            "bench",
            [Scope::PublishNew, Scope::PublishUpdate],
            None,
            None,
        )
        .await
        .expect("token")
        .secret
}

/// The JSON body of one batch publish of `archives`, signed.
async fn batch_body(signer: &Signer, archives: impl Iterator<Item = Bytes>) -> Vec<u8> {
    let mut packages = Vec::new();
    for archive in archives {
        let (archive, item) = signer.sign(archive).await;
        packages.push(v1::BatchItem::new(
            &archive,
            &item.signature,
            item.published_at,
        ));
    }
    serde_json::to_vec(&v1::BatchRequest { packages }).expect("a batch body")
}

/// `POST /api/v1/batch` of `body`; every package must be published.
async fn post_batch(http: &reqwest::Client, server: &Served, token: &str, body: Vec<u8>) {
    let response = http
        .post(server.url("/api/v1/batch"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("batch publish");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{text}");
    let outcome: v1::BatchResponse = serde_json::from_str(&text).expect("a batch response");
    assert!(outcome.refused.is_empty(), "refused: {:?}", outcome.refused);
}

/// A package's path segment (a namespace's slash percent-encoded).
fn segment(metadata: &PackageMetadata) -> String {
    metadata.id.package().to_string().replace('/', "%2F")
}

/// A query's text in a URL (the corpus's words are ASCII letters, spaces between them).
fn query_text(text: &str) -> String {
    text.replace(' ', "+")
}

/// Remote installs may take this many times the local W4 install.
const REMOTE_INSTALL_RATIO: f64 = 2.0;
/// Remote search may add this much to the server-side search's median.
const REMOTE_SEARCH_MARGIN: Duration = Duration::from_millis(1);

/// W10 (#20): the client over the remote backends against `mkt serve` on loopback, beside the
/// same flows on the served home in the same run — the W4 install of a 50-package graph (cold:
/// no archive cache, every archive downloaded and verified), and the W1 queries.
pub async fn w10_remote(mode: Mode) -> Vec<Row> {
    let mkt = match release_mkt() {
        Ok(mkt) => mkt,
        Err(why) => return vec![unavailable("W10 remote client", "—", &why)],
    };
    // reqwest's TLS stack wants a provider chosen, although the server runs plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let (client, key) = local_client(&home).await;
    let chain: Vec<Bytes> = corpus::dependency_chain(50)
        .iter()
        .map(|m| corpus::archive(m, 2_000))
        .collect();
    client
        .publish_batch(chain, &key.private_key)
        .await
        .expect("publish the chain");
    let packages = mode.pick(1_000, 10_000);
    let searched: Vec<Bytes> = corpus::corpus(packages, 35)
        .iter()
        .map(|r| corpus::archive(&r.metadata, 200))
        .collect();
    client
        .publish_batch(searched, &key.private_key)
        .await
        .expect("publish the search corpus");
    let package: marketplace_core::PackageRef = "chain/pkg-0".parse().expect("root");
    let req = marketplace_core::parse_requirement("^1").expect("requirement");
    let installs = mode.pick(5, 20);
    let queries = corpus::queries(false);
    let rounds = mode.pick(2, 5);

    let install_with = |client: MarketplaceClient, tag: &'static str| {
        let dir = dir.path().to_owned();
        let package = package.clone();
        let req = req.clone();
        async move {
            let mut samples = Vec::new();
            for i in 0..installs {
                let dest = dir.join(format!("{tag}-{i}"));
                let started = Instant::now();
                let report = client
                    .install(&package, &req, &dest)
                    .await
                    .expect("install");
                samples.push(started.elapsed());
                assert_eq!(report.installed.len(), 50);
            }
            Latency::of(samples)
        }
    };
    let search_with = |client: MarketplaceClient| {
        let queries = queries.clone();
        async move {
            let mut samples = Vec::new();
            for _ in 0..rounds {
                for query in &queries {
                    let started = Instant::now();
                    client.search(query).await.expect("search");
                    samples.push(started.elapsed());
                }
            }
            Latency::of(samples)
        }
    };
    let local_install = install_with(client.clone(), "local").await;
    let local_search = search_with(client.clone()).await;
    drop(client);

    let served = Served::start(&mkt, &home).await;
    let remote = MarketplaceBuilder::remote(
        &served.base,
        marketplace_client::backends::remote::RemoteOptions::default(),
        dir.path().join("user-trust.json"),
    )
    .and_then(MarketplaceBuilder::build)
    .expect("a remote client");
    remote
        .trust_key(&key.public_key, marketplace_core::TrustLevel::Full)
        .await
        .expect("trust the author");
    let remote_install = install_with(remote.clone(), "remote").await;
    let remote_search = search_with(remote).await;
    drop(served);

    let ratio = remote_install.p50.as_secs_f64() / local_install.p50.as_secs_f64();
    let extra = remote_search.p50.saturating_sub(local_search.p50);
    vec![
        Row {
            workload: format!(
                "W10 remote install of the 50-package graph over HTTP (cold, {installs} installs)"
            ),
            measured: remote_install.show(),
            target: format!("≤ {REMOTE_INSTALL_RATIO}× the local W4 install"),
            baseline: format!("local {}", local_install.show()),
            ratio: Some(ratio / REMOTE_INSTALL_RATIO),
            met: Some(ratio <= REMOTE_INSTALL_RATIO),
        },
        Row {
            workload: format!(
                "W10 remote search on {} packages ({} queries)",
                packages + 50,
                queries.len() * rounds
            ),
            measured: format!("{} (+{})", remote_search.show(), duration(extra)),
            target: "p50 within 1 ms of the server-side search".into(),
            baseline: format!("server-side {}", local_search.show()),
            ratio: Some(extra.as_secs_f64() / REMOTE_SEARCH_MARGIN.as_secs_f64()),
            met: Some(extra <= REMOTE_SEARCH_MARGIN),
        },
    ]
}

/// `mkt serve` on a home, on 127.0.0.1 and a free port, without rate limits (the load
/// generator is one address).
pub(crate) struct Served {
    child: Child,
    pub(crate) base: String,
}

impl Served {
    pub(crate) async fn start(mkt: &Path, home: &Path) -> Served {
        let mut child = Command::new(mkt)
            .arg("--home")
            .arg(home)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--rate-limit-per-address",
                "0",
                "--rate-limit-per-token",
                "0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mkt serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut first)
            .expect("mkt serve's first line");
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("mkt serve said {first:?}"))
            .to_owned();
        let served = Served { child, base };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = http.get(served.url("/ready")).send().await
                && r.status().is_success()
            {
                return served;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("mkt serve at {} never became ready", served.base);
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `(current, peak)` resident set size in KiB, from `/proc`.
    pub(crate) fn rss_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }
}

/// Stopping the server is dropping it: the process is killed and reaped.
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// wrk's version line, or why it cannot be run.
pub(crate) fn wrk_version() -> Result<String, String> {
    let output = Command::new("wrk")
        .arg("-v")
        .output()
        .map_err(|_| "wrk is not installed: apt-get install wrk".to_owned())?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Ok(text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

/// What one wrk run measured.
pub(crate) struct Measured {
    pub(crate) requests: u64,
    pub(crate) seconds: f64,
    pub(crate) bytes: u64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
}

/// The wrk script: each request takes the next path of the file named after `--`, and the
/// summary comes back as one line this harness reads ([`WRK_DONE`]).
pub(crate) const WRK_SCRIPT: &str = r#"
local paths = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = math.random(#paths)
end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"#;

/// The end of every wrk script: the summary as one line this harness reads.
pub(crate) const WRK_DONE: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("MKT-WRK requests=%d duration_us=%d bytes=%d failed=%d status=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"#;

/// `seconds` of wrk with two threads and [`CONNECTIONS`] connections over `paths`, after a
/// one-second warm-up; every response must be a success.
fn load(
    server: &Served,
    dir: &Path,
    what: &str,
    paths: &[String],
    seconds: u64,
) -> Result<Measured, String> {
    load_with(server, dir, what, paths, seconds, WRK_SCRIPT)
}

/// [`load`] with another request script (`lines` are what it reads, one per line), followed
/// by [`WRK_DONE`]; a status of 400 or more is a failure.
pub(crate) fn load_with(
    server: &Served,
    dir: &Path,
    what: &str,
    lines: &[String],
    seconds: u64,
    script_text: &str,
) -> Result<Measured, String> {
    let paths = lines;
    let script = dir.join(format!("{what}.lua"));
    let list = dir.join(format!("{what}.paths"));
    std::fs::write(&script, format!("{script_text}{WRK_DONE}")).map_err(|e| e.to_string())?;
    std::fs::write(&list, paths.join("\n") + "\n").map_err(|e| e.to_string())?;
    let run = |seconds: u64| {
        Command::new("wrk")
            .args(["-t2", &format!("-c{CONNECTIONS}"), &format!("-d{seconds}s")])
            .arg("-s")
            .arg(&script)
            .arg(&server.base)
            .arg("--")
            .arg(&list)
            .output()
            .map_err(|e| format!("wrk: {e}"))
    };
    run(1)?;
    let output = run(seconds)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("MKT-WRK "))
        .ok_or_else(|| {
            format!(
                "wrk printed no summary: {stdout} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let field = |name: &str| -> Result<u64, String> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("wrk's summary lacks {name}: {line}"))
    };
    let (failed, status) = (field("failed")?, field("status")?);
    if failed + status > 0 {
        return Err(format!(
            "{failed} requests failed and {status} were not a success"
        ));
    }
    Ok(Measured {
        requests: field("requests")?,
        seconds: field("duration_us")? as f64 / 1e6,
        bytes: field("bytes")?,
        p50: Duration::from_micros(field("p50_us")?),
        p99: Duration::from_micros(field("p99_us")?),
    })
}

fn load_row(what: &str, m: &Measured, packages: usize, wrk: &str, seconds: u64) -> Row {
    let rps = m.requests as f64 / m.seconds;
    let latency = format!("p50 {} · p99 {}", duration(m.p50), duration(m.p99));
    let how = format!("{CONNECTIONS} connections, {seconds} s, {wrk}");
    match what {
        "metadata" => Row {
            workload: format!("W9 HTTP GET one version's metadata ({how})"),
            measured: format!("{rps:.0} req/s · {latency}"),
            target: "≥ 15,000 req/s · p99 < 5 ms".into(),
            baseline: "—".into(),
            ratio: Some(rps / METADATA_RPS),
            met: Some(rps >= METADATA_RPS && m.p99 < METADATA_P99),
        },
        "search" => Row {
            workload: format!("W9 HTTP search on {packages} packages ({how})"),
            measured: format!("{rps:.0} req/s · {latency}"),
            target: "≥ 3,000 req/s".into(),
            baseline: "—".into(),
            ratio: Some(rps / SEARCH_RPS),
            met: Some(rps >= SEARCH_RPS),
        },
        "facets" => Row {
            workload: format!("W9 HTTP facet counts on {packages} packages, uncached ({how})"),
            measured: format!("{rps:.0} req/s · {latency}"),
            target: "— (reported)".into(),
            baseline: "—".into(),
            ratio: None,
            met: None,
        },
        "package page" | "search page" => {
            let (page, target) = if what == "package page" {
                ("a version's page", PAGE_RPS)
            } else {
                ("the search page", SEARCH_PAGE_RPS)
            };
            let size = m.bytes / m.requests.max(1) / 1000;
            Row {
                workload: format!("W9 web catalogue: {page} on {packages} packages ({how})"),
                measured: format!("{rps:.0} req/s · {latency} · {size} KB a page"),
                target: format!("≥ {target:.0} req/s"),
                baseline: "—".into(),
                ratio: Some(rps / target),
                met: Some(rps >= target),
            }
        }
        _ => {
            let mb = m.bytes as f64 / 1e6 / m.seconds;
            Row {
                workload: format!("W9 HTTP download of 1 MiB archives ({how})"),
                measured: format!("{mb:.0} MB/s · {rps:.0} req/s · {latency}"),
                target: "≥ 800 MB/s".into(),
                baseline: "—".into(),
                ratio: Some(mb / DOWNLOAD_MB_PER_S),
                met: Some(mb >= DOWNLOAD_MB_PER_S),
            }
        }
    }
}

/// The resident memory of an idle server on a large home: the home filled through the batch
/// endpoint, then a fresh `mkt serve` started on it and left alone for a second.
async fn idle_rss(mkt: &Path, dir: &Path, signer: &Signer, mode: Mode) -> Row {
    let packages = mode.pick(20_000, 100_000);
    let home = dir.join("large");
    let token = prepare_home(&home, signer).await;
    let server = Served::start(mkt, &home).await;
    let http = reqwest::Client::new();
    let records = corpus::corpus(packages, 35);
    let workload = format!(
        "W9 idle server RSS on a {}k-package home ({} versions)",
        packages / 1000,
        records.len()
    );
    for chunk in records.chunks(1_000) {
        let body = batch_body(
            signer,
            chunk.iter().map(|r| corpus::archive(&r.metadata, 2_000)),
        )
        .await;
        post_batch(&http, &server, &token, body).await;
    }
    drop(server);
    let server = Served::start(mkt, &home).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let row = match server.rss_kib() {
        Some((now, peak)) => Row {
            workload,
            measured: format!(
                "{:.0} MiB (peak since start {:.0} MiB)",
                now as f64 / 1024.0,
                peak as f64 / 1024.0
            ),
            target: "— (reported)".into(),
            baseline: "—".into(),
            ratio: None,
            met: None,
        },
        None => unavailable(&workload, "— (reported)", "no /proc"),
    };
    drop(server);
    row
}
