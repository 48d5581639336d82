//! The write path against a bare hyper server measured in the same run.
//!
//! `cargo bench --bench intake` (release build). What users run is what is measured: the
//! `leadgate` binary started on a copy of the repository's example config (its CEL route to
//! the example webhook buyer), the buyer pointed at a real HTTP sink, every lead answered
//! only after its commit. The baseline is a bare hyper server (its own process, like the
//! gateway) that parses the JSON body and answers 201. The load generator is a lean
//! keep-alive HTTP/1.1 client in this process (like wrk: pre-formatted requests, no
//! client library), the same for both.
//!
//! Runs alternate baseline and gateway (A B A B) and each gateway figure is printed as a
//! ratio to the baseline run just before it:
//! - SQLite with delivery: throughput, p50/p99, then the drain (every accepted lead at the
//!   sink, counted there by `webhook-id`, duplicates reported);
//! - SQLite intake only (the route's CEL `when` matches nothing);
//! - idle intake → webhook received, p50/p99 over sequential leads;
//! - the floors: what any gateway that answers after a durable write must pay on this
//!   machine, measured with no parsing, storage or routing at all: a hyper server that
//!   appends each body to a file and answers after a shared `fdatasync` (group commit),
//!   and the same that then forwards each body to the sink (one POST per lead, as a
//!   webhook buyer gets it), and with PostgreSQL the same two with the bodies inserted
//!   into a table instead. The gateway's ratios can be read against these ceilings;
//! - with `LEADGATE_BENCH_POSTGRES=postgres://…/db`: the same on a fresh PostgreSQL
//!   database, and two instances on one database;
//! - with `LEADGATE_BENCH_PRELOAD=N`: intake only on a store already holding N leads
//!   (bulk-inserted first; the time that took is printed);
//! - with `LEADGATE_BENCH_IMPORT_ROWS=N`: `leadgate import --results` of an N-row CSV,
//!   rows/s and peak RSS.
//!
//! Settings: `LEADGATE_BENCH_SECS` (default 5), `LEADGATE_BENCH_CONNECTIONS` (default 32),
//! `LEADGATE_BENCH_SYNC=normal` (what `synchronous = "full"` costs), `LEADGATE_BENCH_ONLY`
//! (comma list of: delivery, intake, idle, floor, postgres, preload, import).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::let_underscore_must_use)]

use std::collections::HashSet;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

const ROLE_ENV: &str = "LEADGATE_BENCH_ROLE";
const SOURCE_KEY: &str = "example-key";

struct Report {
    name: String,
    requests: u64,
    accepted: u64,
    rps: f64,
    p50: Duration,
    p99: Duration,
}

fn main() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("bare") => return bare_hyper_process(),
        Ok("floor") => return floor_process(),
        _ => {}
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(bench());
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn wanted(what: &str) -> bool {
    match std::env::var("LEADGATE_BENCH_ONLY") {
        Ok(list) => list.split(',').any(|w| w.trim() == what),
        Err(_) => !matches!(what, "preload" | "import") || std::env::var(preload_env(what)).is_ok(),
    }
}

fn preload_env(what: &str) -> &'static str {
    match what {
        "preload" => "LEADGATE_BENCH_PRELOAD",
        _ => "LEADGATE_BENCH_IMPORT_ROWS",
    }
}

