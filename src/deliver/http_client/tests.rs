use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn policy(allow: &[&str]) -> EgressPolicy {
    EgressPolicy::parse(&allow.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

#[test]
fn forbidden_ipv4_ranges() {
    for addr in [
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "10.255.255.255",
        "100.64.0.1",
        "100.127.255.254",
        "127.0.0.1",
        "127.1.2.3",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "192.88.99.1",
        "192.168.1.1",
        "198.18.0.1",
        "198.19.255.255",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
    ] {
        assert!(is_forbidden(ip(addr)), "{addr} should be forbidden");
    }
}

#[test]
fn public_ipv4_addresses_are_allowed() {
    for addr in [
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.1",
        "100.63.255.255",
        "100.128.0.1",
        "126.255.255.255",
        "128.0.0.1",
        "169.253.1.1",
        "172.15.255.255",
        "172.32.0.1",
        "192.0.1.1",
        "192.169.0.1",
        "198.17.255.255",
        "198.20.0.1",
        "203.0.114.1",
        "223.255.255.255",
    ] {
        assert!(!is_forbidden(ip(addr)), "{addr} should be allowed");
    }
}

#[test]
fn forbidden_ipv6_ranges() {
    for addr in [
        "::",
        "::1",
        "fe80::1",
        "febf::1",
        "fec0::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "ff0e::1",
        "2001:db8::1",
        "3fff::1",
        "100::1",
        "2001::1",             // Teredo
        "2001:0:4136:e378::1", // Teredo
        "2001:2::1",
        "2001:10::1",
        "2001:20::1",
        "5f00::1",
        "64:ff9b:1::1",
        // IPv4 carried in IPv6, judged by the IPv4 address.
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:7f00:1",
        "::127.0.0.1",
        "::10.0.0.1",
        "::ffff:0:127.0.0.1",
        "::ffff:0:8.8.8.8",
        "64:ff9b::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        "2002:c0a8:101::1",
        "2002:a00:1::",
    ] {
        assert!(is_forbidden(ip(addr)), "{addr} should be forbidden");
    }
}

#[test]
fn public_ipv6_addresses_are_allowed() {
    for addr in [
        "2606:4700:4700::1111",
        "2a00:1450:4001:81b::200e",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "::8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
        "fe00::1",
        "fbff::1",
    ] {
        assert!(!is_forbidden(ip(addr)), "{addr} should be allowed");
    }
}

#[test]
fn the_allow_list_opens_exact_ranges() {
    let p = policy(&["127.0.0.0/8", "::1/128", "10.1.2.3", "fd00::/8"]);
    assert!(p.permits(ip("127.0.0.1")));
    assert!(p.permits(ip("127.200.0.1")));
    assert!(p.permits(ip("::1")));
    assert!(p.permits(ip("::ffff:127.0.0.1")), "a mapped address matches an IPv4 network");
    assert!(p.permits(ip("10.1.2.3")));
    assert!(!p.permits(ip("10.1.2.4")));
    assert!(p.permits(ip("fd12::1")));
    assert!(!p.permits(ip("fc00::1")));
    assert!(!p.permits(ip("169.254.169.254")));
    assert!(p.permits(ip("8.8.8.8")), "public addresses need no allow entry");

    let none = EgressPolicy::deny_private();
    assert!(!none.permits(ip("127.0.0.1")));
    let refused = none.check("localhost", ip("127.0.0.1")).unwrap_err();
    assert!(refused.to_string().contains("localhost resolves to 127.0.0.1"), "{refused}");
}

#[test]
fn cidrs_parse_and_contain() {
    let c: Cidr = "192.168.0.0/16".parse().unwrap();
    assert!(c.contains(ip("192.168.255.1")));
    assert!(!c.contains(ip("192.169.0.1")));
    assert!(!c.contains(ip("::ffff:192.168.0.1")), "families never mix in a CIDR");
    assert_eq!(c.to_string(), "192.168.0.0/16");
    assert_eq!(Cidr::parse("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
    assert_eq!(Cidr::parse(" ::1/128 ").unwrap().to_string(), "::1/128");
    assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
}

#[test]
fn bad_cidrs_are_refused_with_a_clear_message() {
    let cases = [
        ("10.0.0.0/33", "prefix length must be a number from 0 to 32"),
        ("::/129", "from 0 to 128"),
        ("10.0.0.0/", "prefix length"),
        ("10.0.0.0/x", "prefix length"),
        ("10.0.0.0/+8", "prefix length"),
        ("10.0.0/8", "`10.0.0` is not an IPv4 or IPv6 address"),
        ("localhost", "not an IPv4 or IPv6 address"),
        ("", "not an IPv4 or IPv6 address"),
        ("10.1.2.3/8", "did you mean `10.0.0.0/8`?"),
    ];
    for (input, expected) in cases {
        let e = Cidr::parse(input).unwrap_err();
        assert!(e.contains(expected), "{input}: {e}");
    }
    let e = EgressPolicy::parse(&["127.0.0.0/8".into(), "nope".into()]).unwrap_err();
    assert!(e.contains("entry 2") && e.contains("`nope`"), "{e}");
}

#[test]
fn check_url_checks_scheme_and_ip_literals() {
    let url = |s: &str| reqwest::Url::parse(s).unwrap();
    let none = EgressPolicy::deny_private();
    assert!(check_url(&url("https://example.com/hook"), &none).is_ok());
    assert!(check_url(&url("http://8.8.8.8/"), &none).is_ok());
    for refused in [
        "http://127.0.0.1:8080/",
        "http://127.1/",
        "http://0x7f000001/",
        "http://[::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
    ] {
        let e = check_url(&url(refused), &none).unwrap_err();
        assert!(e.contains("refused by the egress policy"), "{refused}: {e}");
    }
    let e = check_url(&url("ftp://example.com/"), &none).unwrap_err();
    assert!(e.contains("scheme `ftp`"), "{e}");
    assert!(check_url(&url("file:///etc/passwd"), &none).is_err());

    let loopback = policy(&["127.0.0.0/8", "::1/128"]);
    assert!(check_url(&url("http://127.0.0.1:8080/"), &loopback).is_ok());
    assert!(check_url(&url("http://[::1]:8080/"), &loopback).is_ok());
}

async fn loopback_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn a_loopback_request_is_refused_without_an_allow_entry_and_succeeds_with_one() {
    let addr = loopback_server().await;
    let url = reqwest::Url::parse(&format!("http://127.0.0.1:{}/", addr.port())).unwrap();

    let none = EgressPolicy::deny_private();
    let e = check_url(&url, &none).unwrap_err();
    assert!(e.starts_with("refused by the egress policy: 127.0.0.1 is not a public address"), "{e}");

    let allowed = policy(&["127.0.0.0/8"]);
    check_url(&url, &allowed).unwrap();
    let client = http_client(&allowed, Duration::from_secs(5)).unwrap();
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn a_host_name_resolving_to_loopback_is_refused_by_the_resolver() {
    let addr = loopback_server().await;
    let url = format!("http://localhost:{}/", addr.port());

    let client = http_client(&EgressPolicy::deny_private(), Duration::from_secs(5)).unwrap();
    let e = client.get(&url).send().await.unwrap_err();
    let refused = egress_refusal(&e).expect("the resolver's refusal is in the error chain");
    assert_eq!(refused.host, "localhost");
    assert!(refused.addr.is_loopback());
    assert!(error_chain(&e).contains("refused by the egress policy: localhost resolves to"), "{e:?}");

    // Allowed, the same name connects (both loopback families, whichever it resolves to).
    let client = http_client(&policy(&["127.0.0.0/8", "::1/128"]), Duration::from_secs(5)).unwrap();
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { axum::response::Redirect::temporary("/elsewhere") }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = http_client(&policy(&["127.0.0.0/8"]), Duration::from_secs(5)).unwrap();
    let response = client.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(response.status(), 307);
}
