//! Webhook delivery: retries, Retry-After, timeouts, 410, dead letters, signatures, SSRF.

use std::time::Duration;

use serde_json::json;

use crate::support::{GatewayBuilder, Mode, TestReceiver, each_engine};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn one_route(buyers: &[&str]) -> String {
    let list: Vec<String> = buyers.iter().map(|b| format!("\"{b}\"")).collect();
    format!("[[route]]\nname = \"main\"\nbuyers = [{}]\n", list.join(", "))
}

fn lead(tag: &str) -> serde_json::Value {
    json!({"first_name": "W", "email": format!("{tag}@example.com")})
}

#[tokio::test]
async fn failures_are_retried_with_the_same_webhook_id_until_success() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new().webhook_buyer("b", &r.url(), "").routes(&one_route(&["b"]));
    each_engine(builder, async |gw| {
        let n = r.count();
        r.script(vec![Mode::Status(500), Mode::Status(503)]);
        let id = gw.post_json(&lead("retry")).await.lead_id();
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        let got = r.wait_for(n + 3).await;
        let ids: Vec<&str> = got[n..].iter().map(|x| x.headers["webhook-id"].to_str().unwrap()).collect();
        assert_eq!(ids, vec![l["deliveries"][0]["id"].as_str().unwrap(); 3]);
        let log = l["deliveries"][0]["attempt_log"].as_array().unwrap();
        let outcomes: Vec<&str> = log.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["retry", "retry", "delivered"]);
        assert_eq!(log[0]["status"], 500);
        assert_eq!(l["deliveries"][0]["attempts"], 3);
    })
    .await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new().webhook_buyer("b", &r.url(), "").routes(&one_route(&["b"]));
    each_engine(builder, async |gw| {
        let n = r.count();
        r.script(vec![Mode::TooMany(1)]);
        let id = gw.post_json(&lead("ra")).await.lead_id();
        gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        let got = r.received();
        let gap = got[n + 1].at - got[n].at;
        assert!(gap >= Duration::from_millis(950), "second attempt after {gap:?}");
    })
    .await;
}

#[tokio::test]
async fn a_slow_buyer_times_out_and_is_retried() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .buyer(
            "slow",
            &format!(
                "delivery = \"webhook\"\n[retry]\nschedule = [\"0s\", \"50ms\"]\n\
                 [webhook]\nurl = \"{}\"\ntimeout = \"300ms\"\nallow_private = [\"127.0.0.0/8\"]\n",
                r.url()
            ),
        )
        .routes(&one_route(&["slow"]));
    each_engine(builder, async |gw| {
        r.script(vec![Mode::Slow(Duration::from_secs(2))]);
        let id = gw.post_json(&lead("slow")).await.lead_id();
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        let log = l["deliveries"][0]["attempt_log"].as_array().unwrap();
        assert_eq!(log[0]["outcome"], "retry");
        assert!(log[0]["error"].as_str().unwrap().contains("timed out"), "{log:?}");
    })
    .await;
}

#[tokio::test]
async fn a_gone_endpoint_disables_the_buyer_and_the_lead_moves_on() {
    let (gone, next) = (TestReceiver::start().await, TestReceiver::start().await);
    let builder = GatewayBuilder::new()
        .webhook_buyer("gone", &gone.url(), "priority = 1")
        .webhook_buyer("next", &next.url(), "priority = 2")
        .routes(&one_route(&["gone", "next"]));
    each_engine(builder, async |gw| {
        gone.set(Mode::Status(410));
        let id = gw.post_json(&lead("g1")).await.lead_id();
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        assert_eq!(l["deliveries"][1]["buyer"], "next");
        assert!(l["events"].as_array().unwrap().iter().any(|e| e["kind"] == "buyer_disabled"));
        // The disabled buyer is skipped from now on.
        let n = gone.count();
        let id = gw.post_json(&lead("g2")).await.lead_id();
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        assert_eq!(l["deliveries"].as_array().unwrap().len(), 1);
        assert_eq!(l["deliveries"][0]["buyer"], "next");
        assert_eq!(gone.count(), n);
        // The operator sees it and lifts it once the buyer fixed its endpoint.
        let list = gw.get_admin("/v1/admin/buyers").await.json();
        let g = list["buyers"].as_array().unwrap().iter().find(|b| b["name"] == "gone").cloned().unwrap();
        assert!(g["disabled_at"].is_string(), "{list}");
        gone.set(Mode::Accept);
        assert_eq!(gw.post_admin("/v1/admin/buyers/gone/enable").await.status, 200);
        let id = gw.post_json(&lead("g3")).await.lead_id();
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        assert_eq!(l["deliveries"][0]["buyer"], "gone");
    })
    .await;
}

