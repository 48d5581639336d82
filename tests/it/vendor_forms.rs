//! HubSpot Forms API bodies, Salesforce Web-to-Lead posts and LeadConduit-style posts.

use serde_json::json;

use crate::support::gateway::OTHER_KEY;
use crate::support::vendors::{self, ACME_KEY, submission, submissions};
use crate::support::{between, each_engine, fixture};

const HUBSPOT: &str = "/v1/sources/acme/hubspot";
const W2L: &str = "/v1/sources/acme/web-to-lead";
const LC: &str = "/v1/sources/acme/leadconduit";
const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn a_hubspot_submission_keeps_context_dates_multi_selects_and_consent() {
    each_engine(vendors::builder(None), async |gw| {
        let bearer = format!("Bearer {ACME_KEY}");
        let a = vendors::post(
            gw,
            HUBSPOT,
            "application/json",
            fixture("hubspot/submission-with-consent.json"),
            &[("authorization", &bearer)],
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json()["inlineMessage"], "Thanks for submitting the form.");
        assert_eq!(a.outcome(), "accepted");
        let f = gw.lead(&a.lead_id()).await["fields"].clone();
        assert_eq!(f["first_name"], "Grace");
        assert_eq!(f["last_name"], "Kim");
        assert_eq!(f["email"], "grace.kim@example.com");
        assert_eq!(f["phone"], "+17185550126");
        assert_eq!(f["company"], "Example Realty");
        assert_eq!(f["postal_code"], "11201");
        assert_eq!(f["comments"], "Looking for a 2-bedroom; ideally near a park.");
        assert_eq!(f["ip_address"], "198.51.100.23");
        assert_eq!(f["landing_page_url"], "https://www.example.com/contact");
        assert_eq!(f["custom"]["services_of_interest"], json!(["Buying", "Selling", "Renting"]));
        assert_eq!(f["custom"]["date_of_birth"], "1990-01-01");
        assert_eq!(f["custom"]["hutk"], "6f453d92607b8108998dc213178ad214");
        assert_eq!(f["custom"]["submitted_at"], "2025-10-09T08:53:20Z");
        let c = &f["consent"];
        assert_eq!(c["given"], true);
        assert_eq!(c["text"], "I agree to allow Example Realty to store and process my personal data.");
        assert_eq!(c["timestamp"], "2025-10-09T08:53:20Z");
        assert_eq!(c["trustedform_cert_url"], "https://cert.trustedform.com/2b3c4d5e6f");
        assert_eq!(c["jornaya_leadid"], "D3ADB33F-0000-4000-8000-000000000001");
        assert_eq!(f["custom"]["consent_communications"][0]["subscriptionTypeId"], 999);
    })
    .await;
}

