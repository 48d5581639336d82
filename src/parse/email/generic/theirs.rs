//! The sender side of a message: the envelope's addresses, the vendor's domain, and
//! which Reply-To is a relay and which is the lead's own.

use std::collections::HashSet;

use super::super::mime::Mail;
use super::super::shapes::is_platform_address;

/// Addresses of the sender side: the envelope's, and the vendor's domain when the
/// vendor sends from a role address.
#[derive(Default)]
pub(super) struct Theirs {
    pub(super) addresses: HashSet<String>,
    pub(super) domains: HashSet<String>,
    /// A Reply-To that looks like the lead's own (a form tool's), with its name.
    pub(super) reply_to_lead: Option<(String, Option<String>)>,
    /// A relay Reply-To's display name ("Ana Ruiz via RentHub" style relays).
    pub(super) relay_name: Option<String>,
}

impl Theirs {
    pub(super) fn of(mail: &Mail) -> Theirs {
        let mut t = Theirs::default();
        for a in mail.from.iter().chain(&mail.sender).chain(&mail.to).chain(&mail.cc) {
            t.addresses.insert(a.address.clone());
        }
        for a in mail.from.iter().chain(&mail.sender) {
            if is_platform_address(&a.address) && !a.domain().is_empty() {
                t.domains.insert(registrable(a.domain()).to_owned());
            }
        }
        let from_names: HashSet<String> =
            mail.from.iter().filter_map(|a| a.name.as_deref()).map(str::to_lowercase).collect();
        for a in &mail.reply_to {
            let same_domain = mail.from.iter().any(|f| registrable(f.domain()) == registrable(a.domain()));
            if is_platform_address(&a.address) || same_domain || t.addresses.contains(&a.address) {
                t.addresses.insert(a.address.clone());
                if let Some(n) = a.name.as_deref().filter(|n| !from_names.contains(&n.to_lowercase())) {
                    t.relay_name = Some(n.to_owned());
                }
            } else if t.reply_to_lead.is_none() {
                t.reply_to_lead = Some((a.address.clone(), a.name.clone()));
            }
        }
        t
    }

    /// Whether `addr` may be the lead's.
    pub(super) fn allows(&self, addr: &str) -> bool {
        let addr = addr.to_ascii_lowercase();
        let domain = addr.rsplit_once('@').map_or("", |(_, d)| d);
        !is_platform_address(&addr)
            && !self.addresses.contains(&addr)
            && !self.domains.contains(registrable(domain))
    }
}

/// `mail.vendor.example` → `vendor.example` (the last two labels).
pub(super) fn registrable(domain: &str) -> &str {
    let mut dots = domain.rmatch_indices('.');
    match (dots.next(), dots.next()) {
        (Some(_), Some((at, _))) => domain.get(at + 1..).unwrap_or(domain),
        _ => domain,
    }
}
