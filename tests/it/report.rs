//! Reports and SLA breaches, checked against a hand-computed fixture.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{GatewayBuilder, TestReceiver, each_engine};

#[tokio::test]
async fn the_report_matches_a_hand_computed_fixture() {
    let acme = TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .webhook_buyer("acme", &acme.url(), "keys = [\"${LG_UNSET_ACME:-acme-buyer-key}\"]")
        .buyer("p", "delivery = \"pull\"\nkeys = [\"${LG_UNSET_P:-partner-key-p}\"]\n")
        .routes(
            "[[route]]\nname = \"pool\"\nwhen = \"product == 'pull'\"\nbuyers = [\"p\"]\noffer = \"open\"\n\
             sla = { claim_within = \"1h\" }\n\
             [[route]]\nname = \"push\"\nbuyers = [\"acme\"]\nsla = { disposition_within = \"24h\" }\n",
        );
    each_engine(builder, async |gw| {
        // Leads received from 2026-11-02T00:00Z on (the report's period).
        gw.clock.set(1_793_577_600_000);
        let post = async |v: Value| gw.post_json(&v).await;
        let l1 = post(json!({"email": "r1@example.com"})).await.lead_id();
        let l2 = post(json!({"email": "r2@example.com", "product": "pull"})).await.lead_id();
        let l3 = post(json!({"email": "r3@example.com", "product": "pull"})).await.lead_id();
        assert_eq!(post(json!({"email": "R1@example.com"})).await.outcome(), "duplicate");
        assert_eq!(post(json!({"first_name": "nobody"})).await.outcome(), "rejected");
        let l6 = post(json!({"email": "r6@example.com"})).await.lead_id();
        let l1d = gw.wait_lead(&l1, |l| l["stage"] == "delivered").await["deliveries"][0]["id"].as_str().unwrap().to_string();
        gw.wait_lead(&l6, |l| l["stage"] == "delivered").await;

        gw.advance(Duration::from_secs(600));
        let claim = gw.as_buyer("partner-key-p", "POST", &format!("/v1/partner/offers/{l2}/claim"), None).await;
        assert_eq!(claim.status, 200, "{}", claim.text);
        assert_eq!(gw.as_buyer("partner-key-p", "POST", &format!("/v1/partner/claims/{l2}/confirm"), None).await.status, 200);

        gw.advance(Duration::from_secs(3000)); // 1 h after the offers: l3 breaches its claim SLA.
        gw.sweep().await;
        let l = gw.lead(&l3).await;
        let breach = l["events"].as_array().unwrap().iter().find(|e| e["kind"] == "sla_breach").cloned().unwrap();
        assert_eq!(breach["detail"]["kind"], "claim");

        let conv = gw
            .as_buyer("acme-buyer-key", "POST", &format!("/v1/deliveries/{l1d}/disposition"), Some(json!({"status": "converted", "value": 500})))
            .await;
        assert_eq!(conv.status, 201, "{}", conv.text);
        let ret = gw
            .as_buyer("partner-key-p", "POST", &format!("/v1/partner/leads/{l2}/disposition"), Some(json!({"status": "returned", "reason": "bad lead"})))
            .await;
        assert_eq!(ret.status, 201, "{}", ret.text);

        gw.advance(Duration::from_secs(24 * 3600)); // l6 (push) has no disposition after 24 h.
        gw.sweep().await;

        let r = gw.get_admin("/v1/admin/report?from=2026-11-02T00:00:00Z&to=2026-11-03T00:00:00Z").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        let src = &v["sources"]["test"];
        let expect = json!({
            "received": 6, "accepted": 4, "duplicate": 1, "rejected": 1, "delivered": 2, "claimed": 1, "expired": 0,
            "returned": 1, "converted": 1, "conversion_rate": 0.3333, "median_secs_to_claim": 600,
            "median_secs_to_disposition": 3000, "sla_breaches": 2
        });
        assert_eq!(src, &expect, "{v:#}");
        assert_eq!(v["buyers"]["acme"]["delivered"], 2);
        assert_eq!(v["buyers"]["acme"]["conversion_rate"], 0.5);
        assert_eq!(v["buyers"]["acme"]["sla_breaches"], 1);
        assert_eq!(v["buyers"]["p"]["claimed"], 1);
        assert_eq!(v["buyers"]["p"]["median_secs_to_claim"], 600);
        assert_eq!(v["buyers"]["p"]["median_secs_to_disposition"], 3000);
        assert_eq!(v["buyers"]["route:pool"]["sla_breaches"], 1);

        // Dates name whole UTC days (as `to`, the day is included); a time that is none of the
        // accepted forms is a 400 naming them.
        let by_day = gw.get_admin("/v1/admin/report?from=2026-11-02&to=2026-11-02").await;
        assert_eq!(by_day.json()["sources"], v["sources"], "{}", by_day.text);
        let bad = gw.get_admin("/v1/admin/report?from=yesterday").await;
        assert_eq!(bad.status, 400);
        assert!(bad.text.contains("2026-12-01") && bad.text.contains("7d"), "{}", bad.text);

        // A period without those leads is empty; the CLI prints the same numbers as CSV.
        let none = gw.get_admin("/v1/admin/report?from=2026-11-05T00:00:00Z&to=2026-11-06T00:00:00Z").await.json();
        assert_eq!(none["sources"], json!({}));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadgate"))
            .args(["report", "--format", "csv", "--from", "2026-11-02", "--to", "2026-11-02", "--config"])
            .arg(&gw.config_dir)
            .args(["--database", &gw.database_url])
            .output()
            .unwrap();
        let csv = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{csv}{}", String::from_utf8_lossy(&out.stderr));
        assert!(csv.contains("source,test,6,4,1,1,2,1,0,1,1,0.3333,600,3000,2\r\n"), "{csv}");
        assert!(csv.contains("buyer,acme,0,0,0,0,2,0,0,0,1,0.5000,,"), "{csv}");
    })
    .await;
}
