//! Routing strategies, caps, schedules, filters and scoring, with real HTTP buyers.

use std::collections::HashMap;

use serde_json::json;

use crate::support::gateway::SOURCE_KEY;
use crate::support::{GatewayBuilder, Mode, TestReceiver, each_engine};

fn route(name: &str, buyers: &[&str], extra: &str) -> String {
    let list: Vec<String> = buyers.iter().map(|b| format!("\"{b}\"")).collect();
    format!("[[route]]\nname = \"{name}\"\nbuyers = [{}]\n{extra}\n", list.join(", "))
}

fn lead(i: usize) -> serde_json::Value {
    json!({"first_name": "R", "email": format!("r{i}@example.com")})
}

#[tokio::test]
async fn an_exclusive_waterfall_moves_on_when_a_buyer_rejects() {
    let (a, b) = (TestReceiver::start().await, TestReceiver::start().await);
    a.set(Mode::RejectInBody("not in our area".into()));
    let builder = GatewayBuilder::new()
        .webhook_buyer("a", &a.url(), "priority = 1")
        .webhook_buyer("b", &b.url(), "priority = 2")
        .routes(&route("main", &["a", "b"], "strategy = \"exclusive\""));
    each_engine(builder, async |gw| {
        let id = gw.post_json(&lead(1)).await.lead_id();
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        let d = l["deliveries"].as_array().unwrap();
        assert_eq!(d.len(), 2, "{l:#}");
        assert_eq!((d[0]["buyer"].as_str(), d[0]["status"].as_str()), (Some("a"), Some("rejected")));
        assert_eq!(d[0]["last_error"], "not in our area");
        assert_eq!((d[1]["buyer"].as_str(), d[1]["status"].as_str()), (Some("b"), Some("delivered")));
        let kinds: Vec<&str> =
            l["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert!(kinds.ends_with(&["delivery_rejected", "routed", "delivered"]), "{kinds:?}");
    })
    .await;
}

#[tokio::test]
async fn round_robin_is_exact_over_a_hundred_leads() {
    let rs: Vec<TestReceiver> = futures_util::future::join_all((0..4).map(|_| TestReceiver::start())).await;
    let mut builder = GatewayBuilder::new();
    for (i, r) in rs.iter().enumerate() {
        builder = builder.webhook_buyer(&format!("rr{i}"), &r.url(), "");
    }
    let builder = builder.routes(&route("rr", &["rr0", "rr1", "rr2", "rr3"], "strategy = \"round_robin\""));
    each_engine(builder, async |gw| {
        let before: Vec<usize> = rs.iter().map(|r| r.count()).collect();
        for i in 0..100 {
            assert_eq!(gw.post_json(&lead(i)).await.status, 201);
        }
        let total: usize = before.iter().sum::<usize>() + 100;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while rs.iter().map(|r| r.count()).sum::<usize>() < total {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let got: Vec<usize> = rs.iter().zip(&before).map(|(r, b)| r.count() - b).collect();
        assert_eq!(got, [25, 25, 25, 25]);
    })
    .await;
}

#[tokio::test]
async fn round_robin_state_survives_a_restart() {
    let (a, b) = (TestReceiver::start().await, TestReceiver::start().await);
    let builder = GatewayBuilder::new()
        .webhook_buyer("a", &a.url(), "")
        .webhook_buyer("b", &b.url(), "")
        .routes(&route("rr", &["a", "b"], "strategy = \"round_robin\""));
    each_engine(builder, async |gw| {
        let first = gw.post_json(&lead(1)).await.lead_id();
        let l = gw.wait_lead(&first, |l| l["stage"] == "delivered").await;
        let first_buyer = l["deliveries"][0]["buyer"].as_str().unwrap().to_string();
        gw.restart().await;
        let second = gw.post_json(&lead(2)).await.lead_id();
        let l = gw.wait_lead(&second, |l| l["stage"] == "delivered").await;
        assert_ne!(l["deliveries"][0]["buyer"].as_str().unwrap(), first_buyer);
    })
    .await;
}

#[tokio::test]
async fn weighted_routing_follows_the_weights() {
    let (a, b) = (TestReceiver::start().await, TestReceiver::start().await);
    let builder = GatewayBuilder::new()
        .webhook_buyer("heavy", &a.url(), "weight = 3")
        .webhook_buyer("light", &b.url(), "weight = 1")
        .routes(&route("w", &["heavy", "light"], "strategy = \"weighted\""));
    each_engine(builder, async |gw| {
        let mut by_buyer: HashMap<String, usize> = HashMap::new();
        let mut ids = Vec::new();
        for i in 0..200 {
            ids.push(gw.post_json(&lead(i)).await.lead_id());
        }
        for id in ids {
            let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
            *by_buyer.entry(l["deliveries"][0]["buyer"].as_str().unwrap().to_string()).or_default() += 1;
        }
        let heavy = by_buyer.get("heavy").copied().unwrap_or(0);
        // Expected 150 of 200; a binomial with sd ≈ 6: allow ±30.
        assert!((120..=180).contains(&heavy), "{by_buyer:?}");
    })
    .await;
}

#[tokio::test]
async fn a_shared_route_sells_to_up_to_n_buyers() {
    let rs: Vec<TestReceiver> = futures_util::future::join_all((0..3).map(|_| TestReceiver::start())).await;
    let builder = GatewayBuilder::new()
        .webhook_buyer("s0", &rs[0].url(), "priority = 1")
        .webhook_buyer("s1", &rs[1].url(), "priority = 2")
        .webhook_buyer("s2", &rs[2].url(), "priority = 3")
        .routes(&route("shared", &["s0", "s1", "s2"], "strategy = \"shared\"\nmax_buyers = 2"));
    each_engine(builder, async |gw| {
        let id = gw.post_json(&lead(1)).await.lead_id();
        let l = gw
            .wait_lead(&id, |l| {
                l["deliveries"]
                    .as_array()
                    .is_some_and(|d| d.len() == 2 && d.iter().all(|x| x["status"] == "delivered"))
            })
            .await;
        let buyers: Vec<&str> =
            l["deliveries"].as_array().unwrap().iter().map(|d| d["buyer"].as_str().unwrap()).collect();
        assert_eq!(buyers, ["s0", "s1"]);
        assert_eq!(l["stage"], "delivered");
    })
    .await;
}

#[tokio::test]
async fn caps_are_exact_under_concurrency() {
    let (capped, other) = (TestReceiver::start().await, TestReceiver::start().await);
    let builder = GatewayBuilder::new()
        .webhook_buyer("capped", &capped.url(), "priority = 1\n[caps]\nday = 50")
        .webhook_buyer("other", &other.url(), "priority = 2")
        .routes(&route("main", &["capped", "other"], ""));
    each_engine(builder, async |gw| {
        let (c0, o0) = (capped.count(), other.count());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let req = gw.http.post(gw.url("/v1/leads")).header("x-api-key", SOURCE_KEY).json(&lead(i));
            tasks.spawn(async move { req.send().await.map(|r| r.status().as_u16()) });
        }
        while let Some(r) = tasks.join_next().await {
            assert_eq!(r.unwrap().unwrap(), 201);
        }
        other.wait_for(o0 + 150).await;
        capped.wait_for(c0 + 50).await;
        gw.deliver_due().await;
        assert_eq!(capped.count() - c0, 50);
        assert_eq!(other.count() - o0, 150);
    })
    .await;
}

#[tokio::test]
async fn a_lead_no_buyer_can_take_is_unsold() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .webhook_buyer("ca_only", &r.url(), "filter = \"lead.state == 'CA'\"")
        .routes(&route("ca", &["ca_only"], "when = \"source == 'test'\""));
    each_engine(builder, async |gw| {
        let tx = gw.post_json(&json!({"email": "tx@example.com", "state": "TX"})).await.lead_id();
        let l = gw.lead(&tx).await;
        assert_eq!(l["stage"], "unsold");
        let unsold = l["events"].as_array().unwrap().iter().find(|e| e["kind"] == "unsold").unwrap();
        assert_eq!(unsold["detail"]["routes"][0]["skipped"]["ca_only"], "filter does not match");
        let ca = gw.post_json(&json!({"email": "ca@example.com", "state": "California"})).await.lead_id();
        gw.wait_lead(&ca, |l| l["stage"] == "delivered").await;
        // A source no route matches.
        let other = gw
            .post_with(
                "application/json",
                json!({"email": "o@example.com"}).to_string(),
                &[("x-api-key", crate::support::gateway::OTHER_KEY)],
            )
            .await;
        let l = gw.lead(&other.lead_id()).await;
        assert_eq!(l["stage"], "unsold");
        assert_eq!(l["events"].as_array().unwrap().last().unwrap()["detail"]["reason"], "no route matches");
    })
    .await;
}