#[tokio::test]
async fn redirects_are_not_followed_and_client_errors_reject() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new().webhook_buyer("b", &r.url(), "").routes(&one_route(&["b"]));
    each_engine(builder, async |gw| {
        r.set(Mode::Redirect);
        let id = gw.post_json(&lead("redir")).await.lead_id();
        // (The lead and its deliveries are read one after the other: wait for both.)
        let l = gw
            .wait_lead(&id, |l| l["deliveries"][0]["status"] == "dead" && l["stage"] == "undelivered")
            .await;
        assert_eq!(l["deliveries"][0]["attempts"], 3);
        r.set(Mode::Status(404));
        let id = gw.post_json(&lead("nf")).await.lead_id();
        let l =
            gw.wait_lead(&id, |l| l["deliveries"][0]["status"] == "rejected" && l["stage"] == "unsold").await;
        assert_eq!(l["deliveries"][0]["attempts"], 1);
        r.set(Mode::Accept);
    })
    .await;
}

#[tokio::test]
async fn a_dead_letter_can_be_redelivered_by_api_and_by_command() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new().webhook_buyer("b", &r.url(), "").routes(&one_route(&["b"]));
    each_engine(builder, async |gw| {
        r.set(Mode::Status(500));
        let id = gw.post_json(&lead("dead1")).await.lead_id();
        let l = gw.wait_lead(&id, |l| l["deliveries"][0]["status"] == "dead").await;
        let delivery = l["deliveries"][0]["id"].as_str().unwrap().to_string();
        assert!(l["events"].as_array().unwrap().iter().any(|e| e["kind"] == "dead_lettered"));

        r.set(Mode::Accept);
        let a = gw.post_admin(&format!("/v1/admin/deliveries/{delivery}/redeliver")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        let again = gw.post_admin(&format!("/v1/admin/deliveries/{delivery}/redeliver")).await;
        assert_eq!(again.status, 404);
        let not_found = format!("dead-lettered or rejected delivery {delivery} not found");
        assert!(again.text.contains(&not_found), "{}", again.text);
        // The command line answers the same delivery with the same words, and fails.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadgate"))
            .args(["redeliver", &delivery, "--config"])
            .arg(&gw.config_dir)
            .args(["--database", &gw.database_url])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains(&not_found), "{out:?}");

        // The command line: every dead letter of the buyer since a time (a day ago).
        r.set(Mode::Status(500));
        let id2 = gw.post_json(&lead("dead2")).await.lead_id();
        gw.wait_lead(&id2, |l| l["deliveries"][0]["status"] == "dead").await;
        r.set(Mode::Accept);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadgate"))
            .args(["redeliver", "--buyer", "b", "--since", "1d", "--config"])
            .arg(&gw.config_dir)
            .args(["--database", &gw.database_url])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("1 delivery(ies) re-queued"), "{stdout}");
        gw.wait_lead(&id2, |l| l["stage"] == "delivered").await;
    })
    .await;
}

#[tokio::test]
async fn a_restart_in_the_middle_of_retries_still_delivers() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .buyer(
            "b",
            &format!(
                "delivery = \"webhook\"\n[retry]\nschedule = [\"0s\", \"1s\", \"1s\"]\n\
                 [webhook]\nurl = \"{}\"\nallow_private = [\"127.0.0.0/8\"]\n",
                r.url()
            ),
        )
        .routes(&one_route(&["b"]));
    each_engine(builder, async |gw| {
        r.set(Mode::Status(500));
        let n = r.count();
        let id = gw.post_json(&lead("restart")).await.lead_id();
        r.wait_for(n + 1).await;
        gw.stop().await;
        r.set(Mode::Accept);
        gw.restart().await;
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        assert_eq!(l["deliveries"][0]["attempts"], 2);
    })
    .await;
}