async fn bench() {
    let secs: u64 = env_or("LEADGATE_BENCH_SECS", 5);
    let conns: usize = env_or("LEADGATE_BENCH_CONNECTIONS", 32);
    let duration = Duration::from_secs(secs);
    let seq = Arc::new(AtomicU64::new(0));
    println!("intake benchmark: {conns} connections, {secs}s per run, example config, A B A B");
    let bare = BareHyper::start();
    let sink = Sink::start().await;

    if wanted("delivery") {
        let gw = Gateway::start("sqlite", Scenario::Delivery, sink.addr, None);
        for round in 1..=2 {
            let base = load(&format!("bare hyper #{round}"), bare.addr, "", conns, duration, &seq).await;
            print(&base, None);
            let before = sink.received();
            let r =
                load(&format!("SQLite, with delivery #{round}"), gw.addr, SOURCE_KEY, conns, duration, &seq)
                    .await;
            print(&r, Some(&base));
            sink.drain(before, r.accepted).await;
            commit_stats(gw.addr).await;
        }
    }
    if wanted("intake") {
        let gw = Gateway::start("sqlite", Scenario::IntakeOnly, sink.addr, None);
        for round in 1..=2 {
            let base = load(&format!("bare hyper #{round}"), bare.addr, "", conns, duration, &seq).await;
            print(&base, None);
            let r =
                load(&format!("SQLite, intake only #{round}"), gw.addr, SOURCE_KEY, conns, duration, &seq)
                    .await;
            print(&r, Some(&base));
        }
    }
    if wanted("floor") {
        for (label, forward) in
            [("floor: durable append", None), ("floor: durable append + forward", Some(sink.addr))]
        {
            let dir = tempfile::tempdir().unwrap();
            let floor = BareHyper::start_floor(&dir.path().join("append.log"), None, forward);
            for round in 1..=2 {
                let base = load(&format!("bare hyper #{round}"), bare.addr, "", conns, duration, &seq).await;
                print(&base, None);
                let before = sink.received();
                let r = load(&format!("{label} #{round}"), floor.addr, "", conns, duration, &seq).await;
                print(&r, Some(&base));
                if forward.is_some() {
                    sink.drain(before, r.accepted).await;
                }
            }
        }
    }
    if wanted("idle") {
        let gw = Gateway::start("sqlite", Scenario::Delivery, sink.addr, None);
        idle_latency(&gw, &sink, &seq, 300).await;
    }
    match std::env::var("LEADGATE_BENCH_POSTGRES") {
        Ok(server) if wanted("postgres") => postgres(&server, &bare, &sink, conns, duration, &seq).await,
        _ => println!("(PostgreSQL runs skipped: set LEADGATE_BENCH_POSTGRES=postgres://…/db)"),
    }
    if wanted("preload") {
        preloaded(&bare, &sink, conns, duration, &seq).await;
    }
    if wanted("import") {
        import(env_or("LEADGATE_BENCH_IMPORT_ROWS", 1_000_000)).await;
    }
}

async fn postgres(
    server: &str,
    bare: &BareHyper,
    sink: &Sink,
    conns: usize,
    duration: Duration,
    seq: &Arc<AtomicU64>,
) {
    let db = fresh_pg(server).await;
    let gw = Gateway::start(&db, Scenario::Delivery, sink.addr, None);
    for round in 1..=2 {
        let base = load(&format!("bare hyper #{round}"), bare.addr, "", conns, duration, seq).await;
        print(&base, None);
        let before = sink.received();
        let r =
            load(&format!("PostgreSQL, with delivery #{round}"), gw.addr, SOURCE_KEY, conns, duration, seq)
                .await;
        print(&r, Some(&base));
        sink.drain(before, r.accepted).await;
    }
    drop(gw);
    let db = fresh_pg(server).await;
    let gw = Gateway::start(&db, Scenario::IntakeOnly, sink.addr, None);
    let mut one = 0.0;
    for round in 1..=2 {
        let base = load(&format!("bare hyper #{round}"), bare.addr, "", conns, duration, seq).await;
        print(&base, None);
        let r = load(&format!("PostgreSQL, intake only #{round}"), gw.addr, SOURCE_KEY, conns, duration, seq)
            .await;
        print(&r, Some(&base));
        one = r.rps;
    }
    // Two instances on the same database, the load split between them.
    let gw2 = Gateway::start(&db, Scenario::IntakeOnly, sink.addr, None);
    let (a, b) = tokio::join!(
        load("PostgreSQL, instance 1 of 2", gw.addr, SOURCE_KEY, conns / 2, duration, seq),
        load("PostgreSQL, instance 2 of 2", gw2.addr, SOURCE_KEY, conns - conns / 2, duration, seq),
    );
    print(&a, None);
    print(&b, None);
    println!(
        "  two instances together: {:.0} leads/s ({:.2}x one instance)",
        a.rps + b.rps,
        (a.rps + b.rps) / one
    );
    drop((gw, gw2));
    // The floors on PostgreSQL: each body inserted, answered after its commit (and forwarded).
    for (label, forward) in
        [("floor: PostgreSQL insert", None), ("floor: PostgreSQL insert + forward", Some(sink.addr))]
    {
        let db = fresh_pg(server).await;
        let floor = BareHyper::start_floor(Path::new("/dev/null"), Some(&db), forward);
        for round in 1..=2 {
            let base = load(&format!("bare hyper #{round}"), bare.addr, "", conns, duration, seq).await;
            print(&base, None);
            let before = sink.received();
            let r = load(&format!("{label} #{round}"), floor.addr, "", conns, duration, seq).await;
            print(&r, Some(&base));
            if forward.is_some() {
                sink.drain(before, r.accepted).await;
            }
        }
    }
}