#[tokio::test]
async fn an_unmatched_route_can_fall_back_to_the_next_route() {
    let (a, b) = (TestReceiver::start().await, TestReceiver::start().await);
    let builder = GatewayBuilder::new()
        .webhook_buyer("full", &a.url(), "[caps]\nday = 0")
        .webhook_buyer("spare", &b.url(), "")
        .routes(&format!(
            "{}{}",
            route("first", &["full"], "fallback = \"next_route\""),
            route("second", &["spare"], "")
        ));
    each_engine(builder, async |gw| {
        let id = gw.post_json(&lead(1)).await.lead_id();
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        assert_eq!(l["deliveries"][0]["buyer"], "spare");
        assert_eq!(l["deliveries"][0]["route"], "second");
    })
    .await;
}

#[tokio::test]
async fn a_closed_schedule_skips_the_buyer_until_it_opens() {
    let (day, night) = (TestReceiver::start().await, TestReceiver::start().await);
    let schedule = "[schedule]\ntimezone = \"America/Chicago\"\nhours = { weekdays = [\"09:00-17:00\"] }";
    let builder = GatewayBuilder::new()
        .webhook_buyer("office", &day.url(), &format!("priority = 1\n{schedule}"))
        .webhook_buyer("anytime", &night.url(), "priority = 2")
        .routes(&route("main", &["office", "anytime"], ""));
    each_engine(builder, async |gw| {
        // Wednesday 2026-11-25 20:00 in Chicago (02:00 UTC on the 26th): closed.
        gw.clock.set(1_795_658_400_000);
        let late = gw.post_json(&lead(1)).await.lead_id();
        let l = gw.wait_lead(&late, |l| l["stage"] == "delivered").await;
        assert_eq!(l["deliveries"][0]["buyer"], "anytime");
        // Thursday 10:00 in Chicago (16:00 UTC): open.
        gw.clock.set(1_795_708_800_000);
        let morning = gw.post_json(&lead(2)).await.lead_id();
        let l = gw.wait_lead(&morning, |l| l["stage"] == "delivered").await;
        assert_eq!(l["deliveries"][0]["buyer"], "office");
    })
    .await;
}

