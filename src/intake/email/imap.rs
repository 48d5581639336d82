//! IMAP plumbing: connect (implicit TLS, STARTTLS or plain on loopback), log in, and the
//! few commands the channel needs, each with a timeout so a silent server cannot hang
//! the consumer.

use std::sync::Arc;
use std::time::Duration;

use async_imap::types::Fetch;
use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::email::{Mailbox, Tls};

/// How long one command (or the connection) may take.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The flag set on processed messages when there is no processed folder.
pub(super) const PROCESSED_KEYWORD: &str = "$LeadgateProcessed";
/// The flag set on failed messages when there is no failed folder.
pub(super) const FAILED_KEYWORD: &str = "$LeadgateFailed";

/// Any byte stream IMAP runs over (plain TCP or TLS).
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

pub(super) type ImapSession = Session<Box<dyn Io>>;

/// Why a mailbox session ended; every one of them is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("TLS with {host} failed: {message}")]
    Tls { host: String, message: String },
    #[error("login as {user} refused: {message}")]
    Login { user: String, message: String },
    #[error("IMAP {command} failed: {message}")]
    Command { command: &'static str, message: String },
    #[error("IMAP {0} timed out")]
    Timeout(&'static str),
    #[error("the server does not keep UIDs for {0} (no UIDVALIDITY)")]
    NoUidValidity(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("source {0:?} is no longer in the config")]
    SourceGone(String),
}

/// Runs `f` with the command timeout, mapping errors to [`ImapError::Command`].
pub(super) async fn timed<T, E: std::fmt::Display>(
    command: &'static str,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ImapError::Command { command, message: e.to_string() }),
        Err(_) => Err(ImapError::Timeout(command)),
    }
}

/// Connects and logs in.
pub(super) async fn connect(mb: &Mailbox) -> Result<ImapSession, ImapError> {
    let addr = format!("{}:{}", mb.host, mb.port);
    let tcp = match tokio::time::timeout(COMMAND_TIMEOUT, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => return Err(ImapError::Connect { addr, source }),
        Err(_) => return Err(ImapError::Timeout("connect")),
    };
    tcp.set_nodelay(true).ok();
    let client: Client<Box<dyn Io>> = match mb.tls {
        Tls::None => greeted(Client::new(Box::new(tcp) as Box<dyn Io>)).await?,
        Tls::Implicit => {
            let tls = tls_wrap(tcp, mb).await?;
            greeted(Client::new(Box::new(tls) as Box<dyn Io>)).await?
        }
        Tls::Starttls => {
            let mut plain = greeted(Client::new(tcp)).await?;
            timed("STARTTLS", plain.run_command_and_check_ok("STARTTLS", None)).await?;
            let tls = tls_wrap(plain.into_inner(), mb).await?;
            // No greeting after STARTTLS (RFC 3501 §6.2.1).
            Client::new(Box::new(tls) as Box<dyn Io>)
        }
    };
    match tokio::time::timeout(COMMAND_TIMEOUT, client.login(&mb.user, &mb.password)).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err((e, _))) => Err(ImapError::Login { user: mb.user.clone(), message: e.to_string() }),
        Err(_) => Err(ImapError::Timeout("LOGIN")),
    }
}

/// Reads the server greeting, which must come before any command.
async fn greeted<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug>(
    mut client: Client<T>,
) -> Result<Client<T>, ImapError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(client),
        Ok(Ok(None)) => Err(ImapError::Command { command: "greeting", message: "connection closed".into() }),
        Ok(Err(e)) => Err(ImapError::Command { command: "greeting", message: e.to_string() }),
        Err(_) => Err(ImapError::Timeout("greeting")),
    }
}

/// TLS with the system's trust store (rustls-platform-verifier), or only the CAs of the
/// mailbox's `ca_file`.
async fn tls_wrap(
    tcp: TcpStream,
    mb: &Mailbox,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    use rustls_platform_verifier::ConfigVerifierExt as _;
    let host = mb.host.as_str();
    let tls_err = |message: String| ImapError::Tls { host: host.to_owned(), message };
    let config = match &mb.ca_file {
        None => rustls::ClientConfig::with_platform_verifier().map_err(|e| tls_err(e.to_string()))?,
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| tls_err(format!("cannot read {}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
                roots.add(cert).map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
            }
            rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()
        }
    };
    let name =
        rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| tls_err(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match tokio::time::timeout(COMMAND_TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(tls_err(e.to_string())),
        Err(_) => Err(ImapError::Timeout("TLS handshake")),
    }
}

/// `UID FETCH uid items`, collected.
pub(super) async fn fetch(session: &mut ImapSession, uid: u32, items: &str) -> Result<Vec<Fetch>, ImapError> {
    let fetched = async {
        let stream = session.uid_fetch(uid.to_string(), items).await?;
        stream.try_collect::<Vec<Fetch>>().await
    };
    timed("UID FETCH", fetched).await
}

/// What the server can do beyond IMAP4rev1.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Extensions {
    pub idle: bool,
    /// RFC 6851 `MOVE`.
    pub moves: bool,
    /// RFC 4315 `UID EXPUNGE`: removes only our message after a COPY.
    pub uidplus: bool,
}

/// Files a message: moved to `folder`, or flagged with `keyword` (and `\Seen`) and left.
/// Without MOVE: COPY, `\Deleted`, then `UID EXPUNGE` (or `EXPUNGE` without UIDPLUS,
/// which also removes messages someone else marked deleted: that is what deleting means).
pub(super) async fn file(
    session: &mut ImapSession,
    uid: u32,
    folder: Option<&str>,
    keyword: &str,
    ext: Extensions,
) -> Result<(), ImapError> {
    let set = uid.to_string();
    match folder {
        Some(folder) if ext.moves => timed("UID MOVE", session.uid_mv(&set, folder)).await,
        Some(folder) => {
            timed("UID COPY", session.uid_copy(&set, folder)).await?;
            store_flags(session, &set, "+FLAGS.SILENT (\\Deleted)").await?;
            if ext.uidplus {
                let expunged = async {
                    let stream = session.uid_expunge(&set).await?;
                    stream.try_collect::<Vec<_>>().await
                };
                timed("UID EXPUNGE", expunged).await.map(|_| ())
            } else {
                let expunged = async {
                    let stream = session.expunge().await?;
                    stream.try_collect::<Vec<_>>().await
                };
                timed("EXPUNGE", expunged).await.map(|_| ())
            }
        }
        None => store_flags(session, &set, &format!("+FLAGS.SILENT (\\Seen {keyword})")).await,
    }
}

async fn store_flags(session: &mut ImapSession, set: &str, query: &str) -> Result<(), ImapError> {
    let stored = async {
        let stream = session.uid_store(set, query).await?;
        stream.try_collect::<Vec<Fetch>>().await
    };
    timed("UID STORE", stored).await.map(|_| ())
}
