//! Google Ads lead-form webhook: `POST /v1/sources/{source}/google-ads`.

use serde_json::json;

use crate::support::vendors::{self, GOOGLE_KEY, submission, submissions};
use crate::support::{TestReceiver, each_engine, fixture, sample};

const PATH: &str = "/v1/sources/acme/google-ads";

fn with_key(body: &[u8], key: &str) -> Vec<u8> {
    String::from_utf8_lossy(body).replace(GOOGLE_KEY, key).into_bytes()
}

#[tokio::test]
async fn the_google_sample_is_accepted_and_its_key_never_stored() {
    each_engine(vendors::builder(None), async |gw| {
        let a = vendors::post(gw, PATH, "application/json", sample("google_ads/lead_form_webhook.json"), &[])
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.outcome(), "accepted");
        assert!(!a.text.contains(GOOGLE_KEY));
        let lead = gw.lead(&a.lead_id()).await;
        let f = &lead["fields"];
        assert_eq!(f["first_name"], "Sam");
        assert_eq!(f["last_name"], "Okafor");
        assert_eq!(f["phone"], "+13125550155");
        assert_eq!(f["email"], "sam.okafor@example.com");
        assert_eq!(f["postal_code"], "60601");
        assert_eq!(f["vendor_lead_id"], "Lx9-EXAMPLE-0001-aBcD");
        assert_eq!(f["custom"]["SERVICE"], "Kitchen remodel");
        assert_eq!(f["custom"]["What is your budget?"], "$20k-$40k");
        assert_eq!(f["custom"]["form_id"], "40000000001");
        assert_eq!(f["custom"]["gcl_id"], "EAIaIQobChMIexample");
        assert!(f.get("test").is_none());
        assert!(!lead.to_string().contains(GOOGLE_KEY));

        let stored = submission(gw, a.json()["submission_id"].as_str().unwrap()).await;
        let body = stored["body"].as_str().unwrap();
        assert!(!body.contains(GOOGLE_KEY), "{body}");
        assert!(body.contains(r#""google_key": "[redacted]""#), "{body}");
        assert_eq!(stored["format"], "google-ads");
        // The rest of the body is as Google sent it.
        let original = String::from_utf8(sample("google_ads/lead_form_webhook.json")).unwrap();
        assert_eq!(body, original.replace(&format!("\"{GOOGLE_KEY}\""), "\"[redacted]\""));

        // Replaying the stored (redacted) body gives the same lead back.
        let replay =
            gw.post_admin(&format!("/v1/admin/submissions/{}/replay", stored["id"].as_str().unwrap())).await;
        assert_eq!(replay.lead_id(), a.lead_id(), "{}", replay.text);
    })
    .await;
}

#[tokio::test]
async fn a_wrong_empty_or_missing_google_key_is_refused_and_nothing_is_stored() {
    each_engine(vendors::builder(None), async |gw| {
        let body = sample("google_ads/lead_form_webhook.json");
        let wrong = vendors::post(gw, PATH, "application/json", with_key(&body, "guessed-secret"), &[]).await;
        assert_eq!(wrong.status, 403, "{}", wrong.text);
        assert!(wrong.text.contains("wrong google_key"));
        assert!(!wrong.text.contains("guessed-secret"));
        let empty = vendors::post(gw, PATH, "application/json", with_key(&body, ""), &[]).await;
        assert_eq!(empty.status, 401, "{}", empty.text);
        assert!(empty.text.contains("missing google_key"));
        let missing =
            String::from_utf8(body.clone()).unwrap().replace(r#""google_key": "example-shared-secret","#, "");
        let none = vendors::post(gw, PATH, "application/json", missing.into_bytes(), &[]).await;
        assert_eq!(none.status, 401, "{}", none.text);
        // A prefix of the key is as wrong as any other key.
        let prefix =
            vendors::post(gw, PATH, "application/json", with_key(&body, "example-shared"), &[]).await;
        assert_eq!(prefix.status, 403);
        assert!(submissions(gw, "acme").await.is_empty(), "refused posts are not stored");

        // Sources without [google_ads], and unknown sources, have no such endpoint.
        let other =
            vendors::post(gw, "/v1/sources/test/google-ads", "application/json", body.clone(), &[]).await;
        assert_eq!(other.status, 404);
        let unknown = vendors::post(gw, "/v1/sources/nope/google-ads", "application/json", body, &[]).await;
        assert_eq!(unknown.status, 404);
        assert_eq!(other.text, unknown.text, "the answer does not reveal which sources exist");
    })
    .await;
}

#[tokio::test]
async fn a_google_retry_gets_the_same_lead() {
    each_engine(vendors::builder(None), async |gw| {
        let body = sample("google_ads/lead_form_webhook.json");
        let first = vendors::post(gw, PATH, "application/json", body.clone(), &[]).await;
        let again = vendors::post(gw, PATH, "application/json", body, &[]).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.lead_id(), first.lead_id());
        assert_eq!(again.outcome(), "accepted");
    })
    .await;
}

#[tokio::test]
async fn huge_ids_are_kept_exact() {
    each_engine(vendors::builder(None), async |gw| {
        let a =
            vendors::post(gw, PATH, "application/json", fixture("google_ads/huge-ids-as-numbers.json"), &[])
                .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let f = gw.lead(&a.lead_id()).await["fields"].clone();
        assert_eq!(f["vendor_lead_id"], "123456789012345678901234567890");
        assert_eq!(f["custom"]["form_id"], "18446744073709551616");
        assert_eq!(f["custom"]["campaign_id"], "9007199254740993");
        assert_eq!(f["custom"]["adgroup_id"], "9223372036854775807");
        // The same huge id is the same lead.
        let again =
            vendors::post(gw, PATH, "application/json", fixture("google_ads/huge-ids-as-numbers.json"), &[])
                .await;
        assert_eq!(again.lead_id(), a.lead_id());
    })
    .await;
}

#[tokio::test]
async fn test_leads_are_stored_and_flagged_but_never_sold() {
    let buyer = TestReceiver::start().await;
    let builder = vendors::builder(None)
        .webhook_buyer("all", &buyer.url(), "")
        .routes("[[route]]\nname = \"everything\"\nbuyers = [\"all\"]\n");
    each_engine(builder, async |gw| {
        let before = buyer.count();
        let a = vendors::post(gw, PATH, "application/json", fixture("google_ads/test-lead.json"), &[]).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json()["test"], true);
        let lead = gw.lead(&a.lead_id()).await;
        assert_eq!(lead["status"], "accepted");
        assert_eq!(lead["fields"]["test"], true);
        assert_eq!(lead["stage"], "unsold");
        assert_eq!(lead["deliveries"], json!([]));
        let unsold =
            lead["events"].as_array().unwrap().iter().find(|e| e["kind"] == "unsold").cloned().unwrap();
        assert_eq!(unsold["detail"]["reason"], "vendor test lead: never sold");

        // A real lead with the test lead's e-mail is not its duplicate, and it is sold.
        let real = gw.post_json(&json!({"email": "test@example.com", "first_name": "Real"})).await;
        assert_eq!(real.status, 201, "{}", real.text);
        gw.wait_lead(&real.lead_id(), |l| l["stage"] == "delivered").await;
        gw.deliver_due().await;
        assert_eq!(buyer.count() - before, 1, "only the real lead reached the buyer");
    })
    .await;
}