async fn preloaded(bare: &BareHyper, sink: &Sink, conns: usize, duration: Duration, seq: &Arc<AtomicU64>) {
    let n: u64 = env_or("LEADGATE_BENCH_PRELOAD", 10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("preloaded.db");
    let url = format!("sqlite://{}", db.display());
    let started = Instant::now();
    preload(&url, n).await;
    println!(
        "preloaded {n} leads (with their submissions' dedupe keys and events) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let empty = Gateway::start("sqlite", Scenario::IntakeOnly, sink.addr, None);
    let full = Gateway::start(&url, Scenario::IntakeOnly, sink.addr, Some(dir));
    for round in 1..=2 {
        let base = load(&format!("bare hyper #{round}"), bare.addr, "", conns, duration, seq).await;
        print(&base, None);
        let e = load(
            &format!("SQLite, intake only, empty #{round}"),
            empty.addr,
            SOURCE_KEY,
            conns,
            duration,
            seq,
        )
        .await;
        print(&e, Some(&base));
        let f = load(
            &format!("SQLite, intake only, {n} leads #{round}"),
            full.addr,
            SOURCE_KEY,
            conns,
            duration,
            seq,
        )
        .await;
        print(&f, Some(&base));
        println!("  preloaded store at {:.0} % of the empty-store rate", 100.0 * f.rps / e.rps);
    }
}

/// Fills a migrated store with `n` leads the way intake would have: a submission per
/// 1000 leads, each lead with its dedupe keys and events.
async fn preload(url: &str, n: u64) {
    let status = Command::new(env!("CARGO_BIN_EXE_leadgate"))
        .args(["migrate", "--config"])
        .arg(example_config_dir().as_path())
        .args(["--database", url])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "leadgate migrate failed");
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let script = format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA foreign_keys=OFF;
         BEGIN;
         WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {subs})
         INSERT INTO submissions (id, source, channel, format, content_type, meta, body, received_at, status, error, attempts, updated_at)
         SELECT printf('pre-sub-%012d', i), 'example', 'http', 'json', 'application/json', '{{}}', x'7b7d', 1700000000000 + i, 'processed', NULL, 1, 1700000000000 + i FROM s;
         WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {last})
         INSERT INTO leads (id, submission_id, record_index, source, status, fields, reasons, warnings, duplicate_of, vendor_lead_id, created_at, updated_at, score, grade, lifecycle, stage)
         SELECT printf('pre-lead-%012d', i), printf('pre-sub-%012d', i / 1000), i % 1000, 'example', 'accepted',
                printf('{{\"email\":\"pre%d@example.org\",\"first_name\":\"Pre\",\"last_name\":\"Loaded\"}}', i), '[]', '[]', NULL, NULL,
                1700000000000 + i, 1700000000000 + i, 60, 'B', NULL, 'delivered' FROM s;
         WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {last})
         INSERT INTO dedupe_keys (key_hash, lead_id, created_at)
         SELECT lower(hex(randomblob(32))), printf('pre-lead-%012d', i), 1700000000000 + i FROM s;
         WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {last})
         INSERT INTO dedupe_keys (key_hash, lead_id, created_at)
         SELECT lower(hex(randomblob(32))), printf('pre-lead-%012d', i), 1700000000000 + i FROM s;
         WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {last})
         INSERT INTO lead_events (lead_id, at, kind, detail)
         SELECT printf('pre-lead-%012d', i), 1700000000000 + i, 'received', '{{}}' FROM s;
         COMMIT;",
        subs = n / 1000,
        last = n.saturating_sub(1),
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(script)).execute(&mut c).await.unwrap();
}

