//! DKIM: a source may require that its mail carries a passing signature from the vendor's
//! own domain (`[email.dkim]`). Anything else is quarantined: stored, never routed.
//!
//! Keys come from the pinned records in the config first (an operator can pin a vendor's
//! key; tests do, so they never depend on public DNS), then from DNS through mail-auth's
//! resolver, whose cache is where the pinned keys are injected.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::hash::Hash;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt};

use crate::config::email::DkimPolicy;

/// Pinned keys, presented to mail-auth as its TXT cache.
struct Pinned(BTreeMap<String, Txt>);

impl ResolverCache<Box<str>, Txt> for Pinned {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // The lookup key is a `Box<str>` FQDN; compare as text without the final dot.
        let wanted = self.0.iter().find(|(k, _)| {
            let boxed: Box<str> = format!("{k}.").into_boxed_str();
            let q: &Q = boxed.borrow();
            q == name
        });
        wanted.map(|(_, v)| v.clone())
    }

    fn remove<Q>(&self, _name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _key: Box<str>, _value: Txt, _valid_until: std::time::Instant) {}
}

/// A DNS resolver for DKIM keys (the system's resolver configuration). Made per consumer,
/// on its runtime: the resolver's background tasks belong to the runtime that made it.
pub(super) fn authenticator() -> Option<MessageAuthenticator> {
    MessageAuthenticator::new_system_conf().or_else(|_| MessageAuthenticator::new_cloudflare()).ok()
}

/// `Ok(domain)` when a signature from one of the policy's domains verifies, else why not.
pub(super) async fn check(
    raw: &[u8],
    policy: &DkimPolicy,
    auth: Option<&MessageAuthenticator>,
) -> Result<String, String> {
    let Some(message) = AuthenticatedMessage::parse(raw) else {
        return Err("the message could not be read for DKIM".into());
    };
    let ours = |d: &str| {
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        policy.domains.iter().any(|p| d == *p || d.ends_with(&format!(".{p}")))
    };
    let signed_by: Vec<String> =
        message.dkim_headers.iter().map(|h| h.header.d.to_ascii_lowercase()).collect();
    if signed_by.is_empty() {
        return Err(format!("no DKIM signature (required from {})", policy.domains.join(", ")));
    }
    if !signed_by.iter().any(|d| ours(d)) {
        return Err(format!(
            "DKIM-signed by {} only, not by {}",
            signed_by.join(", "),
            policy.domains.join(", ")
        ));
    }
    let pinned = Pinned(
        policy
            .keys
            .iter()
            .filter_map(|(name, record)| {
                DomainKey::parse(record.as_bytes()).ok().map(|k| (name.clone(), Txt::from(k)))
            })
            .collect(),
    );
    let Some(auth) = auth else {
        return Err("no DNS resolver to look DKIM keys up (pin the vendor's key in email.dkim.keys)".into());
    };
    let results = auth.verify_dkim(Parameters::new(&message).with_txt_cache(&pinned)).await;
    let mut seen = Vec::new();
    for r in &results {
        let Some(sig) = r.signature() else { continue };
        if matches!(r.result(), DkimResult::Pass) && ours(&sig.d) {
            return Ok(sig.d.to_ascii_lowercase());
        }
        seen.push(format!("{}: {}", sig.d, describe(r.result())));
    }
    Err(format!("no passing DKIM signature from {} ({})", policy.domains.join(", "), seen.join("; ")))
}

fn describe(r: &DkimResult) -> String {
    match r {
        DkimResult::Pass => "pass".into(),
        DkimResult::Neutral(e) => format!("neutral, {e}"),
        DkimResult::Fail(e) => format!("fail, {e}"),
        DkimResult::PermError(e) => format!("permerror, {e}"),
        DkimResult::TempError(e) => format!("temperror, {e}"),
        DkimResult::None => "none".into(),
    }
}
