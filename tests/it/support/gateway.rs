//! `spawn_gateway`: a real gateway on 127.0.0.1:0 with its own config tree and database.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use leadgate::app::{self, Running, ServeOptions};
use leadgate::clock::ManualClock;
use leadgate::config::Config;
use serde_json::Value;

/// The source key every test config accepts.
pub const SOURCE_KEY: &str = "test-source-key";
/// A second source's key.
pub const OTHER_KEY: &str = "other-source-key";
/// The admin key.
pub const ADMIN_KEY: &str = "test-admin-key";

/// A database engine the suite runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    /// A server URL; each gateway gets a database of its own on it.
    Postgres(String),
}

impl Engine {
    /// SQLite always; PostgreSQL too when LEADGATE_TEST_POSTGRES holds a URL. Without it the
    /// PostgreSQL runs are left out (the ignored `every_test_also_runs_on_postgresql` says so in
    /// the summary), except with `CI=true`, where that fails the test.
    pub fn all() -> Vec<Engine> {
        let mut v = vec![Engine::Sqlite];
        match std::env::var("LEADGATE_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => v.push(Engine::Postgres(url)),
            _ => assert!(!super::in_ci(), "LEADGATE_TEST_POSTGRES is unset with CI=true"),
        }
        v
    }
}

/// Runs `test` once per engine, each time with a fresh gateway built by `builder`.
pub async fn each_engine<F>(builder: GatewayBuilder, test: F)
where
    F: AsyncFn(&mut Gateway),
{
    for engine in Engine::all() {
        let mut gw = builder.clone().engine(engine.clone()).start().await;
        eprintln!("engine: {engine:?}");
        test(&mut gw).await;
        gw.stop().await;
        if let Engine::Postgres(server) = &engine {
            drop_pg_database(server, &gw.database_url).await;
        }
    }
}

/// Config and engine for a gateway under test.
#[derive(Debug, Clone)]
pub struct GatewayBuilder {
    main_toml: String,
    sources: Vec<(String, String)>,
    buyers: Vec<(String, String)>,
    routes: Option<String>,
    engine: Engine,
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GatewayBuilder {
    /// Two sources: `test` (e-mail or phone required; dedupe on e-mail or phone, 30 days)
    /// and `other` (no rules).
    pub fn new() -> Self {
        Self {
            main_toml: format!(
                "[admin]\nkeys = [\"${{LG_TEST_UNSET_ADMIN:-{ADMIN_KEY}}}\"]\n\
                 [dedupe]\nkeys = [[\"email\"], [\"phone\"]]\nwindow = \"30d\"\n"
            ),
            sources: vec![
                (
                    "test".into(),
                    format!(
                        "keys = [\"${{LG_TEST_UNSET_SOURCE:-{SOURCE_KEY}}}\"]\n\
                         [aliases]\nsource_id = \"vendor_lead_id\"\n\
                         [xml]\npaths = {{ \"lead/interest\" = \"product\" }}\n\
                         [validate]\nrequired = [\"email or phone\"]\n"
                    ),
                ),
                ("other".into(), format!("keys = [\"${{LG_TEST_UNSET_OTHER:-{OTHER_KEY}}}\"]\n")),
            ],
            buyers: Vec::new(),
            routes: None,
            engine: Engine::Sqlite,
        }
    }

    /// Adds a buyer file (`buyers/<name>.toml`).
    pub fn buyer(mut self, name: &str, toml: &str) -> Self {
        self.buyers.retain(|(n, _)| n != name);
        self.buyers.push((name.into(), toml.into()));
        self
    }

    /// A webhook buyer delivering to `url` (loopback allowed), with a short retry
    /// schedule and `extra` TOML appended at top level (before the [webhook] table).
    pub fn webhook_buyer(self, name: &str, url: &str, extra: &str) -> Self {
        let toml = format!(
            "delivery = \"webhook\"\n{extra}\n[retry]\nschedule = [\"0s\", \"50ms\", \"100ms\"]\n\
             [webhook]\nurl = \"{url}\"\ntimeout = \"2s\"\nallow_private = [\"127.0.0.0/8\"]\n\
             [webhook.response]\nreject_if = '$.status == \"rejected\"'\nreason = '$.message'\n"
        );
        self.buyer(name, &toml)
    }

    /// Sets `routes.toml`.
    pub fn routes(mut self, toml: &str) -> Self {
        self.routes = Some(toml.into());
        self
    }

    /// Appends TOML to `leadgate.toml`.
    pub fn main(mut self, toml: &str) -> Self {
        self.main_toml.push_str(toml);
        self
    }

    /// Adds or replaces a source file.
    pub fn source(mut self, name: &str, toml: &str) -> Self {
        self.sources.retain(|(n, _)| n != name);
        self.sources.push((name.into(), toml.into()));
        self
    }

    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// Writes the config tree into a fresh temp dir: `(dir, dir/config)`.
    pub fn materialize(&self) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_dir = dir.path().join("config");
        std::fs::create_dir_all(config_dir.join("sources")).expect("config dir");
        std::fs::write(config_dir.join("leadgate.toml"), &self.main_toml).expect("write main");
        for (name, toml) in &self.sources {
            std::fs::write(config_dir.join("sources").join(format!("{name}.toml")), toml)
                .expect("write source");
        }
        std::fs::create_dir_all(config_dir.join("buyers")).expect("buyers dir");
        for (name, toml) in &self.buyers {
            std::fs::write(config_dir.join("buyers").join(format!("{name}.toml")), toml)
                .expect("write buyer");
        }
        if let Some(routes) = &self.routes {
            std::fs::write(config_dir.join("routes.toml"), routes).expect("write routes");
        }
        (dir, config_dir)
    }

