//! Hot reload under traffic: a valid tree is swapped in, an invalid one refused.

use std::time::Duration;

use serde_json::json;

use crate::support::gateway::SOURCE_KEY;
use crate::support::{GatewayBuilder, TestReceiver, each_engine};

fn route_to(buyer: &str) -> String {
    format!("[[route]]\nname = \"main\"\nbuyers = [\"{buyer}\"]\n")
}

#[tokio::test]
async fn a_valid_change_is_picked_up_under_traffic_and_an_invalid_one_is_refused() {
    let (a, b) = (TestReceiver::start().await, TestReceiver::start().await);
    let builder = GatewayBuilder::new()
        .webhook_buyer("a", &a.url(), "")
        .webhook_buyer("b", &b.url(), "")
        .routes(&route_to("a"));
    each_engine(builder, async |gw| {
        // Traffic all along: every request must be answered 201.
        let stop = tokio_util::sync::CancellationToken::new();
        let traffic = {
            let (http, url, stop) = (gw.http.clone(), gw.url("/v1/leads"), stop.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                let mut i = 0;
                while !stop.is_cancelled() {
                    let r = http
                        .post(&url)
                        .header("x-api-key", SOURCE_KEY)
                        .json(&json!({"email": format!("traffic{i}@example.com")}))
                        .send()
                        .await
                        .map(|r| r.status().as_u16());
                    statuses.push(r.unwrap_or(0));
                    i += 1;
                }
                statuses
            })
        };

        let generation = |v: &serde_json::Value| v["reload"]["generation"].as_u64().unwrap();
        let g0 = generation(&gw.get_admin("/v1/admin/config").await.json());
        gw.write_config("routes.toml", &route_to("b"));
        // The watcher reloads by itself.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while generation(&gw.get_admin("/v1/admin/config").await.json()) == g0 {
            assert!(std::time::Instant::now() < deadline, "the config watcher never reloaded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let id = gw.post_json(&json!({"email": "after@example.com"})).await.lead_id();
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        assert_eq!(l["deliveries"][0]["buyer"], "b");

        // An invalid tree: refused, reported, and the old one keeps serving.
        gw.write_config("routes.toml", "[[route]]\nname = \"main\"\nbuyers = [\"nobody\"]\n");
        let r = gw.post_admin("/v1/admin/config/reload").await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.json()["last_error"].as_str().unwrap().contains("unknown buyer \"nobody\""), "{}", r.text);
        let cfg = gw.get_admin("/v1/admin/config").await.json();
        assert!(cfg["reload"]["last_error"].as_str().unwrap().contains("routes.toml"), "{cfg}");
        let id = gw.post_json(&json!({"email": "still@example.com"})).await.lead_id();
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        assert_eq!(l["deliveries"][0]["buyer"], "b");

        stop.cancel();
        let statuses = traffic.await.unwrap();
        assert!(statuses.len() > 5, "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    })
    .await;
}
