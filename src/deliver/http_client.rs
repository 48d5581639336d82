//! The only place a [`reqwest::Client`] is built, and the egress policy it enforces.
//!
//! Buyer endpoints come from configuration, so a webhook URL is untrusted input: without
//! a guard it could point the gateway at `127.0.0.1:5432`, a cloud metadata service at
//! `169.254.169.254` or anything else on the private network (SSRF). The guard has two
//! halves, and both use [`EgressPolicy::permits`]:
//!
//! - the client's DNS resolver ([`http_client`]) resolves every host name itself and
//!   refuses the connection when *any* resolved address is forbidden, so a name that
//!   resolves to a public address at check time and to a private one at connect time
//!   (DNS rebinding) gets nowhere: the addresses checked are the addresses dialled;
//! - reqwest never asks the resolver about IP-literal URLs (`http://10.0.0.1/`), so
//!   [`check_url`] checks those (and the scheme) before each request.
//!
//! What is forbidden is [`is_forbidden`]: every address that is not globally routable
//! unicast. An operator can open exact ranges (a buyer on the private network, a test
//! receiver on loopback) with an allow list of CIDRs.
//!
//! The client never follows redirects (a redirect could lead anywhere; the delivery
//! classifies a 3xx instead), never uses a proxy from the environment, and has a timeout.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// `user-agent` of every request leadgate makes.
pub const USER_AGENT: &str = concat!("leadgate/", env!("CARGO_PKG_VERSION"));

/// An IPv4 or IPv6 network: `10.0.0.0/8`, `::1/128`, or a single address (`10.1.2.3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address/prefix` or a bare address (a /32 or /128). Host bits below the
    /// prefix must be zero (`10.1.2.3/8` is refused with the network it probably means).
    pub fn parse(s: &str) -> Result<Self, String> {
        let text = s.trim();
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a.trim(), Some(p.trim())),
            None => (text, None),
        };
        let addr = IpAddr::from_str(addr_text)
            .map_err(|_| format!("invalid CIDR `{s}`: `{addr_text}` is not an IPv4 or IPv6 address"))?;
        let max = max_prefix(addr);
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && !p.starts_with('+') => n,
                _ => {
                    return Err(format!(
                        "invalid CIDR `{s}`: the prefix length must be a number from 0 to {max}"
                    ));
                }
            },
        };
        let cidr = Self { addr, prefix };
        let network = cidr.network();
        if network != addr {
            return Err(format!(
                "invalid CIDR `{s}`: host bits are set below /{prefix}; did you mean `{network}/{prefix}`?"
            ));
        }
        Ok(cidr)
    }

    /// Whether `ip` is inside this network (an IPv4 network never contains an IPv6 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.prefix))),
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0)
}

/// Which non-public addresses outgoing requests may reach anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allow: Vec<Cidr>,
}

impl EgressPolicy {
    /// The policy with nothing allowed beyond public addresses.
    pub fn deny_private() -> Self {
        Self::default()
    }

    /// Parses the configured allow list (`["127.0.0.0/8", "::1/128", "10.1.2.3"]`).
    /// The error names the entry and what is wrong with it.
    pub fn parse(allow: &[String]) -> Result<Self, String> {
        let allow = allow
            .iter()
            .enumerate()
            .map(|(i, s)| Cidr::parse(s).map_err(|e| format!("egress allow list, entry {}: {e}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { allow })
    }

    /// The allowed networks.
    pub fn allow(&self) -> &[Cidr] {
        &self.allow
    }

    /// Whether a connection to `ip` is permitted: it is not [forbidden](is_forbidden), or
    /// it is inside the allow list. An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) also
    /// matches an allowed IPv4 network.
    pub fn permits(&self, ip: IpAddr) -> bool {
        if !is_forbidden(ip) {
            return true;
        }
        let canonical = ip.to_canonical();
        self.allow.iter().any(|net| net.contains(ip) || net.contains(canonical))
    }

    /// [`permits`](Self::permits), as an error naming the host and the address.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), EgressRefused> {
        if self.permits(ip) { Ok(()) } else { Err(EgressRefused { host: host.to_owned(), addr: ip }) }
    }
}

/// A connection refused by the [`EgressPolicy`]. This is a configuration problem (the
/// buyer's URL points somewhere leadgate must not go), so retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EgressRefused {
    /// The host as written in the URL (a name or an IP literal).
    pub host: String,
    /// The refused address.
    pub addr: IpAddr,
}

impl fmt::Display for EgressRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("refused by the egress policy: ")?;
        if ip_literal(&self.host) == Some(self.addr) {
            write!(f, "{} is not a public address", self.addr)?;
        } else {
            write!(f, "{} resolves to {}, which is not a public address", self.host, self.addr)?;
        }
        f.write_str(" (add it to the egress allow list to permit it)")
    }
}