async fn import(rows: u64) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("leads.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        writeln!(f, "First Name,Last Name,Email,Phone,Zip,State,Notes").unwrap();
        for i in 0..rows {
            writeln!(
                f,
                "Imp,Orted,import{i}@example.com,(212) {:03}-{:04},10001,NY,row {i}",
                200 + (i / 10_000) % 700,
                i % 10_000
            )
            .unwrap();
        }
    }
    let url = format!("sqlite://{}", dir.path().join("import.db").display());
    let results = dir.path().join("results.csv");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadgate"))
        .args(["import", "--quiet", "--source", "example", "--config"])
        .arg(example_config_dir().as_path())
        .args(["--database", &url, "--results"])
        .arg(&results)
        .arg(&csv)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        peak_kb = peak_kb.max(vm_hwm_kb(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let mut summary = String::new();
    if let Some(mut out) = child.stdout.take() {
        use std::io::Read;
        let _ = out.read_to_string(&mut summary);
    }
    assert!(status.success(), "import failed: {summary}");
    let result_lines = std::fs::read_to_string(&results).map(|s| s.lines().count()).unwrap_or(0);
    println!(
        "leadgate import --results, {rows} CSV rows: {:.1}s, {:.0} rows/s, peak RSS {} MB, results file {} lines",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        peak_kb / 1024,
        result_lines
    );
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The gateway's own view of its commits so far (`/metrics`, open to loopback): how many
/// requests and attempt results shared a commit, and how long a commit took.
async fn commit_stats(addr: SocketAddr) {
    let mut conn = Conn::open(addr).await;
    let request = format!("GET /metrics HTTP/1.1\r\nhost: {addr}\r\n\r\n").into_bytes();
    let status = conn.post(&request).await;
    let text = String::from_utf8_lossy(&conn.buf).to_string();
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let commits = value("leadgate_commit_seconds_count");
    if status != 200 || commits == 0.0 {
        println!("  (no commit metrics: /metrics answered {status})");
        return;
    }
    println!(
        "  gateway so far: {commits:.0} commits, {:.1} requests or attempt results each, {:.2} ms each",
        value("leadgate_commit_batch_submissions_sum")
            / value("leadgate_commit_batch_submissions_count").max(1.0),
        1e3 * value("leadgate_commit_seconds_sum") / commits
    );
    // The HTTP handler's own work, per request, beside the wait for the commit.
    let phases: Vec<String> = ["auth", "body", "prepare", "commit", "answer"]
        .iter()
        .map(|p| {
            let name = format!("leadgate_http_intake_phase_seconds_sum{{phase=\"{p}\"}}");
            let count = format!("leadgate_http_intake_phase_seconds_count{{phase=\"{p}\"}}");
            format!("{p} {:.1} µs", 1e6 * value(&name) / value(&count).max(1.0))
        })
        .collect();
    println!("  handler per request (averages): {}", phases.join(", "));
}

/// Sequential leads on an idle gateway: from the request leaving to the webhook arriving.
async fn idle_latency(gw: &Gateway, sink: &Sink, seq: &Arc<AtomicU64>, n: usize) {
    let mut conn = Conn::open(gw.addr).await;
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let before = sink.received();
        let i = seq.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let status = conn.post(&lead_request(gw.addr, SOURCE_KEY, i)).await;
        assert_eq!(status, 201, "idle lead not accepted");
        let arrived = sink.wait_for(before + 1, Duration::from_secs(5)).await;
        lat.push(arrived.expect("the webhook did not arrive within 5 s").duration_since(started));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lat.sort();
    println!(
        "idle intake -> webhook received, {n} sequential leads: p50 {:.2} ms  p99 {:.2} ms",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );
}

fn print(r: &Report, baseline: Option<&Report>) {
    let ratio = baseline.map(|b| format!("  ratio {:.3}x bare hyper", r.rps / b.rps)).unwrap_or_default();
    println!(
        "{:<44} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>7.2} ms  ({} requests){ratio}",
        r.name,
        r.rps,
        ms(r.p50),
        ms(r.p99),
        r.requests
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

/// The baseline, in a process of its own like the gateway: this benchmark binary again.
struct BareHyper {
    addr: SocketAddr,
    _child: KillOnDrop,
}

impl BareHyper {
    fn start() -> BareHyper {
        BareHyper::spawn(Command::new(std::env::current_exe().unwrap()).env(ROLE_ENV, "bare"))
    }

    /// The floor server (see [`floor_process`]) appending to `log` (or inserting into the
    /// PostgreSQL database `pg`), forwarding to `sink`.
    fn start_floor(log: &Path, pg: Option<&str>, sink: Option<SocketAddr>) -> BareHyper {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(ROLE_ENV, "floor").env("LEADGATE_BENCH_FLOOR_LOG", log);
        if let Some(pg) = pg {
            cmd.env("LEADGATE_BENCH_FLOOR_PG", pg);
        }
        if let Some(sink) = sink {
            cmd.env("LEADGATE_BENCH_FLOOR_SINK", sink.to_string());
        }
        BareHyper::spawn(&mut cmd)
    }

    fn spawn(cmd: &mut Command) -> BareHyper {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line)
            .unwrap();
        let addr = line.trim().parse().unwrap();
        BareHyper { addr, _child: KillOnDrop(child) }
    }
}

/// A bare hyper HTTP/1 server that parses the JSON body and answers 201 (multi-threaded
/// runtime, as the gateway's).
fn bare_hyper_process() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let ok = serde_json::from_slice::<serde_json::Value>(&body).is_ok();
                    let status = if ok { 201 } else { 400 };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(b"{\"outcome\":\"accepted\"}")))
                            .unwrap(),
                    )
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
}

