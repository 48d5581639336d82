//! Pull distribution: offers, atomic claims, leases, exclusive-first, expiry fallback,
//! dispositions and the masked preview.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{GatewayBuilder, TestReceiver, each_engine};

fn partner(name: &str, key: &str, extra: &str) -> String {
    format!(
        "delivery = \"pull\"\nkeys = [\"${{LG_UNSET_{}:-{key}}}\"]\n{extra}\n",
        name.to_uppercase().replace('-', "_")
    )
}

fn pool_route(buyers: &[&str], extra: &str) -> String {
    let list: Vec<String> = buyers.iter().map(|b| format!("\"{b}\"")).collect();
    format!("[[route]]\nname = \"pool\"\nbuyers = [{}]\noffer = \"open\"\n{extra}\n", list.join(", "))
}

/// A distinct lead (e-mail and phone both unique, so none is a duplicate).
fn lead(i: usize) -> Value {
    json!({"first_name": "Priya", "last_name": "Raman", "email": format!("pool{i}@example.com"),
           "phone": format!("(206) 555-{:04}", 1000 + i), "street": "1 Pike St", "city": "Seattle", "state": "WA",
           "zip": "98101", "product": "insurance"})
}

#[tokio::test]
async fn thirty_two_claimers_over_a_thousand_offers_claim_each_exactly_once() {
    let builder =
        GatewayBuilder::new().buyer("p", &partner("p", "partner-key-p", "")).routes(&pool_route(&["p"], ""));
    each_engine(builder, async |gw| {
        for chunk in 0..10 {
            let batch: Vec<Value> = (0..100).map(|i| lead(chunk * 100 + i)).collect();
            let a = gw.post_json(&Value::Array(batch)).await;
            assert_eq!(a.status, 201, "{}", a.text);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let (http, url) = (gw.http.clone(), gw.url("/v1/partner/claims/next"));
            tasks.spawn(async move {
                let mut got = Vec::new();
                loop {
                    let r = http.post(&url).header("x-api-key", "partner-key-p").send().await.unwrap();
                    match r.status().as_u16() {
                        200 => got
                            .push(r.json::<Value>().await.unwrap()["lead_id"].as_str().unwrap().to_string()),
                        204 => return got,
                        s => panic!("claim answered {s}: {}", r.text().await.unwrap_or_default()),
                    }
                }
            });
        }
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.extend(r.unwrap());
        }
        let unique: std::collections::BTreeSet<&String> = all.iter().collect();
        assert_eq!(all.len(), 1000, "claims made");
        assert_eq!(unique.len(), 1000, "every lead claimed exactly once");
        let left = gw.as_buyer("partner-key-p", "GET", "/v1/partner/offers", None).await.json();
        assert_eq!(left["offers"], json!([]));
    })
    .await;
}

#[tokio::test]
async fn one_offer_has_one_winner_and_the_answer_carries_the_lead() {
    let builder = GatewayBuilder::new()
        .buyer("a", &partner("a", "partner-key-a", ""))
        .buyer("b", &partner("b", "partner-key-b", ""))
        .routes(&pool_route(&["a", "b"], ""));
    each_engine(builder, async |gw| {
        let id = gw.post_json(&lead(1)).await.lead_id();
        assert_eq!(gw.lead(&id).await["stage"], "offered");
        let win = gw.as_buyer("partner-key-a", "POST", &format!("/v1/partner/offers/{id}/claim"), None).await;
        assert_eq!(win.status, 200, "{}", win.text);
        let w = win.json();
        assert_eq!(w["lead_id"], id.as_str());
        assert_eq!(w["fields"]["email"], "pool1@example.com");
        assert!(w["lease_expires_at"].as_str().unwrap().ends_with('Z'));
        let lose =
            gw.as_buyer("partner-key-b", "POST", &format!("/v1/partner/offers/{id}/claim"), None).await;
        assert_eq!(lose.status, 409, "{}", lose.text);
        assert_eq!(lose.json()["error"]["code"], "already_claimed");
        assert!(lose.text.contains("another partner claimed it"), "{}", lose.text);
        let again =
            gw.as_buyer("partner-key-a", "POST", &format!("/v1/partner/offers/{id}/claim"), None).await;
        assert_eq!(again.status, 409, "{}", again.text);
        assert!(
            again.text.contains("you already claimed this lead"),
            "the winner is told it is theirs: {}",
            again.text
        );
        let l = gw.lead(&id).await;
        assert_eq!(l["stage"], "claimed");
        // Source keys and admin keys are not partner keys.
        let src = gw.as_buyer(crate::support::gateway::SOURCE_KEY, "GET", "/v1/partner/offers", None).await;
        assert_eq!(src.status, 403);
        assert_eq!(gw.as_buyer("nope-nope-nope", "GET", "/v1/partner/offers", None).await.status, 401);
    })
    .await;
}

