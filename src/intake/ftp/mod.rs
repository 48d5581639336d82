//! The FTP drop: an embedded FTP(S) server (libunftp) where each source's vendor logs in
//! to its own home directory, uploads lead files and downloads their results.
//!
//! - Explicit FTPS (`AUTH TLS`) with the operator's certificate, required on the control
//!   and data connections unless `ftp.allow_plain` says otherwise.
//! - One account per source (`[ftp]` in the source file, password hashed or from the
//!   environment, see [`auth`]); repeated failed logins block the user and address for a
//!   while (libunftp's failed-logins policy).
//! - Each vendor is jailed to `<ftp.root>/<source>/`; results appear in its `results/`.
//! - An upload is answered 226 only once its rows are committed: see [`storage`].

pub mod auth;
pub mod storage;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use libunftp::ServerBuilder;
use libunftp::options::{FailedLoginsBlock, FailedLoginsPolicy, FtpsRequired, Shutdown};

use super::files::{self, FileContext};
use super::{Channel, ChannelContext, ChannelError};
use crate::config::file_intake::FtpSettings;
use crate::submission::channel;

/// The vendor-visible directory of results files, in each home.
pub const RESULTS_DIR: &str = "results";

/// The FTP drop channel.
pub struct FtpChannel {
    settings: FtpSettings,
}

impl FtpChannel {
    pub fn new(settings: FtpSettings) -> Self {
        Self { settings }
    }
}

impl Channel for FtpChannel {
    fn name(&self) -> &'static str {
        channel::FTP
    }

    fn run(self: Box<Self>, cx: ChannelContext) -> BoxFuture<'static, Result<(), ChannelError>> {
        Box::pin(async move {
            let settings = self.settings;
            let failed = |message: String| ChannelError::Failed { channel: channel::FTP, message };
            std::fs::create_dir_all(&settings.root)
                .map_err(|e| failed(format!("cannot create {}: {e}", settings.root.display())))?;
            let fcx = FileContext::from_channel(&cx);
            let resumer = tokio::spawn(resume_all(fcx.clone(), channel::FTP));

            let shared = Arc::new(storage::Shared { files: fcx, root: settings.root.clone() });
            let accounts = Arc::new(auth::Accounts { config: cx.config.clone() });
            let homes = Arc::new(auth::Homes { config: cx.config.clone(), root: settings.root.clone() });
            let shutdown = cx.shutdown.clone();
            let mut builder =
                ServerBuilder::<storage::DropStorage, auth::FtpUser>::with_user_detail_provider(
                    Box::new(move || storage::DropStorage::new(shared.clone())),
                    homes,
                )
                .authenticator(accounts)
                .greeting("leadgate file drop")
                .passive_ports(settings.passive_ports.clone())
                .idle_session_timeout(settings.idle_timeout.as_secs().max(1))
                .failed_logins_policy(FailedLoginsPolicy::new(
                    5,
                    Duration::from_secs(300),
                    FailedLoginsBlock::UserAndIP,
                ))
                .shutdown_indicator(async move {
                    shutdown.cancelled().await;
                    Shutdown::new().grace_period(Duration::from_secs(5))
                });
            if let Some(ip) = settings.passive_host {
                builder = builder.passive_host(ip);
            }
            if let Some((cert, key)) = &settings.tls {
                let required = if settings.allow_plain { FtpsRequired::None } else { FtpsRequired::All };
                builder = builder.ftps(cert.clone(), key.clone()).ftps_required(required, required);
            }
            let server = builder.build().map_err(|e| failed(format!("cannot start the FTP server: {e}")))?;
            tracing::info!(ftp_listen = %settings.listen, tls = settings.tls.is_some(), "FTP drop listening.");
            let served = server.listen(settings.listen.clone()).await;
            if resumer.await.is_err() {
                tracing::error!("The FTP resume task panicked.");
            }
            served.map_err(|e| failed(format!("FTP server on {}: {e}", settings.listen)))
        })
    }
}

/// Finishes the channel's files interrupted by a crash or shutdown, then deletes uploads
/// that never completed (their vendors got no 226 and send them again).
pub async fn resume_all(cx: FileContext, channel_name: &'static str) {
    let Some(store) = cx.commit.as_ref().map(|(s, _)| s.clone()) else { return };
    let unfinished = match store.files_unfinished(channel_name).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(channel = channel_name, error.message = %e, "Cannot list interrupted files; they are resumed at the next start.");
            return;
        }
    };
    for record in unfinished {
        if cx.shutdown.is_cancelled() {
            return;
        }
        let id = record.id.clone();
        if let Err(e) = files::resume(&cx, record).await {
            tracing::error!(file_id = %id, error.message = %e, "Resuming a file failed; it is tried again at the next start.");
        }
    }
    if channel_name == channel::FTP {
        remove_incomplete_uploads(&cx).await;
    }
}

async fn remove_incomplete_uploads(cx: &FileContext) {
    let work_dir = cx.config.load().file_intake.files.work_dir.clone();
    let Some(store) = cx.commit.as_ref().map(|(s, _)| s.clone()) else { return };
    let Ok(mut sources) = tokio::fs::read_dir(&work_dir).await else { return };
    while let Ok(Some(dir)) = sources.next_entry().await {
        let Ok(mut entries) = tokio::fs::read_dir(dir.path()).await else { continue };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "upload") {
                continue;
            }
            // Old enough not to be an upload in progress right now.
            let age =
                entry.metadata().await.ok().and_then(|m| m.modified().ok()).and_then(|m| m.elapsed().ok());
            if age.is_some_and(|a| a > Duration::from_secs(3600))
                && store
                    .files_unfinished(channel::FTP)
                    .await
                    .is_ok_and(|u| !u.iter().any(|r| std::path::Path::new(&r.work_path) == path))
            {
                tracing::info!(path = %path.display(), "Removing an FTP upload that never completed.");
                let _ignored = tokio::fs::remove_file(&path).await;
            }
        }
    }
}
