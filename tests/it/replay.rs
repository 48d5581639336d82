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
