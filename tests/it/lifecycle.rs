//! Restarts and shutdown: nothing acknowledged is lost.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::{GatewayBuilder, each_engine};

#[tokio::test]
async fn leads_survive_a_restart() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let a = gw.post_json(&json!({"email": "persist@example.com"})).await;
        assert_eq!(a.status, 201);
        gw.restart().await;
        let lead = gw.lead(&a.lead_id()).await;
        assert_eq!(lead["fields"]["email"], "persist@example.com");
        // Dedupe state survives too.
        assert_eq!(gw.post_json(&json!({"email": "persist@example.com"})).await.outcome(), "duplicate");
    })
    .await;
}

#[tokio::test]
async fn the_binary_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let db = format!("sqlite://{}", dir.path().join("lg.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadgate"))
        .arg("serve")
        .arg("--config")
        .arg(&example)
        .args(["--listen", "127.0.0.1:0", "--database", &db])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("gateway exited early").unwrap();
        if let Some(i) = line.find("addr=") {
            break line[i + 5..].split_whitespace().next().unwrap().to_string();
        }
    };
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = client
        .post(format!("http://{addr}/v1/leads"))
        .header("x-api-key", "example-key")
        .json(&json!({"email": "bin@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("Gateway stopped.")), "{rest:?}");
}
