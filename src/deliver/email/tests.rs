//! Against a real SMTP server: `scripts/smtp-sink.py` (aiosmtpd), started per test on a
//! free port. Skipped, saying why, when aiosmtpd is not installed. The failure cases
//! that need no server (refused connection, silent or non-TLS peer) always run.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use super::*;
use crate::deliver::EmailPayload;
use crate::deliver::adf::{read, render_adf};
use crate::lead::Lead;

const SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/smtp-sink.py");
const REJECTED: &str = "nobody@dealer.example";
const DEFERRED: &str = "later@dealer.example";

fn aiosmtpd_installed() -> bool {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        std::process::Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A running `smtp-sink.py`; killed on drop.
struct Sink {
    _child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Sink {
    /// `None` (after saying so) when aiosmtpd is missing.
    async fn start() -> Option<Sink> {
        if !aiosmtpd_installed() {
            println!("skipped: aiosmtpd not installed (scripts/test-services installs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new("python3")
            .arg(SINK)
            .arg(port.to_string())
            .arg(dir.path())
            .args(["--reject-rcpt", REJECTED, "--tempfail-rcpt", DEFERRED])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("smtp-sink.py did not start within 30s")
            .unwrap();
        assert_eq!(first.as_deref(), Some("ready"), "smtp-sink.py did not start");
        Some(Sink { _child: child, dir, port })
    }

    /// Every received message's record (`NNNN.json`), oldest first.
    fn received(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
    }

    /// The raw bytes of the `n`th message (1-based), as text.
    fn eml(&self, n: usize) -> String {
        String::from_utf8(std::fs::read(self.dir.path().join(format!("{n:04}.eml"))).unwrap()).unwrap()
    }
}

fn config(port: u16, timeout: Duration) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        timeout,
        hello_name: Some("leadgate.test".into()),
    }
}

fn delivery(port: u16) -> EmailDelivery {
    EmailDelivery::new(config(port, Duration::from_secs(10))).unwrap()
}

fn lead() -> Lead {
    Lead {
        first_name: Some("Dana".into()),
        last_name: Some("Whitfield".into()),
        email: Some("dana.whitfield@example.com".into()),
        phone: Some("+16145550134".into()),
        comments: Some("Blue, please & quickly <today>.".into()),
        ..Lead::default()
    }
}

fn adf() -> String {
    render_adf(&lead(), "L-1", "2026-10-05T14:22:09-05:00", Some("Example Subaru"), "ExampleAutoSite")
}

fn payload() -> EmailPayload {
    EmailPayload {
        from: "Leadgate <leads@gateway.example>".into(),
        to: vec!["sales@dealer.example".into(), "Desk <desk@dealer.example>".into()],
        cc: vec!["boss@dealer.example".into()],
        subject: "New lead: Dana Whitfield (Outback – blue)".into(),
        text: "Dana Whitfield wants an Outback.\nCall +16145550134.".into(),
        html: Some("<p>Dana Whitfield wants an <b>Outback</b>.</p>".into()),
        adf: Some(adf()),
        adf_body: false,
    }
}

fn job(delivery_id: &str, payload: EmailPayload) -> DeliveryJob {
    DeliveryJob {
        delivery_id: delivery_id.into(),
        lead_id: "L-1".into(),
        buyer: "dealer".into(),
        attempt: 1,
        payload: Payload::EmailV1(payload),
    }
}

fn parts(message: &Value) -> &Vec<Value> {
    message["parts"].as_array().unwrap()
}

fn part<'a>(message: &'a Value, content_type: &str) -> &'a Value {
    parts(message).iter().find(|p| p["content_type"] == content_type).unwrap_or_else(|| {
        panic!("no {content_type} part in {message:#}");
    })
}

/// A part's decoded content with MIME's CRLF line ends turned back into LF.
fn content(part: &Value) -> String {
    part["content"].as_str().unwrap().replace("\r\n", "\n")
}

fn adf_email(xml: &str) -> String {
    let elements = read::elements(xml).unwrap();
    read::text(&elements, "adf/prospect/customer/contact/email").unwrap().to_owned()
}

#[tokio::test]
async fn text_html_and_the_adf_attachment_arrive_as_sent() {
    let Some(sink) = Sink::start().await else { return };
    let sent = payload();
    let accepted = delivery(sink.port).deliver(&job("d-text-html", sent.clone())).await.unwrap();
    assert_eq!(accepted.status, Some(250));
    assert!(accepted.response.contains("queued as 0001"), "{accepted:?}");

    let received = sink.received();
    assert_eq!(received.len(), 1);
    let record = &received[0];
    assert_eq!(record["mail_from"], "leads@gateway.example");
    assert_eq!(
        record["rcpt_tos"],
        serde_json::json!(["sales@dealer.example", "desk@dealer.example", "boss@dealer.example"])
    );
    let m = &record["message"];
    assert_eq!(m["subject"], sent.subject.as_str());
    assert_eq!(m["message_id"], "<d-text-html@leadgate>");
    assert!(m["date"].as_str().is_some_and(|d| !d.is_empty()), "{m:#}");
    assert_eq!(m["containers"], serde_json::json!(["multipart/mixed", "multipart/alternative"]));
    assert_eq!(parts(m).len(), 3, "{m:#}");
    assert_eq!(content(part(m, "text/plain")).trim_end(), sent.text);
    assert_eq!(content(part(m, "text/html")).trim_end(), sent.html.as_deref().unwrap());
    let attachment = part(m, "application/xml");
    assert_eq!(attachment["disposition"], "attachment");
    assert_eq!(attachment["filename"], "lead.xml");
    let xml = content(attachment);
    assert_eq!(xml, adf());
    assert_eq!(adf_email(&xml), "dana.whitfield@example.com");

    let raw = sink.eml(1);
    assert!(raw.contains("Message-ID: <d-text-html@leadgate>\r\n"), "{raw}");
}