#[tokio::test]
async fn pasted_payloads_are_tolerated_and_broken_ones_refused_by_field_or_position() {
    each_engine(vendors::builder(None), async |gw| {
        let ok = vendors::post(
            gw,
            PATH,
            "application/json",
            fixture("google_ads/raw-newlines-trailing-commas-numbers.json"),
            &[],
        )
        .await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        let f = gw.lead(&ok.lead_id()).await["fields"].clone();
        assert_eq!(f["first_name"], "Ifeoma");
        assert_eq!(f["email"], "ifeoma@example.org", "WORK_EMAIL stands in for a missing EMAIL");
        assert_eq!(f["phone"], "+13125550190");
        assert_eq!(f["company"], "Example Builders");
        assert_eq!(f["title"], "Owner");
        assert_eq!(f["state"], "IL");
        assert_eq!(f["country"], "US");
        assert_eq!(f["postal_code"], "60601");
        assert_eq!(f["custom"]["Tell us about the project"], "Two floors.\r\nStart in May.");

        let no_id =
            vendors::post(gw, PATH, "application/json", fixture("google_ads/missing-column-id.json"), &[])
                .await;
        assert_eq!(no_id.status, 400, "{}", no_id.text);
        assert!(no_id.json()["error"]["message"].as_str().unwrap().contains("user_column_data[1].column_id"));

        let cut =
            vendors::post(gw, PATH, "application/json", fixture("google_ads/truncated-body.json"), &[]).await;
        assert_eq!(cut.status, 400, "{}", cut.text);
        let e = &cut.json()["error"];
        assert_eq!(e["code"], "unparseable");
        assert_eq!(e["line"], 6);
        // Authentic but broken: kept for replay, with the key redacted.
        let stored = submission(gw, cut.json()["submission_id"].as_str().unwrap()).await;
        assert_eq!(stored["status"], "failed");
        let body = stored["body"].as_str().unwrap();
        assert!(body.contains("cut@example.com") && !body.contains(GOOGLE_KEY), "{body}");
    })
    .await;
}
