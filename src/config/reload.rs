//! Hot reload: a valid new tree is swapped in whole between requests; an invalid one is
//! refused, the old one keeps serving, and the problems are logged and shown by
//! `GET /v1/admin/config`.
//!
//! Triggers: a change under the config directory (debounced) and SIGHUP. Settings that
//! bind resources at start (listen address, database URL) need a restart; routing,
//! buyers, sources, keys and templates take effect at once. Counters (caps, round robin)
//! live in the store, so they survive reloads.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::Config;
use crate::clock::Clock;

/// What the last reloads did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    /// Incremented by every successful load (1 = the tree loaded at start).
    pub generation: u64,
    pub loaded_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// The problems of the last refused tree, until a valid one loads.
    pub last_error: Option<String>,
}

/// Reloads the tree under `dir` into `config`.
#[derive(Clone)]
pub struct Reloader {
    dir: PathBuf,
    config: Arc<ArcSwap<Config>>,
    status: Arc<Mutex<ReloadStatus>>,
    clock: Arc<dyn Clock>,
}

impl Reloader {
    pub fn new(config: Arc<ArcSwap<Config>>, clock: Arc<dyn Clock>) -> Reloader {
        let dir = config.load().dir.clone();
        let now = crate::clock::rfc3339(clock.now_ms());
        let status = ReloadStatus {
            generation: 1,
            loaded_at: Some(now.clone()),
            last_attempt_at: Some(now),
            last_error: None,
        };
        Reloader { dir, config, status: Arc::new(Mutex::new(status)), clock }
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Loads the tree again; swaps it in when valid. Returns whether it was.
    pub async fn reload(&self) -> bool {
        let dir = self.dir.clone();
        let loaded = tokio::task::spawn_blocking(move || Config::load(&dir)).await;
        let now = crate::clock::rfc3339(self.clock.now_ms());
        let result = match loaded {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!("reload task failed: {e}")),
        };
        let Ok(mut status) = self.status.lock() else { return false };
        status.last_attempt_at = Some(now.clone());
        match result {
            Ok(new) => {
                for w in &new.warnings {
                    tracing::warn!("{w}");
                }
                self.config.store(Arc::new(new));
                status.generation += 1;
                status.loaded_at = Some(now);
                status.last_error = None;
                tracing::info!(generation = status.generation, "Config reloaded.");
                true
            }
            Err(e) => {
                tracing::error!(problems = %e, "Config reload refused: the tree is invalid; the previous config keeps serving.");
                status.last_error = Some(e);
                false
            }
        }
    }

    /// Watches the directory and SIGHUP until `shutdown`.
    pub fn spawn(self, shutdown: CancellationToken) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
        let watcher = {
            let tx = tx.clone();
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if let Ok(ev) = res
                    && !matches!(ev.kind, notify::EventKind::Access(_))
                {
                    let _full_is_fine = tx.try_send(());
                }
            })
        };
        let watcher = match watcher {
            Ok(mut w) => {
                use notify::Watcher as _;
                match w.watch(&self.dir, notify::RecursiveMode::Recursive) {
                    Ok(()) => Some(w),
                    Err(e) => {
                        tracing::warn!(error.message = %e, "Cannot watch the config directory; reload with SIGHUP.");
                        None
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error.message = %e, "Cannot watch the config directory; reload with SIGHUP.");
                None
            }
        };
        #[cfg(unix)]
        {
            let tx = tx.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                else {
                    return;
                };
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        got = hup.recv() => {
                            if got.is_none() { return; }
                            let _full_is_fine = tx.try_send(());
                        }
                    }
                }
            });
        }
        tokio::spawn(async move {
            let _keep_watching = watcher;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    got = rx.recv() => if got.is_none() { return },
                }
                // Editors write several events per save: wait for quiet, then load once.
                tokio::time::sleep(Duration::from_millis(250)).await;
                while rx.try_recv().is_ok() {}
                self.reload().await;
            }
        });
    }
}