    /// Writes the config tree into a fresh temp dir and starts a gateway on it.
    pub async fn start(self) -> Gateway {
        let (dir, config_dir) = self.materialize();
        let database_url = match &self.engine {
            Engine::Sqlite => format!("sqlite://{}", dir.path().join("data/leadgate.db").display()),
            Engine::Postgres(server) => fresh_pg_database(server).await,
        };
        let mut gw = Gateway {
            _dir: Arc::new(dir),
            config_dir,
            database_url,
            clock: ManualClock::new(),
            running: None,
            http: reqwest::Client::builder().no_proxy().build().expect("client"),
        };
        gw.boot().await;
        gw
    }
}

/// The prefix of every database the tests create: `lg_<run id>_` when `scripts/test-services`
/// set LEADGATE_TEST_PG_PREFIX (so that it can later drop exactly this run's leftovers and
/// never another run's), else `lg_`.
fn pg_database_prefix() -> String {
    match std::env::var("LEADGATE_TEST_PG_PREFIX") {
        Ok(p) if !p.is_empty() => {
            assert!(
                p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "LEADGATE_TEST_PG_PREFIX must be lower-case letters, digits and underscores: {p:?}"
            );
            p
        }
        _ => "lg_".to_owned(),
    }
}

/// Creates an empty database on the PostgreSQL server named by `server_url`.
pub async fn fresh_pg_database(server_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("{}{}", pg_database_prefix(), uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(server_url).await.expect("connect to LEADGATE_TEST_POSTGRES");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    conn.close().await.ok();
    match server_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => format!("{server_url}/{name}"),
    }
}

/// Drops a database made by [`fresh_pg_database`] (a failed test leaves it for inspection).
pub async fn drop_pg_database(server_url: &str, database_url: &str) {
    use sqlx::Connection;
    let Some((_, name)) = database_url.rsplit_once('/') else { return };
    let mut conn = sqlx::PgConnection::connect(server_url).await.expect("connect to LEADGATE_TEST_POSTGRES");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut conn)
        .await
        .expect("drop database");
    conn.close().await.ok();
}

/// A running gateway and a client for it.
pub struct Gateway {
    /// Owns the temp dir (config and SQLite file) for the gateway's life.
    _dir: Arc<tempfile::TempDir>,
    pub config_dir: PathBuf,
    pub database_url: String,
    pub clock: Arc<ManualClock>,
    running: Option<Running>,
    pub http: reqwest::Client,
}