/// The floor: the least a gateway that answers only after a durable write can do. Each
/// body is checked to be JSON (as the bare server does), appended to a file by a group
/// commit (one `write` and one `fdatasync` for whatever queued meanwhile, as the gateway's
/// writer does) and answered 201 after that sync; with a sink, each body is then POSTed to
/// it (reqwest, as the gateway's webhooks) with a `webhook-id`. No parsing into fields, no
/// dedupe, no routing, no rows: a ceiling for the gateway's ratios on this machine.
///
/// With `LEADGATE_BENCH_FLOOR_PG` the durable write is a PostgreSQL one instead: four
/// commit loops (as the gateway's writer on PostgreSQL), each inserting whatever queued
/// meanwhile into a table of bodies with one statement, answered after its commit.
fn floor_process() {
    let sink: Option<SocketAddr> =
        std::env::var("LEADGATE_BENCH_FLOOR_SINK").ok().map(|s| s.parse().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<FloorQueued>();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match std::env::var("LEADGATE_BENCH_FLOOR_PG") {
        Ok(url) => rt.block_on(floor_pg_loops(&url, rx)),
        Err(_) => {
            let log = std::env::var("LEADGATE_BENCH_FLOOR_LOG").unwrap();
            std::thread::spawn(move || {
                let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let mut buf = Vec::new();
                    for (body, _) in &batch {
                        buf.extend_from_slice(body);
                        buf.push(b'\n');
                    }
                    file.write_all(&buf).unwrap();
                    file.sync_data().unwrap();
                    for (_, done) in batch {
                        let _ = done.send(());
                    }
                }
            });
        }
    }
    rt.block_on(async move {
        let client = reqwest::Client::new();
        let url = sink.map(|a| format!("http://{a}/hook"));
        let seq = Arc::new(AtomicU64::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (tx, client, url, seq) = (tx.clone(), client.clone(), url.clone(), seq.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (tx, client, url, seq) = (tx.clone(), client.clone(), url.clone(), seq.clone());
                    async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let ok = serde_json::from_slice::<serde_json::Value>(&body).is_ok();
                        if ok {
                            let (done, synced) = tokio::sync::oneshot::channel();
                            tx.send((body.clone(), done)).unwrap();
                            let _ = synced.await;
                            if let Some(url) = url {
                                let id = seq.fetch_add(1, Ordering::Relaxed);
                                tokio::spawn(async move {
                                    let sent = client.post(url).header("webhook-id", format!("floor-{id}"));
                                    let _ = sent
                                        .header("content-type", "application/json")
                                        .body(body)
                                        .send()
                                        .await;
                                });
                            }
                        }
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(if ok { 201 } else { 400 })
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(b"{\"outcome\":\"accepted\"}")))
                                .unwrap(),
                        )
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
}

type FloorQueued = (Bytes, tokio::sync::oneshot::Sender<()>);

/// The PostgreSQL floor's commit loops (see [`floor_process`]).
async fn floor_pg_loops(url: &str, rx: std::sync::mpsc::Receiver<FloorQueued>) {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(url).await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS floor_bodies (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    // The std queue (the request tasks send without awaiting) feeds an async one.
    let (atx, arx) = tokio::sync::mpsc::unbounded_channel::<FloorQueued>();
    std::thread::spawn(move || {
        while let Ok(q) = rx.recv() {
            if atx.send(q).is_err() {
                return;
            }
        }
    });
    let arx = Arc::new(tokio::sync::Mutex::new(arx));
    for _ in 0..4 {
        let (pool, arx) = (pool.clone(), arx.clone());
        tokio::spawn(async move {
            loop {
                let mut batch = Vec::new();
                {
                    let mut rx = arx.lock().await;
                    let Some(first) = rx.recv().await else { return };
                    batch.push(first);
                    while batch.len() < 256 {
                        match rx.try_recv() {
                            Ok(q) => batch.push(q),
                            Err(_) => break,
                        }
                    }
                }
                let bodies: Vec<String> =
                    batch.iter().map(|(b, _)| String::from_utf8_lossy(b).into_owned()).collect();
                sqlx::query("INSERT INTO floor_bodies (body) SELECT * FROM UNNEST($1::text[])")
                    .bind(bodies)
                    .execute(&pool)
                    .await
                    .unwrap();
                for (_, done) in batch {
                    let _ = done.send(());
                }
            }
        });
    }
}

/// The webhook buyer's endpoint: counts deliveries and distinct `webhook-id`s.
struct Sink {
    addr: SocketAddr,
    state: Arc<SinkState>,
}

#[derive(Default)]
struct SinkState {
    received: AtomicU64,
    ids: Mutex<HashSet<String>>,
    last_at: Mutex<Option<Instant>>,
    notify: Notify,
}

impl Sink {
    async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(SinkState::default());
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let st = st.clone();
                        async move {
                            let id = req
                                .headers()
                                .get("webhook-id")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string);
                            let _ = req.into_body().collect().await;
                            if let Some(id) = id {
                                st.ids.lock().unwrap().insert(id);
                            }
                            *st.last_at.lock().unwrap() = Some(Instant::now());
                            st.received.fetch_add(1, Ordering::SeqCst);
                            st.notify.notify_waiters();
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                                b"{\"status\":\"accepted\"}",
                            ))))
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
                });
            }
        });
        Sink { addr, state }
    }

    fn received(&self) -> u64 {
        self.state.received.load(Ordering::SeqCst)
    }

    fn distinct(&self) -> u64 {
        self.state.ids.lock().unwrap().len() as u64
    }

    /// When the sink's count reached `n`, or None after `timeout`.
    async fn wait_for(&self, n: u64, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.state.notify.notified();
            if self.received() >= n {
                return *self.state.last_at.lock().unwrap();
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), notified).await;
        }
    }

    /// Waits (60 s at most) until `accepted` more leads than `before` arrived; reports the
    /// drain time after the load stopped and any lead delivered twice.
    async fn drain(&self, before: u64, accepted: u64) {
        let stopped = Instant::now();
        let arrived = self.wait_for(before + accepted, Duration::from_secs(60)).await;
        let got = self.received() - before;
        let drain = arrived.map(|t| t.saturating_duration_since(stopped)).unwrap_or(stopped.elapsed());
        let duplicates = self.received() - self.distinct();
        println!(
            "  at the sink: {got} of {accepted} accepted leads, the last {:.2}s after the load stopped; {duplicates} delivered twice",
            drain.as_secs_f64()
        );
    }
}

