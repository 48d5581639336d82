//! HTTP intake throughput against a baseline measured in the same run.
//!
//! `cargo bench --bench intake` (release build). Baseline: a bare hyper server that only
//! parses the JSON body and answers 201. Then the gateway on a fresh SQLite file (and on
//! PostgreSQL when LEADGATE_BENCH_POSTGRES holds a server URL), every lead answered only
//! after its commit, then the gateway with a webhook buyer (intake to delivered).
//! The load generator runs in the same process with the same concurrency for each, so
//! the ratio is what matters. Settings: LEADGATE_BENCH_SECS (default 5),
//! LEADGATE_BENCH_CONNECTIONS (default 32).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::let_underscore_must_use)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

struct Report {
    name: String,
    requests: u64,
    rps: f64,
    p50: Duration,
    p99: Duration,
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if std::env::var("RUST_LOG").is_ok() {
        leadgate::telemetry::init(false);
    }
    let secs: u64 = std::env::var("LEADGATE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let conns: usize =
        std::env::var("LEADGATE_BENCH_CONNECTIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(32);
    let duration = Duration::from_secs(secs);
    println!("intake benchmark: {conns} connections, {secs}s per run");

    let baseline_addr = bare_hyper().await;
    let baseline = load("bare hyper (parse JSON, 201)", baseline_addr, "", conns, duration).await;
    print(&baseline, None);

    let (_dir, gw) = gateway("sqlite", None, false).await;
    let r = load("leadgate, SQLite, answered after commit", gw, "example-key", conns, duration).await;
    print(&r, Some(&baseline));

    if let Ok(pg) = std::env::var("LEADGATE_BENCH_POSTGRES") {
        let db = fresh_pg(&pg).await;
        let (_dir2, gw) = gateway(&db, None, false).await;
        let r = load("leadgate, PostgreSQL, answered after commit", gw, "example-key", conns, duration).await;
        print(&r, Some(&baseline));
    } else {
        println!("(PostgreSQL run skipped: LEADGATE_BENCH_POSTGRES unset)");
    }

    let delivered = Arc::new(AtomicU64::new(0));
    let receiver = receiver(delivered.clone()).await;
    let (_dir3, gw) = gateway("sqlite", Some(receiver), true).await;
    let r = load("leadgate, SQLite, with a webhook buyer", gw, "example-key", conns, duration).await;
    print(&r, Some(&baseline));
    let accepted = r.requests;
    let wait = Instant::now();
    while delivered.load(Ordering::Relaxed) < accepted && wait.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = r.rps * duration.as_secs_f64();
    println!(
        "  delivered {} of {} accepted leads, {:.0} delivered/s including the drain",
        delivered.load(Ordering::Relaxed),
        total as u64,
        delivered.load(Ordering::Relaxed) as f64 / (duration + wait.elapsed()).as_secs_f64()
    );
}

fn print(r: &Report, baseline: Option<&Report>) {
    let ratio = baseline.map(|b| format!("  ratio to baseline {:.2}", r.rps / b.rps)).unwrap_or_default();
    println!(
        "{:<48} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} requests){ratio}",
        r.name,
        r.rps,
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3,
        r.requests
    );
}

/// A bare hyper HTTP/1 server that parses the JSON body and answers 201.
async fn bare_hyper() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
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
                            .body(Full::new(Bytes::from_static(b"{\"outcome\":\"accepted\"}")))
                            .unwrap(),
                    )
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
    addr
}

/// A webhook receiver counting deliveries.
async fn receiver(count: Arc<AtomicU64>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let count = count.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let count = count.clone();
                    async move {
                        let _ = req.into_body().collect().await;
                        count.fetch_add(1, Ordering::Relaxed);
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
    addr
}

/// Starts a gateway with the example source (and optionally a webhook buyer).
async fn gateway(db: &str, buyer: Option<SocketAddr>, route: bool) -> (tempfile::TempDir, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config");
    std::fs::create_dir_all(cfg.join("sources")).unwrap();
    std::fs::create_dir_all(cfg.join("buyers")).unwrap();
    // LEADGATE_BENCH_SYNC=normal measures what `synchronous=FULL` costs.
    let sync = std::env::var("LEADGATE_BENCH_SYNC").unwrap_or_else(|_| "full".into());
    std::fs::write(
        cfg.join("leadgate.toml"),
        format!("[admin]\nkeys = [\"${{X_UNSET:-admin-key-bench}}\"]\n[store]\nsynchronous = \"{sync}\"\n"),
    )
    .unwrap();
    std::fs::write(
        cfg.join("sources/example.toml"),
        "keys = [\"${X_UNSET:-example-key}\"]\n[validate]\nrequired = [\"email or phone\"]\n",
    )
    .unwrap();
    if let Some(addr) = buyer {
        std::fs::write(
            cfg.join("buyers/sink.toml"),
            format!("delivery = \"webhook\"\n[webhook]\nurl = \"http://{addr}/leads\"\nallow_private = [\"127.0.0.0/8\"]\n"),
        )
        .unwrap();
    }
    if route {
        std::fs::write(cfg.join("routes.toml"), "[[route]]\nname = \"all\"\nbuyers = [\"sink\"]\n").unwrap();
    }
    let url = if db == "sqlite" {
        format!("sqlite://{}", dir.path().join("bench.db").display())
    } else {
        db.to_string()
    };
    let config = leadgate::config::Config::load(&cfg).unwrap();
    let running = leadgate::app::start(
        config,
        leadgate::app::ServeOptions {
            listen: Some("127.0.0.1:0".into()),
            database_url: Some(url),
            clock: Arc::new(leadgate::clock::SystemClock),
        },
    )
    .await
    .unwrap();
    let addr = running.addr;
    std::mem::forget(running);
    (dir, addr)
}

async fn fresh_pg(server: &str) -> String {
    use sqlx::Connection;
    let name = format!("lg_bench_{}", uuid::Uuid::now_v7().simple());
    let mut c = sqlx::PgConnection::connect(server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await.unwrap();
    let (base, _) = server.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// `conns` keep-alive connections posting distinct leads for `duration`.
async fn load(name: &str, addr: SocketAddr, key: &str, conns: usize, duration: Duration) -> Report {
    let seq = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conns {
        let (seq, key) = (seq.clone(), key.to_string());
        tasks.spawn(async move {
            let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(1).build().unwrap();
            let url = format!("http://{addr}/v1/leads");
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let body = format!(
                    "{{\"first_name\":\"Bench\",\"last_name\":\"Mark\",\"email\":\"bench{n}@example.com\",\"phone\":\"(415) {:03}-{:04}\",\"zip\":\"94107\",\"state\":\"CA\"}}",
                    200 + (n / 10_000) % 700,
                    n % 10_000
                );
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-api-key", &key)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                assert!(status == 201 || status == 200, "status {status}");
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Report {
        name: name.into(),
        requests: all.len() as u64,
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.5),
        p99: pct(0.99),
    }
}