#[tokio::test]
async fn hubspot_paths_keys_tolerance_and_refusals() {
    each_engine(vendors::builder(None), async |gw| {
        let key = [("x-api-key", ACME_KEY)];
        // HubSpot's own path shape under the source: an integration changes only its base URL.
        let path = format!(
            "{HUBSPOT}/submissions/v3/integration/secure/submit/62515/78c2891f-ebdd-44c0-bd94-15c012bbbfbf"
        );
        let a = vendors::post(
            gw,
            &path,
            "application/json",
            fixture("hubspot/hand-built-raw-newline-trailing-commas.json"),
            &key,
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let lead = gw.lead(&a.lead_id()).await;
        assert_eq!(lead["fields"]["phone"], "+12125550143");
        assert_eq!(lead["fields"]["custom"]["how_can_we_help"], "Line one\nline two");
        let s = submission(gw, lead["submission_id"].as_str().unwrap()).await;
        assert_eq!(s["meta"]["hubspot_portal_id"], "62515");

        let rejected =
            vendors::post(gw, HUBSPOT, "application/json", fixture("hubspot/invalid-email.json"), &key).await;
        assert_eq!(rejected.status, 400, "{}", rejected.text);
        let body = rejected.json();
        assert_eq!(body["status"], "error");
        assert_eq!(body["outcome"], "rejected");
        let types: Vec<&str> =
            body["errors"].as_array().unwrap().iter().map(|e| e["errorType"].as_str().unwrap()).collect();
        assert!(types.contains(&"INVALID_EMAIL"), "{types:?}");

        let broken =
            vendors::post(gw, HUBSPOT, "application/json", fixture("hubspot/fields-not-an-array.json"), &key)
                .await;
        assert_eq!(broken.status, 400);
        assert!(
            broken.json()["message"].as_str().unwrap().contains("fields: is an object"),
            "{}",
            broken.text
        );

        let body = fixture("hubspot/submission-with-consent.json");
        assert_eq!(vendors::post(gw, HUBSPOT, "application/json", body.clone(), &[]).await.status, 401);
        let other = vendors::post(gw, HUBSPOT, "application/json", body, &[("x-api-key", OTHER_KEY)]).await;
        assert_eq!(other.status, 403, "another source's key may not post here");
    })
    .await;
}

#[tokio::test]
async fn a_web_to_lead_post_is_redirected_to_ret_url_like_salesforce_does() {
    each_engine(vendors::builder(None), async |gw| {
        let (a, location) =
            vendors::post_location(gw, W2L, FORM, fixture("web_to_lead/salesforce-generated-form.txt"), &[])
                .await;
        assert_eq!(a.status, 303, "{}", a.text);
        assert_eq!(location.as_deref(), Some("https://www.example.com/thank-you"));
        let s = submissions(gw, "acme").await;
        let stored = submission(gw, s[0]["id"].as_str().unwrap()).await;
        assert_eq!(stored["format"], "web-to-lead");
        let lead = gw.lead(stored["lead_ids"][0].as_str().unwrap()).await;
        let f = &lead["fields"];
        assert_eq!(lead["status"], "accepted");
        assert_eq!(f["first_name"], "Ana");
        assert_eq!(f["last_name"], "Silva");
        assert_eq!(f["company"], "Example Solar Co");
        assert_eq!(f["state"], "TX");
        assert_eq!(f["postal_code"], "78701");
        assert_eq!(f["phone"], "+15125550111");
        assert_eq!(f["phone_2"], "+15125550112");
        assert_eq!(f["comments"], "Roof faces south.\r\nPlease call after 5pm.");
        assert_eq!(f["product"], "Solar;Battery", "a multi-select picklist, joined as Salesforce does");
        assert_eq!(f["custom"]["budget"], "15000");
        assert_eq!(f["custom"]["00N5f00000Fothr"], "kept");
        assert_eq!(f["custom"]["website"], "https://solar.example.com");
        assert_eq!(f["custom"]["lead_source"], "Web");
        assert!(f.get("landing_page_url").is_none(), "URL is the lead's website, not a landing page");
        assert_eq!(f["consent"]["trustedform_cert_url"], "https://cert.trustedform.com/7e6d5c4b3a");
        assert_eq!(f["consent"]["trustedform_ping_url"], "https://ping.trustedform.com/7e6d5c4b3a");
        assert_eq!(f["consent"]["jornaya_leadid"], "C3D4E5F6-A7B8-4922-8011-CCDDEEFF0011");
        for control in ["oid", "retURL", "captcha_settings", "g-recaptcha-response", "submit"] {
            assert!(f["custom"].get(control).is_none(), "{control} is a form control");
        }

        // debug=1 answers JSON, as Salesforce's debug mode shows the result.
        let debug = [fixture("web_to_lead/salesforce-generated-form.txt"), b"&debug=1".to_vec()].concat();
        let d = vendors::post(gw, W2L, FORM, debug, &[]).await;
        assert_eq!(d.status, 200, "a retry of the same lead: {}", d.text);
        assert_eq!(d.outcome(), "duplicate");

        // No retURL: the source's return_url.
        let (_, location) = vendors::post_location(
            gw,
            W2L,
            FORM,
            format!("oid={}&last_name=Zed&email=zed%40example.com", vendors::OID).into_bytes(),
            &[],
        )
        .await;
        assert_eq!(location.as_deref(), Some("https://www.example.com/default-thanks"));
    })
    .await;
}

#[tokio::test]
async fn web_to_lead_checks_the_oid_and_reads_declared_latin1() {
    each_engine(vendors::builder(None), async |gw| {
        let wrong = vendors::post(
            gw,
            W2L,
            FORM,
            b"oid=00D000000000001&last_name=X&email=x%40example.com".to_vec(),
            &[],
        )
        .await;
        assert_eq!(wrong.status, 403, "{}", wrong.text);
        let none = vendors::post(gw, W2L, FORM, b"last_name=X&email=x%40example.com".to_vec(), &[]).await;
        assert_eq!(none.status, 403);
        assert!(submissions(gw, "acme").await.is_empty());

        let (a, _) =
            vendors::post_location(gw, W2L, FORM, fixture("web_to_lead/latin1-declared-encoding.txt"), &[])
                .await;
        assert_eq!(a.status, 303);
        let s = submissions(gw, "acme").await;
        let lead = gw
            .lead(submission(gw, s[0]["id"].as_str().unwrap()).await["lead_ids"][0].as_str().unwrap())
            .await;
        assert_eq!(lead["fields"]["first_name"], "José");
        assert_eq!(lead["fields"]["last_name"], "Muñoz");
        assert_eq!(lead["fields"]["company"], "Café Olé");

        // Undeclared Latin-1 is refused by field, and kept.
        let raw = format!("oid={}&debug=1&last_name=Mu%F1oz&email=m%40example.com", vendors::OID);
        let bad = vendors::post(gw, W2L, FORM, raw.into_bytes(), &[]).await;
        assert_eq!(bad.status, 400, "{}", bad.text);
        assert!(bad.json()["error"]["message"].as_str().unwrap().contains("field `last_name` is not UTF-8"));
        assert_eq!(submissions(gw, "acme").await[0]["status"], "failed");
    })
    .await;
}

#[tokio::test]
async fn leadconduit_posts_get_leadconduit_answers() {
    each_engine(vendors::builder(None), async |gw| {
        let key = [("x-api-key", ACME_KEY)];
        let a = vendors::post(gw, LC, FORM, fixture("leadconduit/form-post.txt"), &key).await;
        assert_eq!(a.status, 201, "{}", a.text);
        let body = a.json();
        assert_eq!(body["outcome"], "success");
        assert_eq!(body["price"], 12.5);
        let id = body["lead"]["id"].as_str().unwrap().to_string();
        let f = gw.lead(&id).await["fields"].clone();
        assert_eq!(f["phone"], "+15125550117");
        assert_eq!(f["phone_2"], "+15125550118");
        assert_eq!(f["street"], "100 Congress Ave");
        assert_eq!(f["street_2"], "Unit 5");
        assert_eq!(f["state"], "TX");
        assert_eq!(f["vendor_lead_id"], "LC-REF-0001");
        assert_eq!(f["consent"]["trustedform_cert_url"], "https://cert.trustedform.com/9a8b7c6d");
        assert_eq!(f["consent"]["jornaya_leadid"], "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF");
        assert_eq!(f["custom"]["mortgage.loan.amount"], "350000");

        let dup =
            vendors::post(gw, LC, FORM, b"email=lee.tanaka%40example.org&first_name=Lee".to_vec(), &key)
                .await;
        assert_eq!(dup.status, 200);
        assert_eq!(dup.json()["outcome"], "failure");
        assert_eq!(dup.json()["reason"], "duplicate lead");
        assert_eq!(dup.json()["price"], 0.0);

        let rejected = vendors::post(gw, LC, FORM, b"first_name=NoContact".to_vec(), &key).await;
        assert_eq!(rejected.json()["outcome"], "failure");
        assert!(rejected.json()["reason"].as_str().unwrap().contains("email|phone"), "{}", rejected.text);

        let json_post = vendors::post(
            gw,
            LC,
            "application/json",
            fixture("leadconduit/json-post-trailing-comma.json"),
            &key,
        )
        .await;
        assert_eq!(json_post.status, 201, "{}", json_post.text);
        let f = gw.lead(json_post.json()["lead"]["id"].as_str().unwrap()).await["fields"].clone();
        assert_eq!(f["first_name"], "Rosa");
        assert_eq!(f["company"], "Example Insurance");
        assert_eq!(f["phone"], "+17185550190");
        assert_eq!(f["consent"]["jornaya_leadid"], "B2C3D4E5-F6A7-4811-9900-BBCCDDEEFF00");

        let xml = vendors::post(gw, LC, "text/xml", fixture("leadconduit/xml-post.xml"), &key).await;
        assert_eq!(xml.status, 201, "{}", xml.text);
        assert!(xml.content_type.starts_with("application/xml"));
        assert_eq!(between(&xml.text, "<outcome>", "</outcome>"), "success");
        let f = gw.lead(between(&xml.text, "<id>", "</id>")).await["fields"].clone();
        assert_eq!(f["vendor_lead_id"], "LC-REF-0003");

        let broken = vendors::post(
            gw,
            LC,
            "application/json",
            b"{\"email\": \"a@example.com\"\n\"x\": 1}".to_vec(),
            &key,
        )
        .await;
        assert_eq!(broken.status, 400);
        assert_eq!(broken.json()["outcome"], "error");
        assert!(broken.json()["reason"].as_str().unwrap().contains("line 2"), "{}", broken.text);
    })
    .await;
}

#[tokio::test]
async fn leadconduit_keys_come_from_headers_basic_auth_or_the_url_when_allowed() {
    let builder = vendors::builder(None);
    each_engine(builder, async |gw| {
        let body = || b"email=k1%40example.com".to_vec();
        let none = vendors::post(gw, LC, FORM, body(), &[]).await;
        assert_eq!(none.status, 401);
        assert_eq!(none.json()["outcome"], "error");
        let in_url = vendors::post(gw, &format!("{LC}?key={ACME_KEY}"), FORM, body(), &[]).await;
        assert_eq!(in_url.status, 401, "?key= is off unless the source allows it");
        use base64::Engine as _;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("vendor:{ACME_KEY}"))
        );
        let a = vendors::post(gw, LC, FORM, body(), &[("authorization", &basic)]).await;
        assert_eq!(a.status, 201, "{}", a.text);
    })
    .await;
    let allowed = vendors::builder(None).source(
        "acme",
        &vendors::acme_source("http://127.0.0.1:9/v25.0", "")
            .replace("price = 12.5", "price = 12.5\nkey_in_url = true\nanswer = \"leadgate\""),
    );
    each_engine(allowed, async |gw| {
        let a =
            vendors::post(gw, &format!("{LC}?key={ACME_KEY}"), FORM, b"email=k2%40example.com".to_vec(), &[])
                .await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(a.outcome(), "accepted", "answer = \"leadgate\" gives the /v1/leads shape");
    })
    .await;
}
