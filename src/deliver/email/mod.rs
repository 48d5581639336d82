//! E-mail delivery: one [`EmailPayload`](crate::deliver::EmailPayload) sent through an
//! SMTP relay with lettre's pooled `AsyncSmtpTransport`.
//!
//! Guarantees:
//! - one attempt per call, bounded by [`SmtpConfig::timeout`] from connect to the last
//!   reply (lettre bounds only the connect; a relay that stops answering would hold the
//!   worker forever);
//! - the same `Message-ID` (`<{delivery_id}@leadgate>`) on every retry;
//! - the answer is classified, never retried here:
//!   - 2xx after `DATA` → [`Accepted`] with the reply code and text;
//!   - 5xx → [`ErrorKind::Permanent`] with the reply text, except the AUTH replies
//!     530/534/535/538: bad or missing credentials are our configuration, not the
//!     buyer's verdict on the lead, so they are transient;
//!   - 4xx, connection refused or reset, timeouts, TLS failures, garbled replies and
//!     client-side refusals (e.g. no AUTH mechanism in common, a non-ASCII address the
//!     relay cannot take) → [`ErrorKind::Transient`]: retried on the schedule, then
//!     dead-lettered where an operator sees them;
//!   - an unparsable address, no recipient or another payload type →
//!     [`ErrorKind::Permanent`] before anything is sent.
//!
//! lettre stops at the first refused `RCPT`, so one bad recipient fails the whole
//! message (with that recipient's reply), which is what a buyer who lists several
//! inboxes gets from any MTA too.

mod config;
mod message;

#[cfg(test)]
mod tests;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub use config::{DEFAULT_TIMEOUT, SmtpConfig, SmtpSecurity};
pub use message::{ADF_FILE_NAME, MESSAGE_ID_DOMAIN, message_id};

use super::{Accepted, Delivery, DeliveryError, DeliveryJob, ErrorKind, Payload, RESPONSE_KEEP, truncate};

/// Reply codes to `AUTH`: refused credentials are a transient (configuration) failure.
const AUTH_REPLY_CODES: [u16; 4] = [530, 534, 535, 538];

/// Delivers [`Payload::EmailV1`] jobs through one SMTP relay.
pub struct EmailDelivery {
    config: SmtpConfig,
    transport: Mutex<Pooled>,
}

/// The current transport and a counter bumped each time it is replaced.
struct Pooled {
    generation: u64,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for EmailDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailDelivery").field("config", &self.config).finish_non_exhaustive()
    }
}

impl EmailDelivery {
    /// Checks `config` and sets up the pooled transport. Nothing is sent or connected
    /// yet. Must be called inside a Tokio runtime (the pool spawns a reaper task).
    pub fn new(config: SmtpConfig) -> Result<Self, String> {
        config.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("the e-mail delivery must be built inside a Tokio runtime".into());
        }
        let transport = config.transport()?;
        Ok(Self { config, transport: Mutex::new(Pooled { generation: 0, transport }) })
    }

    /// The settings this delivery was built with.
    pub fn config(&self) -> &SmtpConfig {
        &self.config
    }

    async fn send(&self, job: &DeliveryJob) -> Result<Accepted, DeliveryError> {
        let Payload::EmailV1(payload) = &job.payload else {
            return Err(DeliveryError::new(ErrorKind::Permanent, "wrong payload for e-mail delivery"));
        };
        let message = message::build(payload, &job.delivery_id)?;
        let (generation, transport) = self.current();
        match tokio::time::timeout(self.config.timeout, transport.send(message)).await {
            Ok(Ok(reply)) => Ok(accepted(&reply)),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_elapsed) => {
                self.replace(generation);
                Err(timed_out(self.config.timeout))
            }
        }
    }

    fn current(&self) -> (u64, AsyncSmtpTransport<Tokio1Executor>) {
        let pooled = self.transport.lock().unwrap_or_else(PoisonError::into_inner);
        (pooled.generation, pooled.transport.clone())
    }

    /// After a timeout the abandoned connection may still owe the server's replies; it
    /// would go back into the pool and answer the next mail's commands out of step. So
    /// the pool is replaced (once per generation) and the old one shut down, which
    /// closes its connections instead of reusing them.
    fn replace(&self, generation: u64) {
        let fresh = match self.config.transport() {
            Ok(fresh) => fresh,
            Err(error) => {
                tracing::error!(error.message = %error, "Could not rebuild the SMTP transport.");
                return;
            }
        };
        let old = {
            let mut pooled = self.transport.lock().unwrap_or_else(PoisonError::into_inner);
            if pooled.generation != generation {
                return;
            }
            pooled.generation += 1;
            std::mem::replace(&mut pooled.transport, fresh)
        };
        tracing::warn!(host = %self.config.host, "SMTP relay did not answer in time; connection pool replaced.");
        let grace = self.config.timeout;
        tokio::spawn(async move {
            if tokio::time::timeout(grace, old.shutdown()).await.is_err() {
                tracing::debug!("Old SMTP pool did not shut down in time.");
            }
        });
    }
}

impl Delivery for EmailDelivery {
    /// Sends `job`'s [`Payload::EmailV1`] once; see the module docs for the classes.
    fn deliver<'a>(&'a self, job: &'a DeliveryJob) -> BoxFuture<'a, Result<Accepted, DeliveryError>> {
        Box::pin(self.send(job))
    }
}

fn accepted(reply: &Response) -> Accepted {
    Accepted { status: Some(u16::from(reply.code())), response: truncate(reply_text(reply), RESPONSE_KEEP) }
}

/// The reply's lines (without the code), joined by newlines.
fn reply_text(reply: &Response) -> String {
    reply.message().collect::<Vec<_>>().join("\n")
}

fn timed_out(timeout: Duration) -> DeliveryError {
    DeliveryError::new(
        ErrorKind::Transient,
        format!("the SMTP relay did not answer within {}ms", timeout.as_millis()),
    )
}

/// Maps a lettre error to the outbox's classes (see the module docs).
fn classify(e: &SmtpError) -> DeliveryError {
    let Some(code) = e.status().map(u16::from) else {
        let what = if e.is_timeout() {
            "timed out talking to the SMTP relay"
        } else if e.is_tls() {
            "TLS with the SMTP relay failed"
        } else if e.is_client() {
            "the SMTP client refused to send"
        } else if e.is_response() {
            "the SMTP relay's reply could not be read"
        } else {
            "could not talk to the SMTP relay"
        };
        return DeliveryError::new(ErrorKind::Transient, format!("{what}: {}", error_chain(e)));
    };
    // For a negative reply, lettre's source is the server's text (all lines).
    let text = std::error::Error::source(e).map(ToString::to_string).unwrap_or_default();
    let (kind, what) = if e.is_permanent() && !AUTH_REPLY_CODES.contains(&code) {
        (ErrorKind::Permanent, "the SMTP relay refused the message")
    } else if e.is_permanent() {
        (ErrorKind::Transient, "the SMTP relay refused our credentials")
    } else {
        (ErrorKind::Transient, "the SMTP relay deferred the message")
    };
    DeliveryError {
        kind,
        message: format!("{what}: {code} {text}"),
        status: Some(code),
        response: truncate(text, RESPONSE_KEEP),
    }
}

/// `e` and its sources, `: `-separated, saying nothing twice.
fn error_chain(e: &SmtpError) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    // lettre nests errors of one kind ("Connection error: Connection error: …").
    let mut segments: Vec<&str> = Vec::new();
    for segment in out.split(": ") {
        if segments.last() != Some(&segment) {
            segments.push(segment);
        }
    }
    segments.join(": ")
}
