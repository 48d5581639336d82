//! `FakeGraph`: a real loopback HTTP server standing in for Meta's Graph API (the one
//! peer that cannot run here). It serves lead objects by id and can be switched down.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One request as received.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    pub version: String,
    pub id: String,
    pub query: HashMap<String, String>,
}

#[derive(Default)]
struct Inner {
    leads: HashMap<String, String>,
    /// Answered with this status while set.
    down: Option<u16>,
    /// Statuses answered first, one per request.
    script: VecDeque<u16>,
    requests: Vec<GraphRequest>,
}

/// A running fake Graph API.
#[derive(Clone)]
pub struct FakeGraph {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FakeGraph {
    pub async fn start() -> FakeGraph {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().route("/{version}/{id}", get(handle)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        FakeGraph { addr, inner }
    }

    /// The base URL a source's `graph_url` points at.
    pub fn base_url(&self) -> String {
        format!("http://{}/v25.0", self.addr)
    }

    /// Serves `json` for `GET /{version}/{id}`.
    pub fn add_lead(&self, id: &str, json: &str) {
        self.inner.lock().unwrap().leads.insert(id.to_string(), json.to_string());
    }

    /// Every request answers `status` until [`up`](Self::up).
    pub fn down(&self, status: u16) {
        self.inner.lock().unwrap().down = Some(status);
    }

    pub fn up(&self) {
        self.inner.lock().unwrap().down = None;
    }

    /// The next `n` requests answer `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.inner.lock().unwrap().script.extend(std::iter::repeat_n(status, n));
    }

    pub fn requests(&self) -> Vec<GraphRequest> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Waits (with a deadline) until `n` requests arrived in all.
    pub async fn wait_requests(&self, n: usize) -> Vec<GraphRequest> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the fake Graph API got {} of {n} requests",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut i = inner.lock().unwrap();
    i.requests.push(GraphRequest { version, id: id.clone(), query });
    if let Some(status) = i.script.pop_front().or(i.down) {
        let body = r#"{"error":{"message":"(#2) Service temporarily unavailable","type":"OAuthException","code":2}}"#;
        return (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body)
            .into_response();
    }
    match i.leads.get(&id) {
        Some(json) => (StatusCode::OK, [("content-type", "application/json")], json.clone()).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            r#"{"error":{"message":"Unsupported get request.","type":"GraphMethodException","code":100}}"#,
        )
            .into_response(),
    }
}
