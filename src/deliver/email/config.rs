//! SMTP relay settings and the lettre transport built from them.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use serde::Deserialize;

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connect, then `STARTTLS`, required: no credentials or mail cross in clear
    /// text (usually port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (usually port 465).
    Tls,
    /// No TLS at all. Refused unless `host` is a loopback address (local relays, tests).
    None,
}

/// One SMTP relay the e-mail delivery sends through.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The relay's host name; with TLS, the name its certificate must carry.
    pub host: String,
    /// The relay's port: usually 587 with `starttls`, 465 with `tls`.
    pub port: u16,
    /// `starttls` (the default), `tls` (implicit TLS) or `none` (loopback only).
    #[serde(default)]
    pub security: SmtpSecurity,
    /// User name for SMTP AUTH; no AUTH when absent.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for SMTP AUTH (write a `${ENV}` reference, not the secret).
    #[serde(default)]
    pub password: Option<String>,
    /// The longest one attempt may take, from connecting to the server's last reply
    /// (e.g. `"30s"`); also the connect timeout.
    #[serde(default = "default_timeout", deserialize_with = "crate::config::duration::de")]
    pub timeout: Duration,
    /// The name sent with `EHLO`; the machine's host name when absent.
    #[serde(default)]
    pub hello_name: Option<String>,
}

/// Default for [`SmtpConfig::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("hello_name", &self.hello_name)
            .finish()
    }
}

impl SmtpConfig {
    /// Checks what serde cannot: a host, a port, a timeout, TLS off only on loopback,
    /// a password only with a user name.
    pub fn validate(&self) -> Result<(), String> {
        let host = self.host.trim();
        if host.is_empty() {
            return Err("smtp host is empty".into());
        }
        if self.port == 0 {
            return Err("smtp port must not be 0".into());
        }
        if self.timeout.is_zero() {
            return Err("smtp timeout must be more than 0".into());
        }
        if self.security == SmtpSecurity::None && !is_loopback(host) {
            return Err(format!(
                "smtp security \"none\" is only allowed for a loopback host (localhost, 127.0.0.1, ::1), \
                 not {host:?}; use \"starttls\" or \"tls\""
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("smtp password is set without a username".into());
        }
        Ok(())
    }

    /// A pooled transport for these settings. Must run inside a Tokio runtime: the pool
    /// spawns its idle-connection reaper.
    pub(super) fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let host = self.host.trim();
        let tls = match self.security {
            SmtpSecurity::Starttls => Tls::Required(tls_parameters(host)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(host)?),
            SmtpSecurity::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(self.timeout))
            .pool_config(PoolConfig::new());
        if let Some(name) = self.hello_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            builder = builder.hello_name(ClientId::Domain(name.to_owned()));
        }
        if let Some(user) = &self.username {
            let password = self.password.clone().unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(builder.build())
    }
}

/// rustls with the platform's certificate verifier; the certificate must name `host`.
fn tls_parameters(host: &str) -> Result<TlsParameters, String> {
    TlsParameters::new(host.to_owned()).map_err(|e| format!("cannot set up TLS for smtp host {host:?}: {e}"))
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<SmtpConfig, String> {
        toml::from_str(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_starttls_and_thirty_seconds() {
        let cfg = parse("host = \"smtp.example.com\"\nport = 587\n").unwrap();
        assert_eq!(cfg.security, SmtpSecurity::Starttls);
        assert_eq!(cfg.timeout, Duration::from_secs(30));
        assert_eq!(cfg.username, None);
        cfg.validate().unwrap();
    }

    #[test]
    fn every_field_is_read_and_unknown_ones_refused() {
        let cfg = parse(
            "host = \"smtp.example.com\"\nport = 465\nsecurity = \"tls\"\nusername = \"u\"\n\
             password = \"p\"\ntimeout = \"1m30s\"\nhello_name = \"gw.example.com\"\n",
        )
        .unwrap();
        assert_eq!(cfg.security, SmtpSecurity::Tls);
        assert_eq!(cfg.timeout, Duration::from_secs(90));
        assert_eq!(cfg.hello_name.as_deref(), Some("gw.example.com"));
        assert!(!format!("{cfg:?}").contains("\"p\""), "the password leaks through Debug");
        let err = parse("host = \"h\"\nport = 25\nsecure = true\n").unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
        let err = parse("host = \"h\"\nport = 25\nsecurity = \"ssl\"\n").unwrap_err();
        assert!(err.contains("unknown variant"), "{err}");
    }

    #[test]
    fn plain_text_is_for_loopback_only() {
        let mut cfg = parse("host = \"127.0.0.1\"\nport = 2525\nsecurity = \"none\"\n").unwrap();
        cfg.validate().unwrap();
        for host in ["localhost", "::1", "[::1]", "127.0.0.2"] {
            cfg.host = host.into();
            cfg.validate().unwrap();
        }
        cfg.host = "smtp.example.com".into();
        let err = cfg.validate().unwrap_err();
        assert!(err.contains("loopback"), "{err}");
    }

    #[test]
    fn a_password_needs_a_user_name() {
        let cfg = parse("host = \"h\"\nport = 587\npassword = \"p\"\n").unwrap();
        assert!(cfg.validate().unwrap_err().contains("username"));
    }
}