#[tokio::test]
async fn signatures_follow_standard_webhooks() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .buyer(
            "signed",
            &format!(
                "delivery = \"webhook\"\n[webhook]\nurl = \"{}\"\nsecret = \"{SECRET}\"\nallow_private = [\"127.0.0.0/8\"]\n",
                r.url()
            ),
        )
        .routes(&one_route(&["signed"]));
    each_engine(builder, async |gw| {
        let n = r.count();
        let id = gw.post_json(&lead("sig")).await.lead_id();
        let got = r.wait_for(n + 1).await;
        let req = &got[n];
        let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(body["lead_id"], id.as_str());
        assert_eq!(body["fields"]["email"], "sig@example.com");
        let h = |k: &str| req.headers[k].to_str().unwrap().to_string();
        // An independent implementation: the `standardwebhooks` package from PyPI.
        let check = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, standardwebhooks as s\n\
                 w = s.Webhook(sys.argv[1])\n\
                 w.verify(sys.stdin.buffer.read(), {'webhook-id': sys.argv[2], 'webhook-timestamp': sys.argv[3], 'webhook-signature': sys.argv[4]})\n\
                 print('verified')",
                SECRET,
                &h("webhook-id"),
                &h("webhook-timestamp"),
                &h("webhook-signature"),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = check else {
            crate::support::skip("python3 not available for the standardwebhooks check");
            return;
        };
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(req.body.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No module named") {
            crate::support::skip("python standardwebhooks not installed (scripts/test-services installs it)");
            return;
        }
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "verified", "{stderr}");
    })
    .await;
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let r = TestReceiver::start().await;
    let unguarded = |url: String| {
        format!("delivery = \"webhook\"\n[retry]\nschedule = [\"0s\"]\n[webhook]\nurl = \"{url}\"\n")
    };
    let builder = GatewayBuilder::new()
        .buyer("literal", &unguarded(r.url()))
        .buyer("named", &unguarded(format!("http://localhost:{}/leads", r.addr.port())))
        .buyer("metadata", &unguarded("http://169.254.169.254/latest/meta-data".into()))
        .routes("[[route]]\nname = \"all\"\nbuyers = [\"literal\", \"named\", \"metadata\"]\nstrategy = \"shared\"\nmax_buyers = 3\n");
    each_engine(builder, async |gw| {
        let n = r.count();
        let id = gw.post_json(&lead("ssrf")).await.lead_id();
        let l = gw
            .wait_lead(&id, |l| {
                l["deliveries"]
                    .as_array()
                    .is_some_and(|d| d.len() == 3 && d.iter().all(|x| x["status"] != "scheduled"))
            })
            .await;
        for d in l["deliveries"].as_array().unwrap() {
            assert_ne!(d["status"], "delivered", "{d:#}");
            let err = d["last_error"].as_str().unwrap_or_default();
            assert!(
                err.contains("refused") || err.contains("not allowed") || err.contains("forbidden"),
                "{d:#}"
            );
        }
        assert_eq!(r.count(), n, "the receiver must never be reached");
    })
    .await;
}

#[tokio::test]
async fn deliveries_waiting_in_memory_at_a_graceful_stop_go_out_right_after_the_restart() {
    let r = TestReceiver::start().await;
    // One attempt at a time, and the default two-minute lease: a delivery still leased after
    // the stop would wait far longer than `wait_lead` does.
    let builder = GatewayBuilder::new()
        .main("[outbox]\nconcurrency = 1\n")
        .buyer(
            "one-at-a-time",
            &format!(
                "delivery = \"webhook\"\n[webhook]\nurl = \"{}\"\ntimeout = \"5s\"\nallow_private = [\"127.0.0.0/8\"]\n",
                r.url()
            ),
        )
        .routes(&one_route(&["one-at-a-time"]));
    each_engine(builder, async |gw| {
        let n = r.count();
        r.script(vec![Mode::Slow(Duration::from_millis(1500))]);
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(gw.post_json(&lead(&format!("stop{i}"))).await.lead_id());
        }
        // The first attempt is in flight; the other two wait in memory for the one worker.
        r.wait_for(n + 1).await;
        gw.restart().await;
        for id in &ids {
            let l = gw.wait_lead(id, |l| l["stage"] == "delivered").await;
            assert_eq!(l["deliveries"][0]["attempts"], 1, "{l:#}");
        }
        assert_eq!(r.count() - n, 3, "each delivered once");
    })
    .await;
}