#[tokio::test]
async fn an_unconfirmed_claim_returns_to_the_pool_when_its_lease_expires() {
    let builder = GatewayBuilder::new()
        .buyer("a", &partner("a", "partner-key-a", "[pull]\nlease = \"5m\""))
        .buyer("b", &partner("b", "partner-key-b", ""))
        .routes(&pool_route(&["a", "b"], ""));
    each_engine(builder, async |gw| {
        let id = gw.post_json(&lead(2)).await.lead_id();
        let claim = format!("/v1/partner/offers/{id}/claim");
        assert_eq!(gw.as_buyer("partner-key-a", "POST", &claim, None).await.status, 200);
        gw.advance(Duration::from_secs(6 * 60));
        gw.sweep().await;
        let l = gw.lead(&id).await;
        assert_eq!(l["stage"], "offered");
        assert!(l["events"].as_array().unwrap().iter().any(|e| e["kind"] == "claim_expired"));
        let late =
            gw.as_buyer("partner-key-a", "POST", &format!("/v1/partner/claims/{id}/confirm"), None).await;
        assert_eq!(late.status, 409, "{}", late.text);
        assert_eq!(gw.as_buyer("partner-key-b", "POST", &claim, None).await.status, 200);
        let ok =
            gw.as_buyer("partner-key-b", "POST", &format!("/v1/partner/claims/{id}/confirm"), None).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        assert_eq!(gw.lead(&id).await["stage"], "confirmed");
    })
    .await;
}

#[tokio::test]
async fn exclusive_first_hands_the_offer_over_in_priority_order() {
    let builder = GatewayBuilder::new()
        .buyer("first", &partner("first", "partner-key-1", "priority = 1"))
        .buyer("second", &partner("second", "partner-key-2", "priority = 2"))
        .buyer("third", &partner("third", "partner-key-3", "priority = 3"))
        .routes(
            "[[route]]\nname = \"pool\"\nbuyers = [\"third\", \"second\", \"first\"]\noffer = \"exclusive_first\"\nexclusive_for = \"10m\"\n",
        );
    each_engine(builder, async |gw| {
        let id = gw.post_json(&lead(3)).await.lead_id();
        let visible = async |key: &str| {
            let v = gw.as_buyer(key, "GET", "/v1/partner/offers", None).await.json();
            v["offers"].as_array().unwrap().iter().any(|o| o["lead_id"] == id.as_str())
        };
        assert!(visible("partner-key-1").await);
        assert!(!visible("partner-key-2").await);
        let early =
            gw.as_buyer("partner-key-2", "POST", &format!("/v1/partner/offers/{id}/claim"), None).await;
        assert_eq!(early.status, 409);
        assert_eq!(early.json()["error"]["code"], "not_eligible");
        gw.advance(Duration::from_secs(11 * 60));
        assert!(!visible("partner-key-1").await);
        assert!(visible("partner-key-2").await);
        assert!(!visible("partner-key-3").await);
        gw.advance(Duration::from_secs(20 * 60));
        // Everyone's turn is over: the offer is open to all three.
        assert!(
            visible("partner-key-1").await
                && visible("partner-key-2").await
                && visible("partner-key-3").await
        );
        assert_eq!(
            gw.as_buyer("partner-key-3", "POST", &format!("/v1/partner/offers/{id}/claim"), None)
                .await
                .status,
            200
        );
    })
    .await;
}

#[tokio::test]
async fn an_expired_offer_falls_back_to_a_push_buyer() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .buyer("p", &partner("p", "partner-key-p", ""))
        .webhook_buyer("push", &r.url(), "")
        .routes(&format!(
            "{}[[route]]\nname = \"push\"\nbuyers = [\"push\"]\n",
            pool_route(&["p"], "offer_ttl = \"1h\"\nfallback = \"next_route\"")
        ));
    each_engine(builder, async |gw| {
        let id = gw.post_json(&lead(4)).await.lead_id();
        assert_eq!(gw.lead(&id).await["stage"], "offered");
        gw.advance(Duration::from_secs(2 * 3600));
        gw.sweep().await;
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        assert_eq!(l["deliveries"][0]["buyer"], "push");
        let kinds: Vec<&str> =
            l["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"offer_expired") && kinds.contains(&"routed"), "{kinds:?}");
        assert_eq!(
            gw.as_buyer("partner-key-p", "POST", &format!("/v1/partner/offers/{id}/claim"), None)
                .await
                .status,
            409
        );
    })
    .await;
}

#[tokio::test]
async fn the_masked_preview_never_shows_contact_data() {
    let builder = GatewayBuilder::new()
        .buyer("m", &partner("m", "partner-key-m", ""))
        .buyer("blind", &partner("blind", "partner-key-blind", "[pull]\npreview = \"blind\""))
        .routes(&pool_route(&["m", "blind"], ""));
    each_engine(builder, async |gw| {
        gw.post_json(&lead(5)).await;
        let masked = gw.as_buyer("partner-key-m", "GET", "/v1/partner/offers", None).await;
        // Specific strings: ids and timestamps are full of digit runs.
        for secret in ["Priya", "Raman", "pool5@", "example.com", "+12065551005", "555-1005", "Pike", "98101"]
        {
            assert!(!masked.text.contains(secret), "masked preview leaks {secret:?}: {}", masked.text);
        }
        let o = &masked.json()["offers"][0];
        assert_eq!(
            (o["city"].as_str(), o["state"].as_str(), o["initials"].as_str()),
            (Some("Seattle"), Some("WA"), Some("P.R."))
        );
        assert_eq!((o["has_email"].as_bool(), o["postal_prefix"].as_str()), (Some(true), Some("981")));
        let blind = gw.as_buyer("partner-key-blind", "GET", "/v1/partner/offers", None).await.json();
        let o = &blind["offers"][0];
        assert!(o["city"].is_null() && o["initials"].is_null(), "{o}");
        assert_eq!(o["product"], "insurance");
    })
    .await;
}

