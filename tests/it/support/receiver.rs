//! `TestReceiver`: a real HTTP buyer endpoint on loopback whose answer can be switched.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// 200 `{"status":"accepted"}`.
    Accept,
    /// 200 `{"status":"rejected","message":…}` (a reject-in-body rule catches it).
    RejectInBody(String),
    /// Any status with an empty JSON body.
    Status(u16),
    /// 429 with `Retry-After: <secs>`.
    TooMany(u64),
    /// Sleeps, then 200.
    Slow(Duration),
    /// 302 to another URL (must not be followed).
    Redirect,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Inner {
    mode: Option<Mode>,
    /// Answers used once each before `mode` (e.g. two 500s, then success).
    script: VecDeque<Mode>,
    received: Vec<Received>,
}

/// A running receiver.
#[derive(Clone)]
pub struct TestReceiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl TestReceiver {
    pub async fn start() -> TestReceiver {
        let inner = Arc::new(Mutex::new(Inner { mode: Some(Mode::Accept), ..Inner::default() }));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        TestReceiver { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}/leads", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = Some(mode);
    }

    /// Answers `modes` first, one per request, then the current mode.
    pub fn script(&self, modes: Vec<Mode>) {
        self.inner.lock().unwrap().script = modes.into();
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().received.len()
    }

    /// Waits (with a deadline) until `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if self.count() >= n {
                return self.received();
            }
            assert!(std::time::Instant::now() < deadline, "receiver got {} of {n} requests", self.count());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn handle(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let mode = {
        let mut i = inner.lock().unwrap();
        i.received.push(Received {
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            at: std::time::Instant::now(),
        });
        i.script.pop_front().or_else(|| i.mode.clone()).unwrap_or(Mode::Accept)
    };
    match mode {
        Mode::Accept => (StatusCode::OK, r#"{"status":"accepted"}"#).into_response(),
        Mode::RejectInBody(msg) => {
            (StatusCode::OK, serde_json::json!({"status": "rejected", "message": msg}).to_string())
                .into_response()
        }
        Mode::Status(s) => (StatusCode::from_u16(s).unwrap(), "{}").into_response(),
        Mode::TooMany(secs) => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())], "slow down").into_response()
        }
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            (StatusCode::OK, "{}").into_response()
        }
        Mode::Redirect => {
            (StatusCode::FOUND, [("location", "http://127.0.0.1:9/elsewhere")], "").into_response()
        }
    }
}
