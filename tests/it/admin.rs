//! Admin API: lead lookup with history, submissions, and who may call it.

use serde_json::json;

use crate::support::gateway::SOURCE_KEY;
use crate::support::{GatewayBuilder, each_engine};

#[tokio::test]
async fn a_lead_shows_its_fields_submission_and_history() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let a = gw.post_json(&json!({"email": "h@example.com", "favourite_color": "teal"})).await;
        let lead = gw.lead(&a.lead_id()).await;
        assert_eq!(lead["id"], a.json()["lead_id"]);
        assert_eq!(lead["status"], "accepted");
        assert_eq!(lead["source"], "test");
        assert_eq!(lead["submission_id"], a.json()["submission_id"]);
        assert_eq!(lead["fields"]["custom"]["favourite_color"], "teal");
        let events = lead["events"].as_array().unwrap();
        let kinds: Vec<_> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["received", "normalized", "accepted", "scored", "unsold"]);
        for e in events {
            assert!(e["at"].as_str().unwrap().ends_with('Z'), "RFC 3339 UTC: {e}");
        }

        let dup = gw.post_json(&json!({"email": "h@example.com"})).await;
        let d = gw.lead(&dup.lead_id()).await;
        assert_eq!(d["events"][2]["kind"], "duplicate");
        assert_eq!(d["events"][2]["detail"]["duplicate_of"], a.json()["lead_id"]);
    })
    .await;
}

#[tokio::test]
async fn admin_endpoints_need_the_admin_key() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let a = gw.post_json(&json!({"email": "adm@example.com"})).await;
        let path = format!("/v1/leads/{}", a.lead_id());
        let none = gw.http.get(gw.url(&path)).send().await.unwrap();
        assert_eq!(none.status(), 401);
        let source = gw.http.get(gw.url(&path)).header("x-api-key", SOURCE_KEY).send().await.unwrap();
        assert_eq!(source.status(), 403);
        assert_eq!(gw.get_admin("/v1/leads/01234567-0000-7000-8000-000000000000").await.status, 404);
        assert_eq!(gw.get_admin("/v1/admin/submissions").await.status, 200);
        let cfg = gw.get_admin("/v1/admin/config").await.json();
        assert_eq!(cfg["sources"], json!(["other", "test"]));
    })
    .await;
}

#[tokio::test]
async fn health_and_readiness_answer() {
    each_engine(GatewayBuilder::new(), async |gw| {
        assert_eq!(gw.http.get(gw.url("/healthz")).send().await.unwrap().status(), 200);
        assert_eq!(gw.http.get(gw.url("/readyz")).send().await.unwrap().status(), 200);
        assert_eq!(gw.http.get(gw.url("/nope")).send().await.unwrap().status(), 404);
        gw.post_json(&json!({"email": "metrics@example.com"})).await;
        let m = gw.http.get(gw.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(m.contains("leadgate_leads_total{outcome=\"accepted\"}"), "{m}");
    })
    .await;
}
