//! Vendor retries: the same answer and lead id, never a duplicate.

use serde_json::json;

use crate::support::{GatewayBuilder, each_engine};

#[tokio::test]
async fn a_retry_with_the_same_vendor_lead_id_gets_the_same_answer() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let body = json!({"lead_id": "VND-1", "email": "retry@example.com"});
        let first = gw.post_json(&body).await;
        assert_eq!(first.status, 201, "{}", first.text);
        let again = gw.post_json(&body).await;
        assert_eq!(again.status, 201, "a retry is answered like the first post: {}", again.text);
        assert_eq!(again.lead_id(), first.lead_id());
        assert_eq!(again.outcome(), "accepted");
        // The retry is in the lead's history.
        let lead = gw.lead(&first.lead_id()).await;
        let kinds: Vec<_> = lead["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["received", "normalized", "accepted", "scored", "unsold", "retried"]);
    })
    .await;
}

#[tokio::test]
async fn concurrent_retries_with_one_vendor_lead_id_share_one_lead() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let body = json!({"lead_id": "VND-2", "email": "many@example.com"});
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let req = gw
                .http
                .post(gw.url("/v1/leads"))
                .header("x-api-key", crate::support::gateway::SOURCE_KEY)
                .json(&body);
            tasks.spawn(async move {
                let r = req.send().await.expect("response");
                (r.status().as_u16(), r.json::<serde_json::Value>().await.expect("json"))
            });
        }
        let mut ids = std::collections::BTreeSet::new();
        while let Some(r) = tasks.join_next().await {
            let (status, v) = r.expect("join");
            assert_eq!(status, 201, "{v}");
            ids.insert(v["lead_id"].as_str().unwrap().to_string());
        }
        assert_eq!(ids.len(), 1, "{ids:?}");
    })
    .await;
}

#[tokio::test]
async fn a_rejected_lead_does_not_block_its_corrected_resend() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let bad = gw.post_json(&json!({"lead_id": "VND-3", "email": "broken@"})).await;
        assert_eq!(bad.status, 422);
        let fixed = gw.post_json(&json!({"lead_id": "VND-3", "email": "fixed@example.com"})).await;
        assert_eq!(fixed.status, 201, "{}", fixed.text);
        assert_ne!(fixed.lead_id(), bad.lead_id());
    })
    .await;
}

#[tokio::test]
async fn an_idempotency_key_replays_the_whole_answer_and_refuses_a_different_body() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let body = json!([{"email": "i1@example.com"}, {"email": "i2@example.com"}]).to_string();
        let h = [("x-api-key", crate::support::gateway::SOURCE_KEY), ("idempotency-key", "req-123")];
        let first = gw.post_with("application/json", body.clone(), &h).await;
        assert_eq!(first.status, 201, "{}", first.text);
        let again = gw.post_with("application/json", body, &h).await;
        assert_eq!(again.status, 201);
        assert_eq!(again.json()["results"], first.json()["results"]);
        let other =
            gw.post_with("application/json", json!({"email": "i3@example.com"}).to_string(), &h).await;
        assert_eq!(other.status, 422, "{}", other.text);
        assert_eq!(other.json()["error"]["code"], "idempotency_conflict");
    })
    .await;
}
