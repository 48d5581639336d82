//! Two real `leadgate serve` processes on one PostgreSQL database are exactly as correct
//! as one: dedupe, vendor retries, caps, round robin, outbox leases and kill -9 takeover.
//! Needs LEADGATE_TEST_POSTGRES (set by `scripts/test-services`): `#[ignore]`d in a plain
//! `cargo test`, run by `cargo test -- --ignored` (as `.ci/run` does).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use crate::support::gateway::{SOURCE_KEY, drop_pg_database, fresh_pg_database};
use crate::support::process::Instance;
use crate::support::{GatewayBuilder, Mode, TestReceiver};

fn pg_server() -> String {
    crate::support::service_env("LEADGATE_TEST_POSTGRES")
}

/// Two instances started at the same time (migrations race, and must not break).
fn two(config_dir: &std::path::Path, db: &str) -> (Instance, Instance) {
    let (c1, d1) = (config_dir.to_path_buf(), db.to_string());
    let (c2, d2) = (config_dir.to_path_buf(), db.to_string());
    let a = std::thread::spawn(move || Instance::start(&c1, &d1));
    let b = std::thread::spawn(move || Instance::start(&c2, &d2));
    (a.join().unwrap(), b.join().unwrap())
}

async fn post(http: reqwest::Client, url: String, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = http.post(url).header("x-api-key", SOURCE_KEY).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_POSTGRES (two instances share one PostgreSQL database)"]
async fn dedupe_and_vendor_retries_are_exact_across_two_instances() {
    let server = pg_server();
    let db = fresh_pg_database(&server).await;
    let (_dir, config_dir) = GatewayBuilder::new().materialize();
    let (a, b) = two(&config_dir, &db);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let same = json!({"email": "twice@example.com", "phone": "(415) 555-0111"});
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let url = if i % 2 == 0 { a.url("/v1/leads") } else { b.url("/v1/leads") };
        tasks.spawn(post(http.clone(), url, same.clone()));
    }
    let mut outcomes: HashMap<u16, usize> = HashMap::new();
    while let Some(r) = tasks.join_next().await {
        *outcomes.entry(r.unwrap().0).or_default() += 1;
    }
    assert_eq!(outcomes.get(&201), Some(&1), "{outcomes:?}");
    assert_eq!(outcomes.get(&200), Some(&39), "{outcomes:?}");

    let retry = json!({"lead_id": "VND-multi", "email": "vendor@example.com"});
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let url = if i % 2 == 0 { a.url("/v1/leads") } else { b.url("/v1/leads") };
        tasks.spawn(post(http.clone(), url, retry.clone()));
    }
    let mut ids = std::collections::BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        let (status, v) = r.unwrap();
        assert_eq!(status, 201, "{v}");
        ids.insert(v["lead_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(a.stop() && b.stop());
    drop_pg_database(&server, &db).await;
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_POSTGRES (two instances share one PostgreSQL database)"]
async fn caps_and_round_robin_are_exact_across_two_instances() {
    let server = pg_server();
    let db = fresh_pg_database(&server).await;
    let rr: Vec<TestReceiver> = futures_util::future::join_all((0..4).map(|_| TestReceiver::start())).await;
    let (capped, spill) = (TestReceiver::start().await, TestReceiver::start().await);
    let mut builder = GatewayBuilder::new()
        .webhook_buyer("capped", &capped.url(), "priority = 1\n[caps]\nday = 30")
        .webhook_buyer("spill", &spill.url(), "priority = 2");
    for (i, r) in rr.iter().enumerate() {
        builder = builder.webhook_buyer(&format!("rr{i}"), &r.url(), "");
    }
    let builder = builder.routes(
        "[[route]]\nname = \"rr\"\nwhen = \"product == 'rr'\"\nbuyers = [\"rr0\", \"rr1\", \"rr2\", \"rr3\"]\nstrategy = \"round_robin\"\n\
         [[route]]\nname = \"caps\"\nbuyers = [\"capped\", \"spill\"]\n",
    );
    let (_dir, config_dir) = builder.materialize();
    let (a, b) = two(&config_dir, &db);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let url = if i % 2 == 0 { a.url("/v1/leads") } else { b.url("/v1/leads") };
        tasks.spawn(post(http.clone(), url.clone(), json!({"email": format!("cap{i}@example.com")})));
        tasks.spawn(post(http.clone(), url, json!({"email": format!("rr{i}@example.com"), "product": "rr"})));
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().0, 201);
    }
    spill.wait_for(70).await;
    capped.wait_for(30).await;
    for r in &rr {
        r.wait_for(25).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((capped.count(), spill.count()), (30, 70));
    assert_eq!(rr.iter().map(|r| r.count()).collect::<Vec<_>>(), [25, 25, 25, 25]);
    assert!(a.stop() && b.stop());
    drop_pg_database(&server, &db).await;
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_POSTGRES (two instances share one PostgreSQL database)"]
async fn each_delivery_is_attempted_once_and_new_jobs_wake_workers_without_polling() {
    let server = pg_server();
    let db = fresh_pg_database(&server).await;
    let r = TestReceiver::start().await;
    // A one-minute poll: only notifications can make delivery prompt.
    let builder = GatewayBuilder::new()
        .main("[outbox]\npoll = \"60s\"\n")
        .webhook_buyer("b", &r.url(), "")
        .routes("[[route]]\nname = \"main\"\nbuyers = [\"b\"]\n");
    let (_dir, config_dir) = builder.materialize();
    let (a, b) = two(&config_dir, &db);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let url = if i % 2 == 0 { a.url("/v1/leads") } else { b.url("/v1/leads") };
        tasks.spawn(post(http.clone(), url, json!({"email": format!("once{i}@example.com")})));
    }
    while let Some(x) = tasks.join_next().await {
        assert_eq!(x.unwrap().0, 201);
    }
    r.wait_for(100).await;
    assert!(started.elapsed() < Duration::from_secs(20), "deliveries took {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for x in r.received() {
        *per_id.entry(x.headers["webhook-id"].to_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 100);
    assert!(per_id.values().all(|n| *n == 1), "a delivery was attempted twice: {per_id:?}");
    assert!(a.stop() && b.stop());
    drop_pg_database(&server, &db).await;
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_POSTGRES (two instances share one PostgreSQL database)"]
async fn a_killed_instances_leased_delivery_is_taken_over_after_the_lease() {
    let server = pg_server();
    let db = fresh_pg_database(&server).await;
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .main("[outbox]\nlease = \"3s\"\n")
        .buyer(
            "slow",
            &format!(
                "delivery = \"webhook\"\n[webhook]\nurl = \"{}\"\ntimeout = \"2s\"\nallow_private = [\"127.0.0.0/8\"]\n",
                r.url()
            ),
        )
        .routes("[[route]]\nname = \"main\"\nbuyers = [\"slow\"]\n");
    let (_dir, config_dir) = builder.materialize();
    let a = Instance::start(&config_dir, &db);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    r.script(vec![Mode::Slow(Duration::from_secs(30))]);
    let (status, v) = post(http.clone(), a.url("/v1/leads"), json!({"email": "kill@example.com"})).await;
    assert_eq!(status, 201);
    let lead_id = v["lead_id"].as_str().unwrap().to_string();
    r.wait_for(1).await;
    a.kill();
    let b = Instance::start(&config_dir, &db);
    let got = r.wait_for(2).await;
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"], "the same delivery, taken over");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let l: serde_json::Value = http
            .get(b.url(&format!("/v1/leads/{lead_id}")))
            .header("x-api-key", crate::support::gateway::ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if l["stage"] == "delivered" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{l:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(b.stop());
    drop_pg_database(&server, &db).await;
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_POSTGRES (two instances share one PostgreSQL database)"]
async fn claims_are_exact_across_two_instances() {
    let server = pg_server();
    let db = fresh_pg_database(&server).await;
    let builder = GatewayBuilder::new()
        .buyer("p", "delivery = \"pull\"\nkeys = [\"${LG_UNSET_P:-partner-key-p}\"]\n")
        .routes("[[route]]\nname = \"pool\"\nbuyers = [\"p\"]\noffer = \"open\"\n");
    let (_dir, config_dir) = builder.materialize();
    let (a, b) = two(&config_dir, &db);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for chunk in 0..10 {
        let batch: Vec<serde_json::Value> = (0..100)
            .map(|i| json!({"email": format!("mc{}@example.com", chunk * 100 + i), "phone": format!("(206) 555-{:04}", chunk * 100 + i)}))
            .collect();
        let url = if chunk % 2 == 0 { a.url("/v1/leads") } else { b.url("/v1/leads") };
        let (status, v) = post(http.clone(), url, serde_json::Value::Array(batch)).await;
        assert_eq!(status, 201, "{v}");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let url =
            if i % 2 == 0 { a.url("/v1/partner/claims/next") } else { b.url("/v1/partner/claims/next") };
        let http = http.clone();
        tasks.spawn(async move {
            let mut got = Vec::new();
            loop {
                let r = http.post(&url).header("x-api-key", "partner-key-p").send().await.unwrap();
                match r.status().as_u16() {
                    200 => got.push(
                        r.json::<serde_json::Value>().await.unwrap()["lead_id"].as_str().unwrap().to_string(),
                    ),
                    204 => return got,
                    s => panic!("claim answered {s}"),
                }
            }
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    let unique: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (1000, 1000));
    assert!(a.stop() && b.stop());
    drop_pg_database(&server, &db).await;
}
