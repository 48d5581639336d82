//! API keys: stored as SHA-256 hashes, compared in constant time.
//!
//! Keys are high-entropy random tokens, so a fast hash is enough (no KDF) and lets the
//! config hold only the hash. A key comes either as `sha256:<hex>` (printed by
//! `leadgate keys new`) or as an `${ENV}` reference whose value is hashed at load.
//! A plaintext key written into a config file is refused.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::env::EnvString;

/// SHA-256 of an API key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyHash([u8; 32]);

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHash(sha256:{}…)", hex::encode(&self.0[..4]))
    }
}

impl KeyHash {
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Reads a key as written in config (see the module docs).
    pub fn from_config(key: &EnvString) -> Result<Self, String> {
        if key.from_env() {
            if key.as_str().len() < 8 {
                return Err("an API key from the environment must be at least 8 characters".into());
            }
            return Ok(Self::of(key.as_str()));
        }
        let Some(hex_part) = key.as_str().strip_prefix("sha256:") else {
            return Err("API keys must be written as `sha256:<hex>` (see `leadgate keys new`) \
                 or as an `${ENV}` reference, never in plain text"
                .into());
        };
        let bytes = hex::decode(hex_part.trim())
            .map_err(|_| "`sha256:` must be followed by 64 hex digits".to_string())?;
        let arr: [u8; 32] =
            bytes.try_into().map_err(|_| "`sha256:` must be followed by 64 hex digits".to_string())?;
        Ok(Self(arr))
    }

    /// Whether `presented` is the key this is the hash of. Compares the hashes in constant
    /// time, so neither the time taken nor the presented length reveals anything.
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(self.0.ct_eq(&Self::of(presented).0))
    }

    pub fn to_config_string(self) -> String {
        format!("sha256:{}", hex::encode(self.0))
    }
}

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Source(String),
    /// A buyer: a pull partner claiming leads, or a push buyer reporting dispositions.
    Buyer(String),
    Admin,
    /// A `[metrics]` key: may scrape `GET /metrics` and nothing else.
    Metrics,
}

/// Every configured key with its owner.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    entries: Vec<(KeyHash, Principal)>,
}

impl Keyring {
    pub fn add(&mut self, hash: KeyHash, who: Principal) {
        self.entries.push((hash, who));
    }

    /// Finds the owner of `presented`. Every entry is compared, in constant time, so the
    /// time taken does not reveal how much of a key matched or which entry did.
    pub fn authenticate(&self, presented: &str) -> Option<&Principal> {
        let hash = KeyHash::of(presented);
        let mut found = None;
        for (h, who) in &self.entries {
            if bool::from(h.0.ct_eq(&hash.0)) && found.is_none() {
                found = Some(who);
            }
        }
        found
    }
}

/// A fresh key and the line to paste into config. The key is shown once.
pub fn generate() -> Result<(String, KeyHash), getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let key = format!("lg_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let hash = KeyHash::of(&key);
    Ok((key, hash))
}

/// The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
pub fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(v[7..].trim());
        }
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_authenticate_by_their_hash() {
        let (key, hash) = generate().unwrap();
        let written = EnvString::literal(hash.to_config_string());
        let mut ring = Keyring::default();
        ring.add(KeyHash::from_config(&written).unwrap(), Principal::Source("s".into()));
        assert_eq!(ring.authenticate(&key), Some(&Principal::Source("s".into())));
        assert_eq!(ring.authenticate("lg_wrong"), None);
    }

    #[test]
    fn plaintext_keys_in_config_are_refused() {
        let err = KeyHash::from_config(&EnvString::literal("hunter22")).unwrap_err();
        assert!(err.contains("never in plain text"));
        assert!(KeyHash::from_config(&EnvString::literal("sha256:abcd")).is_err());
    }
}
