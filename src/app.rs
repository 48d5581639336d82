//! Wiring: open the store, start the writer, serve HTTP, shut down in order.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::clock::Clock;
use crate::config::reload::Reloader;
use crate::config::{Config, DEFAULT_DATABASE_URL};
use crate::deliver::handoff::Handoff;
use crate::deliver::outbox::Outbox;
use crate::intake::{self, ChannelContext};
use crate::pipeline::writer::{Writer, WriterOptions};
use crate::store::{Dialect, Store, StoreError, StoreOptions};

/// Why the gateway could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot open the store at {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Most deliveries waiting in memory for the outbox; beyond, they wait in the table.
const HANDOFF_CAPACITY: usize = 8192;

/// Overrides from the command line or environment.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub clock: Arc<dyn Clock>,
}

/// A started gateway.
pub struct Running {
    pub addr: SocketAddr,
    pub store: Store,
    pub config: Arc<ArcSwap<Config>>,
    /// The delivery worker (its `deliver_due` drains the queue on demand).
    pub outbox: Outbox,
    /// Cancel to shut down gracefully; then await `task`.
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), AppError>>,
}

/// The database URL in effect: flag/env, then the config file, then the default.
pub fn database_url(config: &Config, flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| config.store.url.clone())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string())
}

/// Opens the store named by `url` with the config's settings.
pub async fn open_store(config: &Config, url: &str) -> Result<Store, AppError> {
    Store::open(&StoreOptions {
        url: url.to_string(),
        synchronous_full: config.store.synchronous_full,
        max_connections: 16,
    })
    .await
    .map_err(|source| AppError::Store { url: redact_url(url), source })
}

/// Starts the writer for `store`: one commit loop on SQLite (one write lock anyway),
/// several on PostgreSQL. `wake` is notified when a commit leaves work for the outbox's
/// poller; `handoff` takes the deliveries a commit creates (the serving instance's outbox);
/// the loops stop when every handle is dropped or `stop` is cancelled.
pub fn start_writer(
    store: &Store,
    config: &Config,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    handoff: Option<Handoff>,
    stop: CancellationToken,
) -> (Writer, tokio::task::JoinSet<()>) {
    let writers = match store.dialect() {
        Dialect::Sqlite => 1,
        Dialect::Postgres => 4,
    };
    Writer::spawn(
        store.clone(),
        clock,
        wake,
        WriterOptions { batch_max: config.store.batch_max, writers, handoff, stop },
    )
}

/// On PostgreSQL, forwards `NOTIFY leadgate_outbox` (sent by any instance's commit) to
/// this instance's outbox worker, reconnecting with backoff.
fn spawn_pg_listener(url: String, wake: Arc<Notify>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut backoff = std::time::Duration::from_millis(200);
        loop {
            let listened = async {
                let mut l = sqlx::postgres::PgListener::connect(&url).await?;
                l.listen("leadgate_outbox").await?;
                loop {
                    l.recv().await?;
                    wake.notify_one();
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                r = listened => {
                    let r: Result<(), sqlx::Error> = r;
                    if let Err(e) = r {
                        tracing::warn!(error.message = %e, "Outbox LISTEN connection lost; reconnecting.");
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {},
            }
            backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
        }
    });
}

/// Opens the store, binds the listener and serves until `shutdown` is cancelled.
pub async fn start(config: Config, opts: ServeOptions) -> Result<Running, AppError> {
    let url = database_url(&config, opts.database_url.as_deref());
    let store = open_store(&config, &url).await?;
    let listen = opts.listen.clone().unwrap_or_else(|| config.server.listen.clone());
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|source| AppError::Listen { addr: listen.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| AppError::Listen { addr: listen.clone(), source })?;

    if let Some(handle) = crate::telemetry::metrics() {
        // Without upkeep, histogram buckets grow without bound (the exporter's docs).
        let handle = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    }
    let wake = Arc::new(Notify::new());
    // Deliveries this instance commits are leased to its outbox and handed over in memory.
    let owner = crate::submission::new_id();
    let lease_ms = i64::try_from(config.outbox.lease.as_millis()).unwrap_or(i64::MAX / 4);
    let (handoff, handed) = crate::deliver::handoff::handoff(owner.clone(), lease_ms, HANDOFF_CAPACITY);
    let pending = handoff.pending();
    let writer_stop = CancellationToken::new();
    let (writer, mut writers) =
        start_writer(&store, &config, opts.clock.clone(), wake.clone(), Some(handoff), writer_stop.clone());
    let grace = config.server.shutdown_grace;
    let config = Arc::new(ArcSwap::from_pointee(config));
    let shutdown = CancellationToken::new();
    let outbox = Outbox::new(
        store.clone(),
        writer.clone(),
        config.clone(),
        opts.clock.clone(),
        wake.clone(),
        owner.clone(),
        pending,
    );
    if store.dialect() == Dialect::Postgres {
        spawn_pg_listener(url.clone(), wake.clone(), shutdown.clone());
    }
    let outbox_task = tokio::spawn(outbox.clone().run(Some(handed), shutdown.clone()));
    let reloader = Reloader::new(config.clone(), opts.clock.clone());
    reloader.clone().spawn(shutdown.clone());
    let channel_cx = ChannelContext {
        config: config.clone(),
        writer: writer.clone(),
        store: store.clone(),
        clock: opts.clock.clone(),
        shutdown: shutdown.clone(),
    };
    let mut channel_tasks = tokio::task::JoinSet::new();
    for channel in intake::channels(&config.load()) {
        let (name, cx) = (channel.name(), channel_cx.clone());
        channel_tasks.spawn(async move {
            if let Err(e) = channel.run(cx).await {
                tracing::error!(channel = name, error.message = %e, "Intake channel stopped.");
            }
        });
    }
    drop(channel_cx);
    let state = AppState {
        config: config.clone(),
        store: store.clone(),
        writer,
        clock: opts.clock.clone(),
        shutdown: shutdown.clone(),
        reloader,
    };
    let router = api::router(state);
    let task_store = store.clone();
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(token.clone().cancelled_owned());
        let serve = async move { serve.await.map_err(AppError::Serve) };
        tokio::pin!(serve);
        // Serve until cancelled; then give in-flight requests the grace period.
        let result = tokio::select! {
            r = &mut serve => r,
            () = token.cancelled() => match tokio::time::timeout(grace, &mut serve).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(grace_secs = grace.as_secs(), "In-flight requests did not finish within the grace period.");
                    Ok(())
                }
            },
        };
        // Channels finish what they hold; in-flight deliveries record their results
        // (through the writer); then the writers drain their queue, commit it, and stop.
        while channel_tasks.join_next().await.is_some() {}
        if outbox_task.await.is_err() {
            tracing::error!("The outbox worker panicked.");
        }
        writer_stop.cancel();
        while writers.join_next().await.is_some() {}
        // Deliveries handed over but not attempted are due again at once (next start, or
        // another instance), not after their lease.
        if let Err(e) = task_store.release_leases(&owner).await {
            tracing::warn!(error.message = %e, "Cannot release the outbox's leases; they run out by themselves.");
        }
        task_store.close().await;
        tracing::info!("Gateway stopped.");
        result
    });
    Ok(Running { addr, store, config, outbox, shutdown, task })
}

/// A database URL for logs: the password replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