/// IPv4 networks that are not globally routable unicast (RFC 6890 and successors).
const FORBIDDEN_V4: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network" (incl. unspecified)
    (0x0A00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 carrier-grade NAT
    (0x7F00_0000, 8),  // 127.0.0.0/8 loopback
    (0xA9FE_0000, 16), // 169.254.0.0/16 link-local (cloud metadata)
    (0xAC10_0000, 12), // 172.16.0.0/12 private
    (0xC000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xC000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xC058_6300, 24), // 192.88.99.0/24 6to4 relay anycast (deprecated)
    (0xC0A8_0000, 16), // 192.168.0.0/16 private
    (0xC612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xC633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xCB00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xE000_0000, 4),  // 224.0.0.0/4 multicast
    (0xF000_0000, 4),  // 240.0.0.0/4 reserved, incl. 255.255.255.255 broadcast
];

/// IPv6 networks that are not globally routable unicast. The ranges that embed an IPv4
/// address (mapped, compatible, NAT64, 6to4) are judged by that address instead.
const FORBIDDEN_V6: &[(u128, u8)] = &[
    (0x0064_ff9b_0001 << 80, 48),      // 64:ff9b:1::/48 local-use NAT64
    (0x0100 << 112, 64),               // 100::/64 discard-only
    (0x2001_0000 << 96, 32),           // 2001::/32 Teredo
    (0x2001_0002 << 96, 48),           // 2001:2::/48 benchmarking
    (0x2001_0010 << 96, 28),           // 2001:10::/28 ORCHID
    (0x2001_0020 << 96, 28),           // 2001:20::/28 ORCHIDv2
    (0x2001_0db8 << 96, 32),           // 2001:db8::/32 documentation
    (0x3fff << 112, 20),               // 3fff::/20 documentation
    (0x5f00 << 112, 16),               // 5f00::/16 SRv6 SIDs
    (0xfc00 << 112, 7),                // fc00::/7 unique local
    (0xfe80 << 112, 10),               // fe80::/10 link-local
    (0xfec0 << 112, 10),               // fec0::/10 site-local (deprecated)
    (0xff00 << 112, 8),                // ff00::/8 multicast
    (0x0000_0000_0000_ffff << 48, 96), // ::ffff:0:0:0/96 IPv4-translated (SIIT)
];

/// Whether `ip` is an address leadgate must not connect to unless allowed: loopback,
/// private, link-local, carrier-grade NAT, multicast, broadcast, unspecified,
/// documentation, benchmarking and reserved ranges, IPv6 unique-local and site-local,
/// Teredo; IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::/96`) and 6to4 (`2002::/16`) addresses are judged by the IPv4 address
/// they carry.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4),
        IpAddr::V6(v6) => v6_forbidden(v6),
    }
}

fn v4_forbidden(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    FORBIDDEN_V4.iter().any(|&(net, prefix)| bits & mask32(prefix) == net)
}

fn v6_forbidden(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let in_net = |net: u128, prefix: u8| bits & mask128(prefix) == net;
    if bits <= 1 {
        return true; // :: unspecified, ::1 loopback
    }
    if in_net(0xffff << 32, 96) || in_net(0, 96) || in_net(0x0064_ff9b << 96, 96) {
        return v4_forbidden(low32); // mapped, compatible, NAT64 well-known prefix
    }
    if in_net(0x2002 << 112, 16) {
        return v4_forbidden(Ipv4Addr::from((bits >> 80) as u32)); // 6to4
    }
    FORBIDDEN_V6.iter().any(|&(net, prefix)| in_net(net, prefix))
}

/// The address of an IP-literal host as [`reqwest::Url::host_str`] gives it
/// (`127.0.0.1`, `[::1]`).
fn ip_literal(host: &str) -> Option<IpAddr> {
    let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    unbracketed.parse().ok()
}

/// Checks a URL before a request: the scheme is `http` or `https`, and an IP-literal
/// host is permitted by `policy` (host names are checked by the client's resolver).
pub fn check_url(url: &reqwest::Url, policy: &EgressPolicy) -> Result<(), String> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(format!("URL scheme `{other}` is not allowed (only http and https)")),
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or("the URL has no host")?;
    if let Some(ip) = ip_literal(host) {
        policy.check(host, ip).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Resolves with the system resolver (through tokio) and refuses names that resolve to
/// an address the policy does not permit.
#[derive(Debug, Clone)]
struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no address").into());
            }
            // Any forbidden address refuses the name: the connector may try them all.
            for addr in &addrs {
                policy.check(&host, addr.ip())?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Builds the HTTP client for buyer requests: rustls, no redirects, no proxy, `timeout`
/// for the whole request (connect, send, answer), and the resolver that enforces `policy`.
/// Pair it with [`check_url`] for IP-literal URLs.
pub fn http_client(policy: &EgressPolicy, timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_rustls()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .user_agent(USER_AGENT)
        .dns_resolver(GuardedResolver { policy: Arc::new(policy.clone()) })
        .build()
        .map_err(|e| format!("building the HTTP client failed: {}", error_chain(&e)))
}

/// `error: cause: cause`, for messages stored with an attempt.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The [`EgressRefused`] somewhere in an error's chain, if any.
pub(crate) fn egress_refusal<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e EgressRefused> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(refused) = err.downcast_ref::<EgressRefused>() {
            return Some(refused);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests;
