//! File import benchmark: rows per second of `leadgate import` (the whole pipeline into a
//! fresh SQLite store, committed in chunks) next to two baselines measured in the same
//! run on the same file: the bare `csv` crate reading it, and leadgate's own streaming
//! reader (decode + rows, no pipeline). Prints the process's peak memory after each step.
//!
//! ```sh
//! cargo run --release --example file_import_bench -- 1000000     # rows (default 200000)
//! ```

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use leadgate::app;
use leadgate::clock::SystemClock;
use leadgate::config::Config;
use leadgate::intake::files::{self, FileContext, Incoming};
use leadgate::parse::table::TableOptions;
use leadgate::submission::channel;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _previous = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rows: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(200_000);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("leads.csv");
    write_csv(&file, rows)?;
    let mb = std::fs::metadata(&file)?.len() as f64 / 1e6;
    println!("file: {rows} rows, {mb:.1} MB");

    // Baseline 1: the csv crate alone.
    let started = Instant::now();
    let mut reader = csv::ReaderBuilder::new().from_path(&file)?;
    let mut record = csv::ByteRecord::new();
    let mut n = 0usize;
    while reader.read_byte_record(&mut record)? {
        n += 1;
    }
    report("csv crate, read only (baseline)", n, started, None);

    // Baseline 2: leadgate's reader (rows and records, no pipeline).
    let started = Instant::now();
    let mut n = 0usize;
    let input = std::io::BufReader::new(std::fs::File::open(&file)?);
    leadgate::parse::csv::read_rows(input, &TableOptions::default(), &mut |_| {}, &mut |_row| {
        n += 1;
        true
    })?;
    report("leadgate reader (decode + records)", n, started, None);

    // The import: parse, normalize, validate, dedupe, commit to SQLite (synchronous=FULL).
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(config_dir.join("sources"))?;
    std::fs::write(
        config_dir.join("leadgate.toml"),
        format!(
            "[admin]\nkeys = [\"${{BENCH_UNSET:-bench-admin-key}}\"]\n[files]\nwork_dir = \"{0}/work\"\narchive_dir = \"{0}/archive\"\n",
            dir.path().display()
        ),
    )?;
    std::fs::write(
        config_dir.join("sources/bench.toml"),
        "keys = [\"${BENCH_UNSET:-bench-source-key}\"]\n[validate]\nrequired = [\"email or phone\"]\n",
    )?;
    let config = Config::load(&config_dir).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = app::open_store(&config, &url).await?;
        let clock: Arc<dyn leadgate::clock::Clock> = Arc::new(SystemClock);
        let (writer, mut writers) = app::start_writer(
            &store,
            &config,
            clock.clone(),
            Arc::new(tokio::sync::Notify::new()),
            None,
            tokio_util::sync::CancellationToken::new(),
        );
        let cx = FileContext {
            config: Arc::new(ArcSwap::from_pointee(config)),
            commit: Some((store.clone(), writer)),
            clock,
            shutdown: tokio_util::sync::CancellationToken::new(),
        };
        let incoming = Incoming {
            source: "bench".into(),
            channel: channel::IMPORT,
            name: "leads.csv".into(),
            path: file.clone(),
            format: None,
            results: Some(dir.path().join("results.csv")),
            stage: false,
        };
        let started = Instant::now();
        let report_ = files::take_in(&cx, incoming, &mut |_| {}).await?;
        let t = report_.tally;
        report(
            "leadgate import (pipeline + SQLite commit + results file)",
            t.rows as usize,
            started,
            Some(format!("accepted {}, duplicate {}, rejected {}", t.accepted, t.duplicate, t.rejected)),
        );
        drop(cx);
        while writers.join_next().await.is_some() {}
        store.close().await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}

fn report(what: &str, rows: usize, started: Instant, extra: Option<String>) {
    let secs = started.elapsed().as_secs_f64();
    let rate = rows as f64 / secs.max(1e-9);
    let peak = peak_rss_mb().map(|m| format!("{m:.0} MB")).unwrap_or_else(|| "n/a".into());
    println!("{what:<58} {rows:>9} rows {secs:>8.2} s {rate:>10.0} rows/s   peak RSS {peak}");
    if let Some(e) = extra {
        println!("{:<58} {e}", "");
    }
}

/// The process's peak resident memory (Linux `VmHWM`).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Distinct leads (a duplicate every 50 rows, an invalid e-mail every 97) with realistic cells.
fn write_csv(path: &Path, rows: usize) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "First Name,Last Name,E-mail Address,Phone Number,Zip Code,State,Product,Notes")?;
    for i in 0..rows {
        let email = if i % 97 == 3 {
            format!("broken{i}@example")
        } else if i % 50 == 49 {
            format!("person{}@example.com", i - 1)
        } else {
            format!("person{i}@example.com")
        };
        writeln!(
            out,
            "Person{i},Test,{email},(303) {}-{:04},{:05},CO,solar,\"note, with comma {i}\"",
            200 + (i / 10_000) % 800,
            i % 10_000,
            80000 + i % 999
        )?;
    }
    out.flush()
}