impl Gateway {
    async fn boot(&mut self) {
        // Logs go through the test harness's capture: shown only for failing tests.
        let _ignored = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
            .with_test_writer()
            .try_init();
        let config = Config::load(&self.config_dir).unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
        let running = app::start(
            config,
            ServeOptions {
                listen: Some("127.0.0.1:0".into()),
                database_url: Some(self.database_url.clone()),
                clock: self.clock.clone(),
            },
        )
        .await
        .expect("gateway starts");
        self.running = Some(running);
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("gateway running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running().addr)
    }

    /// Graceful stop, then a new process-equivalent on the same config and database.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.boot().await;
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown.cancel();
            r.task.await.expect("join").expect("clean stop");
        }
    }

    /// Rewrites a source file of the config tree (takes effect on restart or reload).
    pub fn write_source(&self, name: &str, toml: &str) {
        std::fs::write(self.config_dir.join("sources").join(format!("{name}.toml")), toml)
            .expect("write source");
    }

    /// Rewrites any file of the config tree (relative path).
    pub fn write_config(&self, path: &str, text: &str) {
        std::fs::write(self.config_dir.join(path), text).expect("write config file");
    }

    /// Attempts every due delivery now and waits for the results.
    pub async fn deliver_due(&self) -> usize {
        self.running().outbox.deliver_due().await.expect("deliver due")
    }

    /// Runs the pool sweep now (lease and offer expiry, SLA breaches).
    pub async fn sweep(&self) -> usize {
        self.running().outbox.sweep().await
    }

    /// A request with a partner or buyer key.
    pub async fn as_buyer(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
        let mut req = match method {
            "GET" => self.http.get(self.url(path)),
            _ => self.http.post(self.url(path)),
        };
        req = req.header("x-api-key", key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        Answer::from(req.send().await.expect("request sent")).await
    }

    /// Polls the lead until `pred` holds (deadline 20 s), returning it.
    pub async fn wait_lead(&self, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let lead = self.lead(id).await;
            if pred(&lead) {
                return lead;
            }
            assert!(std::time::Instant::now() < deadline, "lead never reached the expected state: {lead:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// POSTs `body` to `/v1/leads` with the test source key.
    pub async fn post(&self, content_type: &str, body: impl Into<reqwest::Body>) -> Answer {
        self.post_with(content_type, body, &[("x-api-key", SOURCE_KEY)]).await
    }

    pub async fn post_json(&self, v: &Value) -> Answer {
        self.post("application/json", v.to_string()).await
    }

    pub async fn post_with(
        &self,
        content_type: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.http.post(self.url("/v1/leads")).body(body);
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Answer::from(req.send().await.expect("request sent")).await
    }

    pub async fn get_admin(&self, path: &str) -> Answer {
        let r =
            self.http.get(self.url(path)).header("x-api-key", ADMIN_KEY).send().await.expect("request sent");
        Answer::from(r).await
    }

    pub async fn post_admin(&self, path: &str) -> Answer {
        let r =
            self.http.post(self.url(path)).header("x-api-key", ADMIN_KEY).send().await.expect("request sent");
        Answer::from(r).await
    }

    /// The stored lead with its events.
    pub async fn lead(&self, id: &str) -> Value {
        let a = self.get_admin(&format!("/v1/leads/{id}")).await;
        assert_eq!(a.status, 200, "GET lead {id}: {}", a.text);
        a.json()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(r) = &self.running {
            r.shutdown.cancel();
        }
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl Answer {
    pub async fn from(r: reqwest::Response) -> Answer {
        let status = r.status().as_u16();
        let content_type =
            r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let text = r.text().await.expect("body");
        Answer { status, content_type, text }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// `json()["lead_id"]` as a string.
    pub fn lead_id(&self) -> String {
        self.json()["lead_id"].as_str().unwrap_or_else(|| panic!("no lead_id in {}", self.text)).to_string()
    }

    pub fn outcome(&self) -> String {
        self.json()["outcome"].as_str().unwrap_or_default().to_string()
    }
}
