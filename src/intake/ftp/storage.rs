//! The FTP server's storage: the vendor's home through `unftp-sbe-fs` (a capability
//! handle on the home directory, so no path — `..`, absolute, symlink — reaches outside
//! it), except for uploads.
//!
//! An upload (`STOR`) is a file drop: the bytes go to the work directory (never into the
//! home, where a half-written file could be mistaken for a complete one), up to
//! `files.max_file_bytes`; when the transfer ends the file is taken in (see
//! [`crate::intake::files`]) and `put` returns — so the 226 reply comes only after every
//! row is committed and `results/<name>.csv` is written. Replies:
//! - 553: a name with a directory part, a dot file, a format we cannot tell;
//! - 552: over the size limit (the partial upload is deleted);
//! - 551: the file could not be read (to its end); the results file says why;
//! - 451: the database or the disk failed; the file is recorded and resumed, and an
//!   upload retried by the vendor gets the same answers (same digest, same row keys).
//!
//! `REST`/`APPE` resumption is refused: a file is taken in whole or not at all.

use std::fmt::Debug;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use unftp_core::storage::{Error, ErrorKind, Fileinfo, Result, StorageBackend};
use unftp_sbe_fs::{Filesystem, Meta};

use super::auth::FtpUser;
use crate::intake::files::{self, FileContext, FileError, Incoming, results};
use crate::parse::Format;
use crate::submission::channel;

/// What every session's storage shares.
#[derive(Clone)]
pub struct Shared {
    pub files: FileContext,
    pub root: PathBuf,
}

impl Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("root", &self.root).finish()
    }
}

/// One session's storage.
#[derive(Debug)]
pub struct DropStorage {
    fs: std::result::Result<Filesystem, String>,
    shared: Arc<Shared>,
}

impl DropStorage {
    pub fn new(shared: Arc<Shared>) -> Self {
        let fs = Filesystem::new(shared.root.clone()).map_err(|e| e.to_string());
        Self { fs, shared }
    }

    fn fs(&self) -> Result<&Filesystem> {
        self.fs.as_ref().map_err(|e| Error::new(ErrorKind::LocalError, e.clone()))
    }
}

/// The file name of an upload path: one plain component, not hidden.
pub fn upload_name(path: &Path) -> Option<String> {
    let mut parts = path.components().filter(|c| !matches!(c, Component::RootDir | Component::CurDir));
    let (Some(Component::Normal(name)), None) = (parts.next(), parts.next()) else {
        return None;
    };
    let name = name.to_str()?;
    (!name.starts_with('.') && !name.is_empty() && name.len() <= 200).then(|| name.to_owned())
}

#[async_trait]
impl StorageBackend<FtpUser> for DropStorage {
    type Metadata = Meta;

    fn enter(&mut self, user: &FtpUser) -> std::io::Result<()> {
        match &mut self.fs {
            Ok(fs) => StorageBackend::<FtpUser>::enter(fs, user),
            Err(e) => Err(std::io::Error::other(e.clone())),
        }
    }

    fn supported_features(&self) -> u32 {
        0
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<Meta> {
        self.fs()?.metadata(user, path).await
    }

    async fn list<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &FtpUser,
        path: P,
    ) -> Result<Vec<Fileinfo<PathBuf, Meta>>>
    where
        Meta: unftp_core::storage::Metadata,
    {
        self.fs()?.list(user, path).await
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &FtpUser,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        self.fs()?.get(user, path, start_pos).await
    }

    async fn put<P: AsRef<Path> + Send + Debug, R: AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        user: &FtpUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> Result<u64> {
        if start_pos != 0 {
            return Err(ErrorKind::CommandNotImplemented.into());
        }
        let Some(name) = upload_name(path.as_ref()) else {
            tracing::warn!(user = %user.user, path = ?path.as_ref(), "FTP upload refused: not a plain file name in the home directory.");
            return Err(ErrorKind::FileNameNotAllowedError.into());
        };
        let config = self.shared.files.config.load_full();
        let Some(source) = config.source(&user.source) else {
            return Err(ErrorKind::PermissionDenied.into());
        };
        if source.files.format.is_none() && Format::from_file_name(&name).is_none() {
            tracing::warn!(user = %user.user, name = %name, "FTP upload refused: unknown file format.");
            return Err(ErrorKind::FileNameNotAllowedError.into());
        }
        let limit = config.file_intake.files.max_file_bytes;
        let dir = config.file_intake.files.work_dir.join(&user.source);
        let work = dir.join(format!("{}.upload", crate::submission::new_id()));
        let bytes = match receive(input, &dir, &work, limit).await {
            Ok(n) => n,
            Err(e) => {
                let _ignored = tokio::fs::remove_file(&work).await;
                return Err(e);
            }
        };
        let incoming = Incoming {
            source: user.source.clone(),
            channel: channel::FTP,
            name: name.clone(),
            path: work,
            format: None,
            results: Some(user.home.join(super::RESULTS_DIR).join(results::results_name(&name))),
            stage: false,
        };
        // Its own task: a client hanging up mid-processing does not cancel the commit.
        let cx = self.shared.files.clone();
        let handle = tokio::spawn(async move { files::take_in(&cx, incoming, &mut |_| {}).await });
        match handle.await {
            Ok(Ok(report)) if report.failure.is_none() => Ok(bytes),
            Ok(Ok(_)) => Err(ErrorKind::PageTypeUnknown.into()),
            Ok(Err(FileError::UnknownFormat(_))) => Err(ErrorKind::FileNameNotAllowedError.into()),
            Ok(Err(e)) => {
                tracing::error!(user = %user.user, name = %name, error.message = %e, "FTP upload recorded but not finished; it is resumed at the next start.");
                Err(Error::new(ErrorKind::LocalError, e))
            }
            Err(e) => Err(Error::new(ErrorKind::LocalError, e)),
        }
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        self.fs()?.del(user, path).await
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        self.fs()?.mkd(user, path).await
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, from: P, to: P) -> Result<()> {
        self.fs()?.rename(user, from, to).await
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        self.fs()?.rmd(user, path).await
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        self.fs()?.cwd(user, path).await
    }
}

/// Copies the upload to `work`, refusing it past `limit` bytes; synced before returning.
async fn receive<R: AsyncRead + Unpin>(mut input: R, dir: &Path, work: &Path, limit: u64) -> Result<u64> {
    tokio::fs::create_dir_all(dir).await?;
    let mut out = tokio::fs::File::create(work).await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = input.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limit {
            tracing::warn!(limit, "FTP upload refused: over the size limit.");
            return Err(ErrorKind::ExceededStorageAllocationError.into());
        }
        out.write_all(&buf[..n]).await?;
    }
    out.flush().await?;
    out.sync_all().await?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_top_level_names_are_uploads() {
        assert_eq!(upload_name(Path::new("/leads.csv")).as_deref(), Some("leads.csv"));
        assert_eq!(upload_name(Path::new("leads.csv")).as_deref(), Some("leads.csv"));
        assert_eq!(upload_name(Path::new("/./leads.csv")).as_deref(), Some("leads.csv"));
        for bad in ["/../x.csv", "../x.csv", "/results/x.csv", "/.hidden.csv", "/", "a/b.csv"] {
            assert_eq!(upload_name(Path::new(bad)), None, "{bad}");
        }
    }
}
