//! Replay: a submission that failed to parse is kept and can be run again after a fix.

use serde_json::json;

use crate::support::{GatewayBuilder, each_engine};

const XML_SOURCE_BROKEN: &str =
    "keys = [\"${LG_TEST_UNSET_XML:-xml-source-key}\"]\n[xml]\nrecord = \"item\"\n";
const XML_SOURCE_FIXED: &str =
    "keys = [\"${LG_TEST_UNSET_XML:-xml-source-key}\"]\n[xml]\nrecord = \"lead\"\n";
const BATCH: &str =
    "<leads><lead><email>r1@example.com</email></lead><lead><email>r2@example.com</email></lead></leads>";

#[tokio::test]
async fn a_failed_submission_is_listed_and_replayed_after_a_config_fix() {
    let builder = GatewayBuilder::new().source("xmlsrc", XML_SOURCE_BROKEN);
    each_engine(builder, async |gw| {
        let a = gw.post_with("application/xml", BATCH, &[("x-api-key", "xml-source-key")]).await;
        assert_eq!(a.status, 400, "{}", a.text);
        let sid = crate::support::between(&a.text, "<submission_id>", "</submission_id>").to_string();

        let failed = gw.get_admin("/v1/admin/submissions?status=failed&source=xmlsrc").await.json();
        let listed: Vec<_> = failed["submissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(listed, std::slice::from_ref(&sid));
        assert!(failed["submissions"][0]["error"].as_str().unwrap().contains("item"), "{failed}");

        gw.write_source("xmlsrc", XML_SOURCE_FIXED);
        gw.restart().await;
        let r = gw.post_admin(&format!("/v1/admin/submissions/{sid}/replay")).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let results = r.json()["results"].as_array().cloned().unwrap();
        assert_eq!(results.len(), 2);
        let lead = gw.lead(results[0]["lead_id"].as_str().unwrap()).await;
        assert_eq!(lead["submission_id"], sid.as_str());
        assert_eq!(lead["fields"]["email"], "r1@example.com");
        assert_eq!(lead["events"][0]["detail"]["replay"], true);

        let s = gw.get_admin(&format!("/v1/admin/submissions/{sid}")).await.json();
        assert_eq!(s["status"], "processed");
        assert_eq!(s["attempts"], 2);
        let failed = gw.get_admin("/v1/admin/submissions?status=failed").await.json();
        assert_eq!(failed["submissions"], json!([]));
    })
    .await;
}

#[tokio::test]
async fn the_replay_command_replays_failed_submissions_of_a_source() {
    let builder = GatewayBuilder::new().source("xmlsrc", XML_SOURCE_BROKEN);
    each_engine(builder, async |gw| {
        let a = gw.post_with("application/xml", BATCH, &[("x-api-key", "xml-source-key")]).await;
        assert_eq!(a.status, 400);
        gw.stop().await;
        gw.write_source("xmlsrc", XML_SOURCE_FIXED);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadgate"))
            .args(["replay", "--failed", "--source", "xmlsrc", "--config"])
            .arg(&gw.config_dir)
            .args(["--database", &gw.database_url])
            .output()
            .expect("run leadgate replay");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout.matches(": accepted ").count(), 2, "{stdout}");
        gw.restart().await;
        let failed = gw.get_admin("/v1/admin/submissions?status=failed").await.json();
        assert_eq!(failed["submissions"], json!([]));
    })
    .await;
}

const STRICT_SOURCE: &str = "keys = [\"${LG_TEST_UNSET_STRICT:-strict-source-key}\"]\n[validate]\nrequired = [\"email\", \"phone\"]\n";
const LENIENT_SOURCE: &str =
    "keys = [\"${LG_TEST_UNSET_STRICT:-strict-source-key}\"]\n[validate]\nrequired = [\"email\"]\n";

fn kinds(lead: &serde_json::Value) -> Vec<String> {
    lead["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn replaying_an_accepted_submission_updates_its_lead_and_sells_it_once() {
    let r = crate::support::TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .webhook_buyer("b", &r.url(), "")
        .routes("[[route]]\nname = \"main\"\nbuyers = [\"b\"]\n");
    each_engine(builder, async |gw| {
        let before = r.count();
        let id = gw.post_json(&json!({"email": "replayed@example.com"})).await.lead_id();
        let lead = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        let sid = lead["submission_id"].as_str().unwrap().to_string();

        let again = gw.post_admin(&format!("/v1/admin/submissions/{sid}/replay")).await;
        assert_eq!(again.status, 201, "{}", again.text);
        let v = again.json();
        assert_eq!(v["lead_id"].as_str(), Some(id.as_str()), "{v}");
        assert_eq!(v["outcome"], "accepted", "not a duplicate of itself: {v}");

        gw.deliver_due().await;
        let lead = gw.lead(&id).await;
        let k = kinds(&lead);
        assert_eq!(k.iter().filter(|k| *k == "received").count(), 2, "both runs in the history: {k:?}");
        let replayed = lead["events"].as_array().unwrap().iter().find(|e| e["kind"] == "replayed").unwrap();
        assert_eq!(replayed["detail"]["before"], "accepted");
        assert_eq!(lead["stage"], "delivered");
        assert_eq!(lead["deliveries"].as_array().unwrap().len(), 1, "routed once: {lead:#}");
        assert_eq!(r.count() - before, 1, "delivered once");
        let s = gw.get_admin(&format!("/v1/admin/submissions/{sid}")).await.json();
        assert_eq!(s["attempts"], 2);
    })
    .await;
}

#[tokio::test]
async fn replaying_a_rejected_lead_after_a_rule_change_accepts_the_same_lead() {
    let builder = GatewayBuilder::new().source("strict", STRICT_SOURCE);
    each_engine(builder, async |gw| {
        let a = gw
            .post_with(
                "application/json",
                r#"{"email":"norule@example.com"}"#,
                &[("x-api-key", "strict-source-key")],
            )
            .await;
        assert_eq!(a.outcome(), "rejected", "{}", a.text);
        let id = a.lead_id();
        let sid = gw.lead(&id).await["submission_id"].as_str().unwrap().to_string();
        gw.write_source("strict", LENIENT_SOURCE);
        gw.restart().await;
        let again = gw.post_admin(&format!("/v1/admin/submissions/{sid}/replay")).await;
        assert_eq!(again.status, 201, "{}", again.text);
        let v = again.json();
        assert_eq!(
            (v["lead_id"].as_str(), v["outcome"].as_str()),
            (Some(id.as_str()), Some("accepted")),
            "{v}"
        );
        let lead = gw.lead(&id).await;
        assert_eq!(lead["status"], "accepted");
        assert_eq!(lead["reasons"], json!([]));
        let k = kinds(&lead);
        assert!(k.contains(&"rejected".to_string()) && k.contains(&"accepted".to_string()), "{k:?}");
        // The report counts the lead once, as what it is now.
        let r = gw.get_admin("/v1/admin/report?from=2000-01-01T00:00:00Z").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let src = &r.json()["sources"]["strict"];
        assert_eq!(
            (src["received"].as_i64(), src["accepted"].as_i64(), src["rejected"].as_i64()),
            (Some(1), Some(1), Some(0)),
            "{src}"
        );
    })
    .await;
}
