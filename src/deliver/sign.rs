//! Webhook signatures as the Standard Webhooks specification defines them
//! (<https://www.standardwebhooks.com/>), so buyers can verify leadgate's requests with
//! any of its libraries.
//!
//! Each request carries `webhook-id` (the delivery id, stable across retries, for the
//! buyer's idempotency), `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one
//! entry per secret, separated by spaces, so a buyer rotating secrets accepts either.
//! Checking the timestamp's age against replays is the receiver's side of the contract.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The message id header: the delivery id.
pub const WEBHOOK_ID: &str = "webhook-id";
/// The attempt's Unix timestamp in seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Space-separated `v1,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// How Standard Webhooks secrets are written: `whsec_` + base64 of the key.
pub const SECRET_PREFIX: &str = "whsec_";

const SIGNATURE_VERSION: &str = "v1";

type HmacSha256 = Hmac<Sha256>;

/// A signing key. `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
    /// HMAC keyed with `key`, ready to clone for each message.
    keyed: HmacSha256,
}

impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.key.ct_eq(&other.key))
    }
}

impl Eq for WebhookSecret {}

/// Why a secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the webhook secret is empty")]
    Empty,
    #[error("the webhook secret is not `whsec_<base64>` or base64")]
    NotBase64,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`, or the base64 key without the prefix; padding is optional
    /// and surrounding white space ignored. The decoded key must not be empty.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let s = s.trim();
        let encoded = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
        if encoded.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = STANDARD_PAD_INDIFFERENT.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        // HMAC takes keys of any length: this cannot fail, but is not unwrapped.
        let keyed = HmacSha256::new_from_slice(&key).map_err(|_| SecretError::Empty)?;
        Ok(Self { key, keyed })
    }

    /// The raw key bytes in the `whsec_` form (shown to the buyer once, when generated).
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecret(<{} bytes, redacted>)", self.key.len())
    }
}

/// The `webhook-signature` value: `v1,<base64>` per secret, space-separated (empty
/// when there is no secret).
pub fn signature_header(secrets: &[WebhookSecret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| format!("{SIGNATURE_VERSION},{}", STANDARD.encode(s.mac(msg_id, timestamp, body))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether any `v1` signature in `header` was made with one of `secrets` over this
/// id, timestamp and body. Compares in constant time; does not judge the timestamp's age.
pub fn verify(secrets: &[WebhookSecret], msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let expected: Vec<[u8; 32]> = secrets.iter().map(|s| s.mac(msg_id, timestamp, body)).collect();
    let mut matched = false;
    for entry in header.split_ascii_whitespace() {
        let Some((SIGNATURE_VERSION, encoded)) = entry.split_once(',') else {
            continue;
        };
        let Ok(given) = STANDARD_PAD_INDIFFERENT.decode(encoded) else {
            continue;
        };
        for mac in &expected {
            matched |= bool::from(mac.as_slice().ct_eq(&given));
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_specification_test_vector_signs_and_verifies() {
        let secret = [WebhookSecret::parse(SPEC_SECRET).unwrap()];
        let header = signature_header(&secret, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY);
        assert_eq!(header, SPEC_SIGNATURE);
        assert!(verify(&secret, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, SPEC_SIGNATURE));
        // Anything changed fails.
        assert!(!verify(&secret, SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_BODY, SPEC_SIGNATURE));
        assert!(!verify(&secret, "msg_other", SPEC_TIMESTAMP, SPEC_BODY, SPEC_SIGNATURE));
        assert!(!verify(&secret, SPEC_ID, SPEC_TIMESTAMP, b"{\"test\": 1}", SPEC_SIGNATURE));
        assert!(!verify(&secret, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, "v2,g0hM9SsE"));
        assert!(!verify(&secret, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, ""));
        assert!(!verify(&[], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, SPEC_SIGNATURE));
    }

    #[test]
    fn secrets_parse_with_or_without_the_prefix() {
        let with = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let without = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(with, without);
        assert_eq!(with.to_whsec(), SPEC_SECRET);
        // Unpadded and padded forms of the same key.
        assert_eq!(WebhookSecret::parse("whsec_c2VjcmV0MQ").unwrap(), "c2VjcmV0MQ==".parse().unwrap());
        assert_eq!(WebhookSecret::parse(""), Err(SecretError::Empty));
        assert_eq!(WebhookSecret::parse("whsec_"), Err(SecretError::Empty));
        assert_eq!(WebhookSecret::parse("whsec_not base64!"), Err(SecretError::NotBase64));
        assert_eq!(WebhookSecret::parse("whsec_$$$$"), Err(SecretError::NotBase64));
    }

    #[test]
    fn debug_never_prints_the_key() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let shown = format!("{secret:?} {:?}", vec![secret.clone()]);
        assert!(!shown.contains("MfKQ9r8"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn rotation_signs_with_every_secret_and_either_verifies() {
        let old = [WebhookSecret::parse(SPEC_SECRET).unwrap()];
        let new = [WebhookSecret::parse("whsec_bmV3LXNlY3JldC1mb3Itcm90YXRpb24tdGVzdHM=").unwrap()];
        let both = [old[0].clone(), new[0].clone()];
        let header = signature_header(&both, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], SPEC_SIGNATURE);
        assert!(parts[1].starts_with("v1,"));
        assert!(verify(&old, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, &header));
        assert!(verify(&new, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, &header));
        assert!(verify(&new, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, parts[1]));
        assert!(!verify(&new, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, parts[0]));
        assert_eq!(signature_header(&[], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY), "");
    }

    /// Runs `script` with `python3 -c`, or `None` when the `standardwebhooks` package is
    /// not installed (the test then prints why it skips).
    fn python(script: &str, args: &[&str], stdin: &[u8]) -> Option<std::process::Output> {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let available = Command::new("python3")
            .args(["-c", "import standardwebhooks"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !available {
            println!("skipped: python standardwebhooks not installed (pip install standardwebhooks)");
            return None;
        }
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        Some(child.wait_with_output().unwrap())
    }

    const PY_VERIFY: &str = r#"
import sys
from standardwebhooks.webhooks import Webhook
secret, msg_id, timestamp, signature = sys.argv[1:5]
body = sys.stdin.buffer.read()
headers = {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
Webhook(secret).verify(body, headers, json_parse=False)
print("verified")
"#;

    const PY_SIGN: &str = r#"
import sys
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook
secret, msg_id, timestamp = sys.argv[1:4]
body = sys.stdin.buffer.read().decode()
when = datetime.fromtimestamp(int(timestamp), tz=timezone.utc)
print(Webhook(secret).sign(msg_id, when, body))
"#;

    #[test]
    fn the_python_standardwebhooks_library_verifies_our_signatures_and_we_verify_its() {
        let secret_text = "whsec_bmV3LXNlY3JldC1mb3Itcm90YXRpb24tdGVzdHM=";
        let other = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let secret = WebhookSecret::parse(secret_text).unwrap();
        // The library refuses timestamps more than five minutes off: sign with now.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let body = "{\"lead_id\":\"0191\",\"name\":\"Zoë\"}".as_bytes();
        let id = "dlv_0191e4c2";
        // Rotation: the buyer holds only the second secret.
        let header = signature_header(&[other, secret.clone()], id, now, body);
        let ts = now.to_string();
        let Some(out) = python(PY_VERIFY, &[secret_text, id, &ts, &header], body) else {
            return;
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "python refused our signature: {stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "verified");

        // A tampered body fails there too.
        let out = python(PY_VERIFY, &[secret_text, id, &ts, &header], b"{\"lead_id\":\"x\"}").unwrap();
        assert!(!out.status.success());

        // And what the library signs, we verify.
        let out = python(PY_SIGN, &[secret_text, id, &ts], body).unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let theirs = String::from_utf8(out.stdout).unwrap();
        assert!(verify(&[secret], id, now, body, theirs.trim()), "{theirs}");
    }
}