#[tokio::test]
async fn returns_follow_the_window_and_the_cap_and_reach_the_vendor() {
    let vendor = TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .source(
            "test",
            &format!(
                "keys = [\"${{LG_TEST_UNSET_SOURCE:-{}}}\"]\n[closed_loop]\nurl = \"{}\"\nallow_private = [\"127.0.0.0/8\"]\n",
                crate::support::gateway::SOURCE_KEY,
                vendor.url()
            ),
        )
        .buyer("p", &partner("p", "partner-key-p", "[returns]\nwindow = \"7d\"\ncap = 1"))
        .routes(&pool_route(&["p"], ""));
    each_engine(builder, async |gw| {
        let n = vendor.count();
        let mut ids = Vec::new();
        for i in 0..3 {
            let id = gw.post_json(&lead(10 + i)).await.lead_id();
            assert_eq!(
                gw.as_buyer("partner-key-p", "POST", &format!("/v1/partner/offers/{id}/claim"), None)
                    .await
                    .status,
                200
            );
            assert_eq!(
                gw.as_buyer("partner-key-p", "POST", &format!("/v1/partner/claims/{id}/confirm"), None)
                    .await
                    .status,
                200
            );
            ids.push(id);
        }
        let dispo = async |id: &str, body: Value| {
            gw.as_buyer("partner-key-p", "POST", &format!("/v1/partner/leads/{id}/disposition"), Some(body))
                .await
        };
        assert_eq!(
            dispo(&ids[0], json!({"status": "returned"})).await.status,
            422,
            "a return needs a reason"
        );
        let ok = dispo(&ids[0], json!({"status": "returned", "reason": "wrong number"})).await;
        assert_eq!(ok.status, 201, "{}", ok.text);
        let capped = dispo(&ids[1], json!({"status": "returned", "reason": "duplicate"})).await;
        assert_eq!(capped.status, 422);
        assert!(capped.text.contains("return cap of 1"), "{}", capped.text);
        let conv = dispo(&ids[1], json!({"status": "converted", "value": 1250.5})).await;
        assert_eq!(conv.status, 201, "{}", conv.text);
        gw.advance(Duration::from_secs(8 * 86_400));
        let late = dispo(&ids[2], json!({"status": "returned", "reason": "too late"})).await;
        assert_eq!(late.status, 422);
        assert!(late.text.contains("return window"), "{}", late.text);
        assert_eq!(dispo(&ids[2], json!({"status": "contacted"})).await.status, 201);
        assert_eq!(
            dispo("01234567-0000-7000-8000-000000000000", json!({"status": "contacted"})).await.status,
            404
        );

        let l = gw.lead(&ids[0]).await;
        assert_eq!(l["stage"], "returned");
        assert_eq!(gw.lead(&ids[1]).await["stage"], "converted");
        // The vendor hears about the return and the conversion (closed loop).
        let got = vendor.wait_for(n + 2).await;
        let bodies: Vec<Value> = got[n..].iter().map(|r| serde_json::from_str(&r.body).unwrap()).collect();
        let statuses: Vec<&str> = bodies.iter().map(|b| b["status"].as_str().unwrap()).collect();
        assert!(statuses.contains(&"returned") && statuses.contains(&"converted"), "{bodies:?}");
        assert!(bodies.iter().any(|b| b["value"] == "1250.5"));
    })
    .await;
}

#[tokio::test]
async fn a_push_buyer_reports_dispositions_by_delivery_id() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .webhook_buyer("push", &r.url(), "keys = [\"${LG_UNSET_PUSH:-push-buyer-key}\"]")
        .routes("[[route]]\nname = \"main\"\nbuyers = [\"push\"]\n");
    each_engine(builder, async |gw| {
        let id = gw.post_json(&lead(20)).await.lead_id();
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        let delivery = l["deliveries"][0]["id"].as_str().unwrap().to_string();
        let a = gw
            .as_buyer(
                "push-buyer-key",
                "POST",
                &format!("/v1/deliveries/{delivery}/disposition"),
                Some(json!({"status": "converted"})),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(gw.lead(&id).await["stage"], "converted");
        let other = gw
            .as_buyer(
                "push-buyer-key",
                "POST",
                "/v1/deliveries/nope/disposition",
                Some(json!({"status": "converted"})),
            )
            .await;
        assert_eq!(other.status, 404);
    })
    .await;
}
