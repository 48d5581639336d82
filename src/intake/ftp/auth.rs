//! FTP logins: one account per source, checked against the live config snapshot (a
//! reload that adds, removes or changes an account applies to the next login).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use unftp_core::auth::{
    AuthenticationError, Authenticator, Credentials, Principal, UserDetail, UserDetailError,
    UserDetailProvider,
};

use crate::config::Config;
use crate::config::file_intake::Password;

/// A logged-in vendor: jailed to `home`, uploading for `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpUser {
    pub user: String,
    pub source: String,
    pub home: PathBuf,
}

impl UserDetail for FtpUser {
    fn home(&self) -> Option<&Path> {
        Some(&self.home)
    }
}

impl fmt::Display for FtpUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (source {})", self.user, self.source)
    }
}

/// The source whose enabled account is `user`, and its password check.
fn account(config: &Config, user: &str) -> Option<(String, Password)> {
    config.sources.values().find_map(|s| {
        let a = s.files.ftp.as_ref()?;
        (s.enabled && a.user == user).then(|| (s.name.clone(), a.password.clone()))
    })
}

/// Checks user and password against the sources' `[ftp]` accounts.
pub struct Accounts {
    pub config: Arc<ArcSwap<Config>>,
}

// libunftp logs its parts with `Debug`: never the config snapshot.
impl fmt::Debug for Accounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Accounts")
    }
}

#[async_trait]
impl Authenticator for Accounts {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        let given = creds.password.clone().unwrap_or_default();
        let found = account(&self.config.load(), username);
        // Argon2 takes tens of milliseconds of CPU: off the async threads. An unknown user
        // costs the same check, so timing does not tell which users exist.
        let (source, password) = match found {
            Some((source, password)) => (Some(source), password),
            None => (None, Password::Sha256([0; 32])),
        };
        let ok = tokio::task::spawn_blocking(move || password.verify(&given)).await.unwrap_or(false);
        match (source, ok) {
            (Some(source), true) => {
                tracing::info!(user = %username, source = %source, "FTP login.");
                Ok(Principal { username: username.to_owned() })
            }
            (Some(_), false) => {
                tracing::warn!(user = %username, peer = %creds.source_ip, "FTP login refused: wrong password.");
                Err(AuthenticationError::BadPassword)
            }
            (None, _) => {
                tracing::warn!(user = %username, peer = %creds.source_ip, "FTP login refused: unknown user.");
                Err(AuthenticationError::BadUser)
            }
        }
    }
}

/// Turns a logged-in user into its source and home directory (created if missing).
pub struct Homes {
    pub config: Arc<ArcSwap<Config>>,
    pub root: PathBuf,
}

impl fmt::Debug for Homes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Homes").field("root", &self.root).finish()
    }
}

#[async_trait]
impl UserDetailProvider for Homes {
    type User = FtpUser;

    async fn provide_user_detail(&self, principal: &Principal) -> Result<FtpUser, UserDetailError> {
        let Some((source, _)) = account(&self.config.load(), &principal.username) else {
            return Err(UserDetailError::UserNotFound { username: principal.username.clone() });
        };
        let home = self.root.join(&source);
        tokio::fs::create_dir_all(home.join(super::RESULTS_DIR))
            .await
            .map_err(|e| UserDetailError::with_source("cannot create the home directory", e))?;
        Ok(FtpUser { user: principal.username.clone(), source, home })
    }
}