#[tokio::test]
async fn scores_grades_and_lifecycle_are_kept_and_routes_match_on_score() {
    let (hot, cold) = (TestReceiver::start().await, TestReceiver::start().await);
    let routes = format!(
        "{}{}[scoring]\ngrades = [{{ grade = \"A\", min = 100 }}, {{ grade = \"C\", min = 0 }}]\n\
         states = [{{ state = \"qualified\", min = 100 }}]\n\
         [[scoring.rule]]\nwhen = \"has(lead.phone)\"\npoints = 60\n\
         [[scoring.rule]]\nwhen = \"has(lead.email)\"\npoints = 40\n",
        route("hot", &["hot"], "when = \"score >= 100\""),
        route("cold", &["cold"], "")
    );
    let builder = GatewayBuilder::new()
        .webhook_buyer("hot", &hot.url(), "")
        .webhook_buyer("cold", &cold.url(), "")
        .routes(&routes);
    each_engine(builder, async |gw| {
        let q = gw.post_json(&json!({"email": "q@example.com", "phone": "(415) 555-0199"})).await.lead_id();
        let l = gw.wait_lead(&q, |l| l["stage"] == "delivered").await;
        assert_eq!(
            (l["score"].as_i64(), l["grade"].as_str(), l["lifecycle"].as_str()),
            (Some(100), Some("A"), Some("qualified"))
        );
        assert_eq!(l["deliveries"][0]["buyer"], "hot");
        let c = gw.post_json(&json!({"email": "c@example.com"})).await.lead_id();
        let l = gw.wait_lead(&c, |l| l["stage"] == "delivered").await;
        assert_eq!((l["score"].as_i64(), l["grade"].as_str()), (Some(40), Some("C")));
        assert!(l["lifecycle"].is_null());
        assert_eq!(l["deliveries"][0]["buyer"], "cold");
    })
    .await;
}

#[tokio::test]
async fn a_spend_cap_counts_the_buyers_price() {
    let (pricey, other) = (TestReceiver::start().await, TestReceiver::start().await);
    let builder = GatewayBuilder::new()
        .webhook_buyer("pricey", &pricey.url(), "priority = 1\nprice = 10.0\n[caps]\nspend = { day = 25.0 }")
        .webhook_buyer("other", &other.url(), "priority = 2")
        .routes(&route("main", &["pricey", "other"], ""));
    each_engine(builder, async |gw| {
        let mut buyers = Vec::new();
        for i in 0..3 {
            let id = gw.post_json(&lead(500 + i)).await.lead_id();
            let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
            buyers.push(l["deliveries"][0]["buyer"].as_str().unwrap().to_string());
            let price = if i < 2 { json!("10.00") } else { serde_json::Value::Null };
            assert_eq!(l["deliveries"][0]["price"], price);
        }
        assert_eq!(buyers, ["pricey", "pricey", "other"]);
    })
    .await;
}
