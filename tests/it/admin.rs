//! Admin API: lead lookup with history, submissions, and who may call it.

use serde_json::json;

use crate::support::gateway::{ADMIN_KEY, SOURCE_KEY};
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
        // The intake handler's phases are measured one by one.
        for phase in ["auth", "body", "prepare", "commit", "answer"] {
            let line = format!("leadgate_http_intake_phase_seconds_count{{phase=\"{phase}\"}}");
            assert!(m.contains(&line), "{line} in {m}");
        }
        // SQLite with synchronous = "full" (the default): the answer waited for the writer's
        // own sync of the WAL, which is measured.
        if gw.database_url.starts_with("sqlite") {
            assert!(m.contains("leadgate_wal_sync_seconds_count"), "{m}");
            assert!(m.contains("leadgate_wal_sync_batches_count"), "{m}");
        }
    })
    .await;
}

#[tokio::test]
async fn metrics_answer_a_loopback_scraper_without_a_key_only_while_no_metrics_key_is_configured() {
    each_engine(GatewayBuilder::new(), async |gw| {
        // No [metrics] keys: a client on loopback (this test) may scrape without a key...
        let open = gw.http.get(gw.url("/metrics")).send().await.unwrap();
        assert_eq!(open.status(), 200);
        // ...but a key that is presented is still checked.
        let source = gw.http.get(gw.url("/metrics")).header("x-api-key", SOURCE_KEY).send().await.unwrap();
        assert_eq!(source.status(), 403, "a source key may not read the metrics");
        let wrong = gw.http.get(gw.url("/metrics")).header("x-api-key", "nope").send().await.unwrap();
        assert_eq!(wrong.status(), 401);
    })
    .await;
}

#[tokio::test]
async fn with_a_metrics_key_configured_metrics_need_that_key_or_the_admin_key() {
    let main = "[metrics]\nkeys = [\"${LG_TEST_UNSET_METRICS:-scrape-key}\"]\n";
    each_engine(GatewayBuilder::new().main(main), async |gw| {
        let get = |key: Option<&str>| {
            let mut r = gw.http.get(gw.url("/metrics"));
            if let Some(k) = key {
                r = r.bearer_auth(k);
            }
            r.send()
        };
        let none = get(None).await.unwrap();
        assert_eq!(none.status(), 401, "loopback no longer scrapes without a key");
        assert!(none.text().await.unwrap().contains("missing API key"));
        let m = get(Some("scrape-key")).await.unwrap();
        assert_eq!(m.status(), 200);
        assert!(m.text().await.unwrap().contains("leadgate_"), "Prometheus text");
        assert_eq!(get(Some(ADMIN_KEY)).await.unwrap().status(), 200, "the admin key always may");
        assert_eq!(get(Some("wrong")).await.unwrap().status(), 401);
        assert_eq!(get(Some(SOURCE_KEY)).await.unwrap().status(), 403);
        // The metrics key opens nothing else.
        let admin =
            gw.http.get(gw.url("/v1/admin/submissions")).bearer_auth("scrape-key").send().await.unwrap();
        assert_eq!(admin.status(), 403);
        let intake = gw
            .http
            .post(gw.url("/v1/leads"))
            .bearer_auth("scrape-key")
            .json(&json!({"email": "m@example.com"}));
        assert_eq!(intake.send().await.unwrap().status(), 403);
    })
    .await;
}

#[tokio::test]
async fn an_unknown_status_filter_is_refused_naming_the_allowed_values() {
    each_engine(GatewayBuilder::new(), async |gw| {
        gw.post("application/json", "{not json").await;
        let failed = gw.get_admin("/v1/admin/submissions?status=failed").await;
        assert_eq!(failed.json()["submissions"].as_array().unwrap().len(), 1);
        let typo = gw.get_admin("/v1/admin/submissions?status=faild").await;
        assert_eq!(typo.status, 400, "{}", typo.text);
        let message = typo.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("\"faild\""), "{message}");
        assert!(message.contains("processed, failed, needs_template, quarantined"), "{message}");
        let meta = gw.get_admin("/v1/admin/meta/fetches?status=done").await;
        assert_eq!(meta.status, 400, "{}", meta.text);
        assert!(meta.text.contains("pending, fetched, dead"), "{}", meta.text);
    })
    .await;
}
