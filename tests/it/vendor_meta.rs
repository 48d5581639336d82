//! Meta Lead Ads: the verification challenge, signed notifications, and leads fetched
//! from a (fake, loopback) Graph API with retries that survive restarts.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::gateway::Gateway;
use crate::support::graph::FakeGraph;
use crate::support::vendors::{self, META_PAGE_TOKEN, META_SECRET, META_VERIFY, submission, submissions};
use crate::support::{each_engine, fixture, sample};

const PATH: &str = "/v1/sources/acme/meta";

fn sign(body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn notify(gw: &Gateway, body: Vec<u8>) -> crate::support::gateway::Answer {
    let signature = sign(&body, META_SECRET);
    vendors::post(gw, PATH, "application/json", body, &[("x-hub-signature-256", &signature)]).await
}

/// Polls the fetch of `leadgen_id` until its status is `status` (deadline 20 s).
async fn wait_fetch(gw: &Gateway, leadgen_id: &str, status: &str) -> Value {
    wait_fetch_where(gw, leadgen_id, |f| f["status"] == status).await
}

/// Polls the fetch of `leadgen_id` until `pred` holds (deadline 20 s).
async fn wait_fetch_where(gw: &Gateway, leadgen_id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = gw.get_admin("/v1/admin/meta/fetches?source=acme").await.json();
        let fetch =
            list["fetches"].as_array().unwrap().iter().find(|f| f["leadgen_id"] == leadgen_id).cloned();
        if let Some(f) = &fetch
            && pred(f)
        {
            return f.clone();
        }
        assert!(std::time::Instant::now() < deadline, "fetch of {leadgen_id} never got there: {fetch:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The lead a fetched submission produced.
async fn fetched_lead(gw: &Gateway, fetch: &Value) -> Value {
    let s = submission(gw, fetch["submission_id"].as_str().unwrap_or_else(|| panic!("{fetch}"))).await;
    assert_eq!(s["channel"], "meta_graph");
    assert_eq!(s["format"], "meta-lead");
    gw.lead(s["lead_ids"][0].as_str().unwrap()).await
}

#[tokio::test]
async fn the_verification_challenge_is_answered_only_with_the_verify_token() {
    each_engine(vendors::builder(None), async |gw| {
        let get = |q: String| {
            let url = gw.url(&format!("{PATH}?{q}"));
            let http = gw.http.clone();
            async move {
                let r = http.get(url).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let ok =
            get(format!("hub.mode=subscribe&hub.verify_token={META_VERIFY}&hub.challenge=1158201444")).await;
        assert_eq!(ok, (200, "1158201444".to_string()));
        let wrong = get("hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1".into()).await;
        assert_eq!(wrong.0, 403);
        let no_mode = get(format!("hub.verify_token={META_VERIFY}&hub.challenge=1")).await;
        assert_eq!(no_mode.0, 400);
        let script =
            get(format!("hub.mode=subscribe&hub.verify_token={META_VERIFY}&hub.challenge=%3Cscript%3E%20x"))
                .await;
        assert_eq!(script.0, 400, "only a plain token is echoed");
    })
    .await;
}

#[tokio::test]
async fn a_signed_notification_is_answered_at_once_and_its_lead_fetched() {
    let graph = FakeGraph::start().await;
    graph.add_lead("4400000000000005", &String::from_utf8(sample("meta/lead.json")).unwrap());
    each_engine(vendors::builder(Some(&graph.base_url())), async |gw| {
        let seen = graph.requests().len();
        let a = notify(gw, sample("meta/leadgen_notification.json")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json()["leads_to_fetch"], 1);
        let notification = submission(gw, a.json()["submission_id"].as_str().unwrap()).await;
        assert_eq!(notification["format"], "meta-notification");
        assert_eq!(notification["status"], "processed");

        let fetch = wait_fetch(gw, "4400000000000005", "fetched").await;
        assert_eq!(fetch["attempts"], 1);
        let request = &graph.requests()[seen];
        assert_eq!((request.version.as_str(), request.id.as_str()), ("v25.0", "4400000000000005"));
        assert_eq!(request.query["access_token"], META_PAGE_TOKEN);
        assert!(request.query["fields"].contains("custom_disclaimer_responses"));
        assert_eq!(request.query["appsecret_proof"].len(), 64);

        let lead = fetched_lead(gw, &fetch).await;
        let f = &lead["fields"];
        assert_eq!(lead["status"], "accepted");
        assert_eq!(f["first_name"], "Noor");
        assert_eq!(f["last_name"], "Haddad");
        assert_eq!(f["email"], "noor.haddad@example.com");
        assert_eq!(f["phone"], "+447700900123");
        assert_eq!(f["city"], "Manchester");
        assert_eq!(f["vendor_lead_id"], "4400000000000005");
        assert_eq!(
            f["custom"]["which_service_interests_you?"],
            serde_json::json!(["Solar panels", "Battery storage"])
        );
        assert_eq!(f["consent"]["given"], true);
        assert_eq!(f["custom"]["custom_disclaimer_responses"][0]["checkbox_key"], "marketing_optin");
        let fetched = submission(gw, fetch["submission_id"].as_str().unwrap()).await;
        assert_eq!(fetched["meta"]["leadgen_id"], "4400000000000005");
        assert!(!fetched.to_string().contains(META_PAGE_TOKEN), "the page token is never stored");

        // Meta sending the same notification again does not fetch the lead again.
        let again = notify(gw, sample("meta/leadgen_notification.json")).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.json()["leads_to_fetch"], 0);
    })
    .await;
}

#[tokio::test]
async fn a_missing_or_bad_signature_is_refused_and_nothing_is_stored() {
    each_engine(vendors::builder(None), async |gw| {
        let body = sample("meta/leadgen_notification.json");
        let none = vendors::post(gw, PATH, "application/json", body.clone(), &[]).await;
        assert_eq!(none.status, 401, "{}", none.text);
        let forged = sign(&body, "not-the-app-secret");
        let bad =
            vendors::post(gw, PATH, "application/json", body.clone(), &[("x-hub-signature-256", &forged)])
                .await;
        assert_eq!(bad.status, 403, "{}", bad.text);
        // A good signature over another body does not cover this one.
        let other = sign(b"{}", META_SECRET);
        let moved =
            vendors::post(gw, PATH, "application/json", body, &[("x-hub-signature-256", &other)]).await;
        assert_eq!(moved.status, 403);
        assert!(submissions(gw, "acme").await.is_empty());
        let fetches = gw.get_admin("/v1/admin/meta/fetches").await.json();
        assert_eq!(fetches["fetches"], serde_json::json!([]));
    })
    .await;
}

#[tokio::test]
async fn the_graph_api_down_then_up_still_gets_the_lead() {
    let graph = FakeGraph::start().await;
    graph.add_lead("4400000000000005", &String::from_utf8(sample("meta/lead.json")).unwrap());
    each_engine(vendors::builder(Some(&graph.base_url())), async |gw| {
        graph.fail_next(2, 503);
        let a = notify(gw, sample("meta/leadgen_notification.json")).await;
        assert_eq!(a.status, 200, "answered at once, while the Graph API is down: {}", a.text);
        let fetch = wait_fetch(gw, "4400000000000005", "fetched").await;
        assert_eq!(fetch["attempts"], 3, "{fetch}");
        let lead = fetched_lead(gw, &fetch).await;
        assert_eq!(lead["fields"]["email"], "noor.haddad@example.com");
    })
    .await;
}

#[tokio::test]
async fn a_pending_fetch_survives_a_restart() {
    let graph = FakeGraph::start().await;
    graph.add_lead("4400000000000005", &String::from_utf8(sample("meta/lead.json")).unwrap());
    // A schedule long enough that the fetch is still pending when the gateway stops.
    let builder = vendors::builder(None).source(
        "acme",
        &vendors::acme_source(&graph.base_url(), "").replace(
            "retry = [\"0s\", \"50ms\", \"100ms\", \"200ms\"]",
            "retry = [\"0s\", \"1s\", \"1s\", \"1s\", \"1s\"]",
        ),
    );
    each_engine(builder, async |gw| {
        graph.down(500);
        let seen = graph.requests().len();
        let a = notify(gw, sample("meta/leadgen_notification.json")).await;
        assert_eq!(a.status, 200);
        graph.wait_requests(seen + 1).await;
        let pending =
            wait_fetch_where(gw, "4400000000000005", |f| f["status"] == "pending" && f["attempts"] == 1)
                .await;
        assert!(pending["last_error"].as_str().unwrap().contains("Graph API answered 500"), "{pending}");
        gw.restart().await;
        graph.up();
        let fetch = wait_fetch(gw, "4400000000000005", "fetched").await;
        assert!(fetch["attempts"].as_i64().unwrap() >= 2);
        assert_eq!(fetched_lead(gw, &fetch).await["fields"]["first_name"], "Noor");
    })
    .await;
}

#[tokio::test]
async fn a_dead_fetch_is_retried_by_hand() {
    let graph = FakeGraph::start().await;
    graph.add_lead("4400000000000005", &String::from_utf8(sample("meta/lead.json")).unwrap());
    let builder = vendors::builder(None).source(
        "acme",
        &vendors::acme_source(&graph.base_url(), "")
            .replace("retry = [\"0s\", \"50ms\", \"100ms\", \"200ms\"]", "retry = [\"0s\", \"20ms\"]"),
    );
    each_engine(builder, async |gw| {
        graph.down(400);
        notify(gw, sample("meta/leadgen_notification.json")).await;
        let dead = wait_fetch(gw, "4400000000000005", "dead").await;
        assert_eq!(dead["attempts"], 2);
        assert!(dead["last_error"].as_str().unwrap().contains("code 2"), "{dead}");
        graph.up();
        let r =
            gw.post_admin(&format!("/v1/admin/meta/fetches/{}/retry", dead["id"].as_str().unwrap())).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let fetch = wait_fetch(gw, "4400000000000005", "fetched").await;
        assert_eq!(fetched_lead(gw, &fetch).await["fields"]["city"], "Manchester");
    })
    .await;
}

#[tokio::test]
async fn several_changes_are_several_leads_with_huge_ids_kept_exact() {
    let graph = FakeGraph::start().await;
    graph.add_lead(
        "44000000000000051234",
        &String::from_utf8(fixture("meta/lead-work-contact-huge-id.json")).unwrap(),
    );
    graph.add_lead("4400000000000006", &String::from_utf8(fixture("meta/lead-second.json")).unwrap());
    each_engine(vendors::builder(Some(&graph.base_url())), async |gw| {
        let a = notify(gw, fixture("meta/notification-two-changes-numeric-ids.json")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json()["leads_announced"], 2, "the feed change is not a lead");
        let first = wait_fetch(gw, "44000000000000051234", "fetched").await;
        let second = wait_fetch(gw, "4400000000000006", "fetched").await;
        let l1 = fetched_lead(gw, &first).await;
        let f = &l1["fields"];
        assert_eq!(f["vendor_lead_id"], "44000000000000051234");
        assert_eq!(f["first_name"], "Tomás");
        assert_eq!(f["email"], "tomas.ferreira@example.net", "work_email stands in for a missing email");
        assert_eq!(f["phone"], "+351912345678");
        assert_eq!(f["company"], "Example Lda");
        assert_eq!(f["country"], "PT");
        assert_eq!(f["postal_code"], "1000-001");
        assert_eq!(f["consent"]["given"], false, "one box was left unchecked");
        let l2 = fetched_lead(gw, &second).await;
        assert_eq!(l2["fields"]["last_name"], "Tanaka");
        assert_ne!(l1["id"], l2["id"]);
        let fetched = submission(gw, first["submission_id"].as_str().unwrap()).await;
        assert_eq!(fetched["meta"]["ad_id"], "120000000000008");
    })
    .await;
}

#[tokio::test]
async fn replaying_a_notification_schedules_its_fetches_again() {
    let graph = FakeGraph::start().await;
    graph.add_lead("4400000000000005", &String::from_utf8(sample("meta/lead.json")).unwrap());
    each_engine(vendors::builder(Some(&graph.base_url())), async |gw| {
        let a = notify(gw, sample("meta/leadgen_notification.json")).await;
        let first = wait_fetch(gw, "4400000000000005", "fetched").await;
        let lead_id = fetched_lead(gw, &first).await["id"].clone();
        // As if the fetches had never been recorded (a notification stored by an older build).
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&gw.database_url).await.unwrap();
        sqlx::query("DELETE FROM meta_fetches").execute(&pool).await.unwrap();
        pool.close().await;

        let id = a.json()["submission_id"].as_str().unwrap().to_string();
        let r = gw.post_admin(&format!("/v1/admin/submissions/{id}/replay")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let again = wait_fetch(gw, "4400000000000005", "fetched").await;
        assert_ne!(again["id"], first["id"]);
        // The refetched lead is the same lead (its leadgen id is its vendor id): a retry in its history.
        let lead = gw.lead(lead_id.as_str().unwrap()).await;
        let retried = lead["events"].as_array().unwrap().iter().find(|e| e["kind"] == "retried").cloned();
        assert_eq!(retried.expect("a retried event")["detail"]["submission_id"], again["submission_id"]);
    })
    .await;
}
