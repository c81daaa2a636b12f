//! `bench-report [--quick] [--out DIR]`: runs every workload of SPEC §8 in this process (W8 in a
//! child), prints one table — workload, measured value, target, raw baseline, ratio, status —
//! and writes it as `report.md` and `report.json` under `DIR` (default `target/bench-report`).
//! Run through `cargo xtask bench-report`, which builds it in release mode.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use marketplace_benches::workloads::{self, Mode, Row};

fn table(rows: &[Row]) -> String {
    let headers = [
        "workload",
        "measured",
        "target",
        "baseline (same run)",
        "ratio",
        "status",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.workload.clone(),
                r.measured.clone(),
                r.target.clone(),
                r.baseline.clone(),
                r.ratio.map_or("—".into(), |x| format!("{x:.2}")),
                match r.met {
                    Some(true) => "met".into(),
                    Some(false) => "NOT MET".into(),
                    None => "—".into(),
                },
            ]
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", headers.join(" | "));
    let _ = writeln!(out, "|{}|", headers.map(|_| "---").join("|"));
    for row in &cells {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

fn json(rows: &[Row], mode: Mode, seconds: f64) -> String {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "workload": r.workload,
                "measured": r.measured,
                "target": r.target,
                "baseline": r.baseline,
                "ratio": r.ratio,
                "met": r.met,
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "mode": format!("{mode:?}").to_lowercase(),
        "seconds": seconds,
        "rows": rows,
    }))
    .unwrap_or_default()
}

fn w8(packages: usize) -> Row {
    let child = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            Command::new(exe)
                .args(["--child-index-rss", &packages.to_string()])
                .output()
                .ok()
        })
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    Row {
        workload: format!(
            "W8 peak RSS while indexing {}k packages (on-disk index)",
            packages / 1000
        ),
        measured: child.map_or("unavailable (no /proc)".into(), |kib| {
            format!("{:.0} MiB", kib as f64 / 1024.0)
        }),
        target: "— (reported)".into(),
        baseline: "—".into(),
        ratio: None,
        met: None,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child-index-rss") {
        let packages = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        match workloads::w8_index_peak_rss(packages).await {
            Some(kib) => println!("{kib}"),
            None => std::process::exit(1),
        }
        return;
    }
    if args.iter().any(|a| a == "--profile-search") {
        // For `perf record`: build the 100k index, then only run W1's text queries for a while,
        // so that a profile of this process is a profile of search.
        let engine =
            workloads::search_index(&marketplace_benches::corpus::corpus(100_000, 42)).await;
        eprintln!("index built; searching");
        let filters = std::env::var_os("PROFILE_FILTERS").is_some();
        let queries = marketplace_benches::corpus::queries(filters);
        let rounds = std::env::var("PROFILE_ROUNDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(20);
        let mut each = vec![Vec::with_capacity(rounds); queries.len()];
        for _ in 0..rounds {
            for (q, times) in queries.iter().zip(&mut each) {
                let started = Instant::now();
                marketplace_core::SearchEngine::search(&engine, q)
                    .await
                    .expect("search");
                times.push(started.elapsed());
            }
        }
        // The slowest queries first, by their median, so that a profile has a place to start.
        let mut medians: Vec<_> = queries
            .iter()
            .zip(&mut each)
            .map(|(q, times)| {
                times.sort();
                (times[times.len() / 2], q)
            })
            .collect();
        medians.sort_by_key(|m| std::cmp::Reverse(m.0));
        for (median, q) in medians.iter().take(15) {
            eprintln!("{median:>10.2?}  {q:?}");
        }
        return;
    }
    let mode = if args.iter().any(|a| a == "--quick") {
        Mode::Quick
    } else {
        Mode::Full
    };
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench-report"));
    // `--only w1,w4` runs a subset (for profiling one workload); the default runs all.
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(str::to_lowercase).collect());
    let wanted = |w: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == w));
    let started = Instant::now();
    let mut rows = Vec::new();
    if wanted("w1") {
        eprintln!("W1 search (building 10k and 100k indexes)…");
        rows.extend(workloads::w1_search(mode).await);
    }
    if wanted("w2") || wanted("w7") {
        eprintln!("W2/W7 registry and index rebuild…");
        rows.extend(workloads::w2_w7_registry(mode).await);
    }
    if wanted("w3") {
        eprintln!("W3 publish…");
        rows.extend(workloads::w3_publish(mode).await);
        rows.push(workloads::w3_cli_publish());
    }
    if wanted("w4") {
        eprintln!("W4 install…");
        rows.extend(workloads::w4_install(mode).await);
    }
    if wanted("w5") {
        eprintln!("W5 upload and download…");
        rows.extend(workloads::w5_transfer(mode).await);
    }
    if wanted("w6") {
        eprintln!("W6 verify…");
        rows.extend(workloads::w6_verify(mode).await);
    }
    if wanted("w8") {
        eprintln!("W8 peak memory (child process)…");
        rows.push(w8(100_000));
    }
    if wanted("w11") {
        eprintln!("W11 PostgreSQL registry beside SQLite (100k packages)…");
        rows.extend(marketplace_benches::postgres::w11_postgres(mode).await);
    }
    if wanted("w9") {
        eprintln!("W9 HTTP server (mkt serve under wrk)…");
        rows.extend(marketplace_benches::http::w9_http(mode).await);
    }
    if wanted("w12") {
        eprintln!("W12 Cargo registry (mkt serve under wrk and the machine's cargo)…");
        rows.extend(marketplace_benches::cargo::w12_cargo(mode).await);
    }
    if wanted("w10") {
        eprintln!("W10 remote client (over mkt serve)…");
        rows.extend(marketplace_benches::http::w10_remote(mode).await);
    }
    if wanted("baselines") {
        rows.extend(workloads::baselines());
    }
    let seconds = started.elapsed().as_secs_f64();

    let markdown = format!(
        "# bench-report ({} run, {:.0} s)\n\n{}",
        if mode == Mode::Quick { "quick" } else { "full" },
        seconds,
        table(&rows)
    );
    println!("{markdown}");
    if std::fs::create_dir_all(&out).is_ok() {
        let _ = std::fs::write(out.join("report.md"), &markdown);
        let _ = std::fs::write(out.join("report.json"), json(&rows, mode, seconds));
        println!("written: {}/report.md and report.json", out.display());
    }
}
