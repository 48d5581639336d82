//! Webhook delivery against real loopback receivers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::*;
use crate::deliver::http_client::http_client;
use crate::deliver::sign::verify;
use crate::deliver::{EmailPayload, RESPONSE_KEEP};

/// What the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    RejectJson,
    RejectXml,
    RejectText,
    ServerError,
    TooMany,
    Slow,
    Gone,
    Redirect,
    NotFound,
    Huge,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Bytes of the huge answer generated so far.
    produced: Arc<AtomicUsize>,
}

const HUGE: usize = 1 << 30;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

impl Receiver {
    async fn start(mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(Mutex::new(mode)),
            seen: Arc::default(),
            produced: Arc::default(),
        };
        let app = axum::Router::new().fallback(answer).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn answer(
    State(r): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    r.seen.lock().unwrap().push(Seen { method, uri, headers, body });
    let mode = *r.mode.lock().unwrap();
    match mode {
        Mode::Ok => (StatusCode::OK, r#"{"status":"accepted","id":"b-1"}"#).into_response(),
        Mode::RejectJson => (StatusCode::OK, r#"{"status":"rejected","message":"dup"}"#).into_response(),
        Mode::RejectXml => (
            StatusCode::OK,
            [("content-type", "application/xml")],
            "<?xml version=\"1.0\"?><response><status>rejected</status><reason>Out of area</reason></response>",
        )
            .into_response(),
        Mode::RejectText => (StatusCode::OK, "ERROR: Duplicate lead").into_response(),
        Mode::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Mode::TooMany => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")], "slow down").into_response(),
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            (StatusCode::OK, "late").into_response()
        }
        Mode::Gone => (StatusCode::GONE, "gone").into_response(),
        Mode::Redirect => (StatusCode::FOUND, [("location", r.url("/elsewhere"))]).into_response(),
        Mode::NotFound => (StatusCode::NOT_FOUND, "no such hook").into_response(),
        Mode::Huge => {
            let produced = Arc::clone(&r.produced);
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let stream = futures_util::stream::unfold(0usize, move |sent| {
                let chunk = chunk.clone();
                let produced = Arc::clone(&produced);
                async move {
                    if sent >= HUGE {
                        return None;
                    }
                    produced.fetch_add(chunk.len(), Ordering::SeqCst);
                    Some((Ok::<_, std::io::Error>(chunk.clone()), sent + chunk.len()))
                }
            });
            (StatusCode::OK, Body::from_stream(stream)).into_response()
        }
    }
}

fn loopback() -> EgressPolicy {
    EgressPolicy::parse(&["127.0.0.0/8".to_owned(), "::1/128".to_owned()]).unwrap()
}

fn delivery(rules: ResponseRules) -> WebhookDelivery {
    let policy = loopback();
    let client = http_client(&policy, Duration::from_millis(500)).unwrap();
    let secrets = vec![WebhookSecret::parse(SECRET).unwrap()];
    WebhookDelivery::new(client, policy, secrets, rules)
}

fn job(url: &str) -> DeliveryJob {
    DeliveryJob {
        delivery_id: "dlv_0191e4c2-7a1b".into(),
        lead_id: "lead_1".into(),
        buyer: "acme".into(),
        attempt: 1,
        payload: Payload::WebhookV1(WebhookPayload {
            method: "post".into(),
            url: url.into(),
            headers: vec![("x-api-key".into(), "k-123".into())],
            content_type: "application/json".into(),
            body: r#"{"first_name":"Zoë","phone":"+14155550123"}"#.into(),
        }),
    }
}

async fn deliver(d: &WebhookDelivery, url: &str) -> Result<Accepted, DeliveryError> {
    d.deliver(&job(url)).await
}

#[tokio::test]
async fn an_accepted_lead_is_signed_and_carries_the_same_id_on_every_attempt() {
    let r = Receiver::start(Mode::ServerError).await;
    let d = delivery(ResponseRules::default());
    let url = r.url("/hook?token=secret-token");

    let first = deliver(&d, &url).await.unwrap_err();
    assert_eq!(first.kind, ErrorKind::Transient);
    assert_eq!(first.status, Some(500));
    assert_eq!(first.response, "boom");

    r.set(Mode::Ok);
    let mut retry = job(&url);
    retry.attempt = 2;
    let ok = d.deliver(&retry).await.unwrap();
    assert_eq!(ok.status, Some(200));
    assert_eq!(ok.response, r#"{"status":"accepted","id":"b-1"}"#);

    let seen = r.seen();
    assert_eq!(seen.len(), 2);
    let secret = [WebhookSecret::parse(SECRET).unwrap()];
    for s in &seen {
        assert_eq!(s.method, Method::POST);
        assert_eq!(s.uri.to_string(), "/hook?token=secret-token");
        let h = |name: &str| s.headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(h("webhook-id"), "dlv_0191e4c2-7a1b");
        assert_eq!(h("content-type"), "application/json");
        assert_eq!(h("x-api-key"), "k-123");
        assert_eq!(h("user-agent"), USER_AGENT);
        assert!(USER_AGENT.starts_with("leadgate/"));
        let timestamp: i64 = h("webhook-timestamp").parse().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((now - timestamp).abs() < 60, "timestamp {timestamp} vs now {now}");
        assert_eq!(s.body.as_ref(), r#"{"first_name":"Zoë","phone":"+14155550123"}"#.as_bytes());
        let signature = h("webhook-signature");
        assert!(verify(&secret, &h("webhook-id"), timestamp, &s.body, &signature), "{signature}");
    }
}

#[tokio::test]
async fn without_secrets_no_signature_is_sent() {
    let r = Receiver::start(Mode::Ok).await;
    let policy = loopback();
    let client = http_client(&policy, Duration::from_secs(5)).unwrap();
    let d = WebhookDelivery::new(client, policy, Vec::new(), ResponseRules::default());
    deliver(&d, &r.url("/")).await.unwrap();
    let seen = r.seen();
    assert!(seen[0].headers.get("webhook-signature").is_none());
    assert!(seen[0].headers.get("webhook-id").is_some());
}

#[tokio::test]
async fn a_reject_in_a_json_body_is_permanent_with_the_buyers_reason() {
    let r = Receiver::start(Mode::RejectJson).await;
    let rules = ResponseRules::compile(Some(r#"$.status == "rejected""#), None, Some("$.message")).unwrap();
    let e = deliver(&delivery(rules), &r.url("/")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert_eq!(e.message, "dup");
    assert_eq!(e.status, Some(200));
    assert_eq!(e.response, r#"{"status":"rejected","message":"dup"}"#);

    // The same rule lets an accepting answer through.
    r.set(Mode::Ok);
    let rules = ResponseRules::compile(Some(r#"$.status == "rejected""#), None, Some("$.message")).unwrap();
    assert!(deliver(&delivery(rules), &r.url("/")).await.is_ok());
}

#[tokio::test]
async fn a_reject_in_an_xml_body_is_permanent() {
    let r = Receiver::start(Mode::RejectXml).await;
    let rules =
        ResponseRules::compile(Some("/response/status = 'rejected'"), None, Some("//reason")).unwrap();
    let e = deliver(&delivery(rules), &r.url("/")).await.unwrap_err();
    assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Permanent, "Out of area"));
}

#[tokio::test]
async fn a_regex_reject_is_permanent_and_names_the_rule() {
    let r = Receiver::start(Mode::RejectText).await;
    let rules = ResponseRules::compile(Some("regex:(?i)duplicate|rejected"), None, None).unwrap();
    let e = deliver(&delivery(rules), &r.url("/")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains("regex:(?i)duplicate|rejected"), "{}", e.message);
}

#[tokio::test]
async fn status_answers_are_classified() {
    let r = Receiver::start(Mode::TooMany).await;
    let d = delivery(ResponseRules::default());

    let e = deliver(&d, &r.url("/")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited { retry_after: Some(Duration::from_secs(7)) });
    assert_eq!(e.status, Some(429));

    r.set(Mode::Gone);
    let e = deliver(&d, &r.url("/")).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Gone, Some(410)));

    r.set(Mode::NotFound);
    let e = deliver(&d, &r.url("/")).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Permanent, Some(404)));
    assert_eq!(e.response, "no such hook");

    r.set(Mode::Redirect);
    let e = deliver(&d, &r.url("/")).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Transient, Some(302)));
    assert!(e.message.contains("redirects are not followed"), "{}", e.message);
    let paths: Vec<String> = r.seen().iter().map(|s| s.uri.path().to_owned()).collect();
    assert!(!paths.iter().any(|p| p == "/elsewhere"), "the redirect was followed: {paths:?}");
}

#[tokio::test]
async fn a_slow_buyer_times_out_as_transient() {
    let r = Receiver::start(Mode::Slow).await;
    let d = delivery(ResponseRules::default());
    let started = Instant::now();
    let e = deliver(&d, &r.url("/")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(e.message.starts_with("timeout:"), "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(5));

    // A per-buyer timeout overrides the client's, and is named.
    let d = delivery(ResponseRules::default()).with_timeout(Duration::from_millis(200));
    let e = deliver(&d, &r.url("/")).await.unwrap_err();
    assert!(e.message.contains("within 200ms"), "{}", e.message);
}

#[tokio::test]
async fn a_refused_connection_is_transient_and_says_connect() {
    // Bind, then close: the port refuses connections.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = deliver(&delivery(ResponseRules::default()), &format!("http://{addr}/?token=s3cret"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(e.message.starts_with("connect:"), "{}", e.message);
    assert!(!e.message.contains("s3cret"), "the URL's query leaked: {}", e.message);
}

#[tokio::test]
async fn egress_refusals_are_permanent_and_nothing_is_sent() {
    let r = Receiver::start(Mode::Ok).await;
    let none = EgressPolicy::deny_private();
    let client = http_client(&none, Duration::from_secs(5)).unwrap();
    let d = WebhookDelivery::new(client, none, Vec::new(), ResponseRules::default());

    // An IP literal: refused by check_url before any request.
    let e = deliver(&d, &r.url("/")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains("refused by the egress policy"), "{}", e.message);

    // A name resolving to loopback: refused by the client's resolver.
    let e = deliver(&d, &format!("http://localhost:{}/", r.addr.port())).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains("localhost resolves to"), "{}", e.message);
    assert!(r.seen().is_empty());

    // Not http(s).
    let e = deliver(&d, "file:///etc/passwd").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
}

#[tokio::test]
async fn a_huge_answer_is_cut_at_the_keep_limit_without_reading_it_all() {
    let r = Receiver::start(Mode::Huge).await;
    let policy = loopback();
    let client = http_client(&policy, Duration::from_secs(30)).unwrap();
    let d = WebhookDelivery::new(client, policy, Vec::new(), ResponseRules::default());
    let ok = deliver(&d, &r.url("/")).await.unwrap();
    assert_eq!(ok.response.len(), RESPONSE_KEEP);
    assert!(ok.response.bytes().all(|b| b == b'x'));
    // The server stops when the connection drops: far less than the gigabyte was made.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let produced = r.produced.load(Ordering::SeqCst);
    assert!(produced < 64 << 20, "the receiver produced {produced} bytes");
}

#[tokio::test]
async fn bad_payloads_are_permanent() {
    let r = Receiver::start(Mode::Ok).await;
    let d = delivery(ResponseRules::default());

    let email = DeliveryJob {
        payload: Payload::EmailV1(EmailPayload {
            from: "a@example.com".into(),
            to: vec!["b@example.com".into()],
            cc: Vec::new(),
            subject: "s".into(),
            text: "t".into(),
            html: None,
            adf: None,
            adf_body: false,
        }),
        ..job(&r.url("/"))
    };
    let e = d.deliver(&email).await.unwrap_err();
    assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Permanent, "wrong payload for webhook delivery"));

    let with = |edit: &dyn Fn(&mut WebhookPayload)| {
        let mut j = job(&r.url("/"));
        if let Payload::WebhookV1(p) = &mut j.payload {
            edit(p);
        }
        j
    };
    for (j, expected) in [
        (with(&|p| p.url = "not a url".into()), "invalid webhook URL"),
        (with(&|p| p.method = "PO ST".into()), "invalid HTTP method"),
        (with(&|p| p.method = String::new()), "invalid HTTP method"),
        (with(&|p| p.headers.push(("webhook-id".into(), "x".into()))), "set by leadgate"),
        (with(&|p| p.headers.push(("Content-Length".into(), "1".into()))), "set by leadgate"),
        (with(&|p| p.headers.push(("bad name".into(), "x".into()))), "invalid header name"),
        (with(&|p| p.headers.push(("x-a".into(), "line\nbreak".into()))), "invalid value"),
    ] {
        let e = d.deliver(&j).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent, "{}", e.message);
        assert!(e.message.contains(expected), "{expected}: {}", e.message);
    }
    assert!(r.seen().is_empty());

    // Methods are case-insensitive; a PUT is sent as PUT.
    d.deliver(&with(&|p| p.method = "put".into())).await.unwrap();
    assert_eq!(r.seen()[0].method, Method::PUT);
}