#[derive(Clone, Copy)]
enum Scenario {
    /// The example config as it is: its route sends every example lead to the webhook buyer.
    Delivery,
    /// The same config with the route's CEL `when` made to match nothing.
    IntakeOnly,
}

/// The `leadgate` binary serving a copy of the example config.
struct Gateway {
    addr: SocketAddr,
    _child: KillOnDrop,
    _dir: tempfile::TempDir,
    _keep: Option<tempfile::TempDir>,
}

fn example_config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

impl Gateway {
    fn start(db: &str, scenario: Scenario, sink: SocketAddr, keep: Option<tempfile::TempDir>) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        copy_dir(&example_config_dir(), &cfg);
        // The FTP drop would bind a fixed port; intake over HTTP is what is measured.
        let main = std::fs::read_to_string(cfg.join("leadgate.toml")).unwrap();
        let sync = std::env::var("LEADGATE_BENCH_SYNC").unwrap_or_else(|_| "full".into());
        let ftp = main.find("[ftp]").unwrap();
        let main =
            format!("{}{}", &main[..ftp], main[ftp..].replacen("enabled = true", "enabled = false", 1))
                .replace("synchronous = \"full\"", &format!("synchronous = \"{sync}\""));
        std::fs::write(cfg.join("leadgate.toml"), main).unwrap();
        if let Scenario::IntakeOnly = scenario {
            let routes = std::fs::read_to_string(cfg.join("routes.toml")).unwrap();
            let routes = routes.replace(
                "when = \"source == 'example'\"",
                "when = \"source == 'example' && product == 'bench-no-match'\"",
            );
            std::fs::write(cfg.join("routes.toml"), routes).unwrap();
        }
        let url = if db == "sqlite" {
            format!("sqlite://{}", dir.path().join("bench.db").display())
        } else {
            db.to_string()
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_leadgate"))
            .args(["serve", "--config"])
            .arg(&cfg)
            .args(["--listen", &addr.to_string(), "--database", &url])
            .env("LEADGATE_EXAMPLE_WEBHOOK_URL", format!("http://{sink}/leads"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let child = KillOnDrop(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "the gateway did not start: see {}",
                dir.path().join("gateway.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Gateway { addr, _child: child, _dir: dir, _keep: keep }
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

async fn fresh_pg(server: &str) -> String {
    use sqlx::Connection;
    let name = format!("lg_bench_{}", uuid::Uuid::now_v7().simple());
    let mut c = sqlx::PgConnection::connect(server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await.unwrap();
    let (base, _) = server.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// A distinct lead (its e-mail and phone unique in the run), as request bytes.
fn lead_request(addr: SocketAddr, key: &str, n: u64) -> Vec<u8> {
    let body = format!(
        "{{\"first_name\":\"Bench\",\"last_name\":\"Mark\",\"email\":\"bench{n}@example.com\",\"phone\":\"(415) {:03}-{:04}\",\"zip\":\"94107\",\"state\":\"CA\"}}",
        200 + (n / 10_000) % 700,
        n % 10_000
    );
    let auth = if key.is_empty() { String::new() } else { format!("x-api-key: {key}\r\n") };
    format!(
        "POST /v1/leads HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{auth}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One keep-alive HTTP/1.1 connection: write a request, read one response.
struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Conn { stream, buf: Vec::with_capacity(4096) }
    }

    /// Sends `request` and returns the response status (the body is read and dropped).
    async fn post(&mut self, request: &[u8]) -> u16 {
        self.stream.write_all(request).await.unwrap();
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).unwrap();
                let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while self.buf.len() < end + 4 + length {
                    let n = self.stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed mid-body");
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                return status;
            }
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the response");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `conns` keep-alive connections posting distinct leads for `duration`.
async fn load(
    name: &str,
    addr: SocketAddr,
    key: &str,
    conns: usize,
    duration: Duration,
    seq: &Arc<AtomicU64>,
) -> Report {
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conns {
        let (seq, key) = (seq.clone(), key.to_string());
        tasks.spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut latencies = Vec::new();
            let mut accepted = 0u64;
            while Instant::now() < deadline {
                let request = lead_request(addr, &key, seq.fetch_add(1, Ordering::Relaxed));
                let t = Instant::now();
                let status = conn.post(&request).await;
                assert!(status == 201 || status == 200, "status {status}");
                accepted += u64::from(status == 201);
                latencies.push(t.elapsed());
            }
            (latencies, accepted)
        });
    }
    let mut all = Vec::new();
    let mut accepted = 0;
    while let Some(r) = tasks.join_next().await {
        let (l, a) = r.unwrap();
        all.extend(l);
        accepted += a;
    }
    let elapsed = start.elapsed();
    all.sort();
    Report {
        name: name.into(),
        requests: all.len() as u64,
        accepted,
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
    }
}