#[tokio::test]
async fn adf_body_mode_sends_the_document_as_the_text_body() {
    let Some(sink) = Sink::start().await else { return };
    let sent = EmailPayload { adf_body: true, ..payload() };
    let accepted = delivery(sink.port).deliver(&job("d-adf-body", sent)).await.unwrap();
    assert_eq!(accepted.status, Some(250));

    let received = sink.received();
    let m = &received[0]["message"];
    assert_eq!(m["containers"], serde_json::json!([]), "{m:#}");
    assert_eq!(parts(m).len(), 1, "{m:#}");
    let body = content(part(m, "text/plain"));
    assert_eq!(body.trim_end(), adf().trim_end());
    assert_eq!(adf_email(&body), "dana.whitfield@example.com");
}

#[tokio::test]
async fn a_550_recipient_is_permanent_with_the_reply_text() {
    let Some(sink) = Sink::start().await else { return };
    let sent = EmailPayload { to: vec![REJECTED.into()], cc: vec![], ..payload() };
    let err = delivery(sink.port).deliver(&job("d-550", sent)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent, "{err:?}");
    assert_eq!(err.status, Some(550));
    assert!(err.response.contains("5.1.1 no such user"), "{err:?}");
    assert!(err.message.contains("no such user"), "{err:?}");
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_451_recipient_is_transient() {
    let Some(sink) = Sink::start().await else { return };
    let sent = EmailPayload { to: vec![DEFERRED.into()], cc: vec![], ..payload() };
    let err = delivery(sink.port).deliver(&job("d-451", sent)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err:?}");
    assert_eq!(err.status, Some(451));
    assert!(err.response.contains("try later"), "{err:?}");
}

#[tokio::test]
async fn the_same_delivery_id_gives_the_same_message_id_on_a_pooled_connection() {
    let Some(sink) = Sink::start().await else { return };
    let email = delivery(sink.port);
    let job = job("0190c0de-aaaa-7bbb-8ccc-000000000042", payload());
    email.deliver(&job).await.unwrap();
    email.deliver(&job).await.unwrap();
    let ids: Vec<Value> = sink.received().iter().map(|r| r["message"]["message_id"].clone()).collect();
    assert_eq!(ids, ["<0190c0de-aaaa-7bbb-8ccc-000000000042@leadgate>"; 2]);
}

#[tokio::test]
async fn nothing_listening_is_transient() {
    let err = delivery(free_port()).deliver(&job("d-refused", payload())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err:?}");
    assert_eq!(err.status, None);
}

#[tokio::test]
async fn a_relay_that_never_answers_times_out_as_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let email = EmailDelivery::new(config(port, Duration::from_millis(300))).unwrap();
    for attempt in 1..=2 {
        let started = std::time::Instant::now();
        let err = email.deliver(&job("d-silent", payload())).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient, "attempt {attempt}: {err:?}");
        assert!(err.message.contains("did not answer within 300ms"), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    held.abort();
}

#[tokio::test]
async fn implicit_tls_against_a_plain_text_server_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ignored = socket.write_all(b"220 plain.example ESMTP\r\n").await;
        }
    });
    let cfg = SmtpConfig { security: SmtpSecurity::Tls, ..config(port, Duration::from_secs(5)) };
    let err = EmailDelivery::new(cfg).unwrap().deliver(&job("d-tls", payload())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err:?}");
    server.abort();
}

#[tokio::test]
async fn a_webhook_payload_is_refused_permanently() {
    let wrong = DeliveryJob {
        payload: Payload::WebhookV1(crate::deliver::WebhookPayload {
            method: "POST".into(),
            url: "https://buyer.example/leads".into(),
            headers: vec![],
            content_type: "application/json".into(),
            body: "{}".into(),
        }),
        ..job("d-wrong", payload())
    };
    let err = delivery(free_port()).deliver(&wrong).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
    assert_eq!(err.message, "wrong payload for e-mail delivery");
}

#[tokio::test]
async fn an_invalid_address_is_permanent_before_connecting() {
    let sent = EmailPayload { to: vec!["sales@dealer.example".into(), "not-an-address".into()], ..payload() };
    let err = delivery(free_port()).deliver(&job("d-bad", sent)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
    assert!(err.message.contains("\"not-an-address\""), "{err:?}");
}

#[test]
fn building_outside_a_runtime_is_an_error_not_a_panic() {
    let err = EmailDelivery::new(config(25, Duration::from_secs(1))).unwrap_err();
    assert!(err.contains("Tokio runtime"), "{err}");
}

#[tokio::test]
async fn a_remote_host_without_tls_is_refused() {
    let cfg = SmtpConfig { host: "smtp.example.com".into(), ..config(25, Duration::from_secs(1)) };
    let err = EmailDelivery::new(cfg).unwrap_err();
    assert!(err.contains("loopback"), "{err}");
}
