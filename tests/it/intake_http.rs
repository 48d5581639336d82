//! Vendor intake over HTTP: every content type, the vendor samples, and each 4xx path.

use serde_json::json;

use crate::support::gateway::{ADMIN_KEY, OTHER_KEY};
use crate::support::{GatewayBuilder, between, each_engine, sample};

#[tokio::test]
async fn the_json_sample_is_accepted_and_normalized() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let a = gw.post("application/json", sample("http/json_lead.json")).await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(a.outcome(), "accepted");
        assert_eq!(a.json()["reasons"], json!([]));
        let lead = gw.lead(&a.lead_id()).await;
        let f = &lead["fields"];
        assert_eq!(lead["status"], "accepted");
        assert_eq!(f["first_name"], "María José");
        assert_eq!(f["last_name"], "O'Neil-Ruiz");
        assert_eq!(f["email"], "mj.oneil@example.com");
        assert_eq!(f["phone"], "+14155550142");
        assert_eq!(f["phone_2"], "+14155550199");
        assert_eq!(f["phone_2_ext"], "7");
        assert_eq!(f["street"], "1200 Market St");
        assert_eq!(f["street_2"], "Suite 400");
        assert_eq!(f["city"], "San Francisco");
        assert_eq!(f["state"], "CA");
        assert_eq!(f["postal_code"], "94102-4801");
        assert_eq!(f["country"], "US");
        assert_eq!(f["product"], "solar");
        assert_eq!(f["vendor_lead_id"], "VND-000981");
        assert_eq!(f["ip_address"], "203.0.113.45");
        assert_eq!(f["consent"]["given"], true);
        assert_eq!(f["consent"]["trustedform_cert_url"], "https://cert.trustedform.com/0c1d2e3f4a5b6c7d8e9f");
        assert_eq!(f["custom"]["utm.source"], "google");
        assert_eq!(f["custom"]["utm.campaign"], "spring-solar");
        assert_eq!(f["custom"]["household_income"], 145000);
    })
    .await;
}

#[tokio::test]
async fn the_form_sample_is_accepted_with_dotted_names_kept() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let a = gw.post("application/x-www-form-urlencoded", sample("http/form_lead.txt")).await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert!(a.content_type.starts_with("application/json"));
        let f = gw.lead(&a.lead_id()).await["fields"].clone();
        assert_eq!(f["first_name"], "Lee");
        assert_eq!(f["last_name"], "Tanaka");
        assert_eq!(f["email"], "lee.tanaka@example.org");
        assert_eq!(f["phone"], "+15125550117");
        assert_eq!(f["postal_code"], "78701");
        assert_eq!(f["state"], "TX");
        assert_eq!(f["comments"], "Looking to refinance, rate < 6%");
        assert_eq!(f["vendor_lead_id"], "A-77");
        assert_eq!(f["custom"]["mortgage.loan.amount"], "350000");
        assert_eq!(f["custom"]["mortgage.property.type"], "condo");
    })
    .await;
}

#[tokio::test]
async fn the_xml_sample_is_accepted_and_answered_in_xml() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let a = gw.post("application/xml", sample("http/xml_lead.xml")).await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert!(a.content_type.starts_with("application/xml"), "{}", a.content_type);
        assert!(a.text.contains("<outcome>accepted</outcome>"), "{}", a.text);
        let id = between(&a.text, "<lead_id>", "</lead_id>");
        let f = gw.lead(id).await["fields"].clone();
        assert_eq!(f["first_name"], "Priya");
        assert_eq!(f["last_name"], "Raman");
        assert_eq!(f["email"], "priya.raman@example.net");
        assert_eq!(f["phone"], "+12065550173");
        assert_eq!(f["city"], "Seattle");
        assert_eq!(f["state"], "WA");
        assert_eq!(f["postal_code"], "98101");
        assert_eq!(f["product"], "home insurance");
        assert_eq!(f["vendor_lead_id"], "XML-5521");
        // text/xml is XML too.
        let b = gw.post("text/xml", "<lead><email>p2@example.net</email></lead>").await;
        assert_eq!(b.status, 201, "{}", b.text);
    })
    .await;
}

#[tokio::test]
async fn a_json_array_is_a_batch_with_one_result_per_lead() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let body = json!([
            {"email": "a1@example.com"},
            {"email": "not-an-email"},
            {"email": "A1@example.com"}
        ]);
        let a = gw.post_json(&body).await;
        assert_eq!(a.status, 200, "mixed outcomes answer 200: {}", a.text);
        let results = a.json()["results"].as_array().cloned().unwrap_or_default();
        let outcomes: Vec<_> = results.iter().map(|r| r["outcome"].as_str().unwrap_or_default()).collect();
        assert_eq!(outcomes, ["accepted", "rejected", "duplicate"]);
        assert_eq!(results[2]["duplicate_of"], results[0]["lead_id"]);
        assert_eq!(results[1]["reasons"][0]["field"], "email");

        let all_new = gw.post_json(&json!([{"email": "b1@example.com"}, {"email": "b2@example.com"}])).await;
        assert_eq!(all_new.status, 201, "{}", all_new.text);
    })
    .await;
}

#[tokio::test]
async fn a_rejected_lead_names_every_failing_field() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let a = gw.post_json(&json!({"first_name": "X", "email": "chloe@example", "zip": "8020"})).await;
        assert_eq!(a.status, 422, "{}", a.text);
        assert_eq!(a.outcome(), "rejected");
        let fields: Vec<String> = a.json()["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["field"].as_str().unwrap().to_string())
            .collect();
        assert!(fields.contains(&"email".to_string()), "{fields:?}");
        assert!(fields.contains(&"postal_code".to_string()), "{fields:?}");
        let lead = gw.lead(&a.lead_id()).await;
        assert_eq!(lead["status"], "rejected");

        let none = gw.post_json(&json!({"first_name": "Only"})).await;
        assert_eq!(none.status, 422);
        assert_eq!(none.json()["reasons"][0]["field"], "email|phone");
    })
    .await;
}

#[tokio::test]
async fn an_invalid_phone_is_kept_raw_with_a_warning() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let a = gw.post_json(&json!({"email": "w@example.com", "phone": "12"})).await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(a.json()["warnings"][0]["field"], "phone");
        assert_eq!(gw.lead(&a.lead_id()).await["fields"]["phone"], "12");
    })
    .await;
}

#[tokio::test]
async fn unparseable_bodies_get_400_with_the_position_and_are_kept() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let a = gw.post("application/json", "{\n  \"email\": \"x@example.com\",\n}").await;
        assert_eq!(a.status, 400, "{}", a.text);
        let e = &a.json()["error"];
        assert_eq!(e["code"], "unparseable");
        assert_eq!(e["line"], 3);
        assert_eq!(e["column"], 1);
        assert!(e["message"].as_str().unwrap().contains("trailing comma"));
        let id = a.json()["submission_id"].as_str().unwrap().to_string();
        let s = gw.get_admin(&format!("/v1/admin/submissions/{id}")).await.json();
        assert_eq!(s["status"], "failed");
        assert_eq!(s["body"], "{\n  \"email\": \"x@example.com\",\n}");

        let xml = gw.post("application/xml", "<lead><email>x@example.com</lead>").await;
        assert_eq!(xml.status, 400, "{}", xml.text);
        assert!(xml.text.contains("<line>1</line>"), "{}", xml.text);
    })
    .await;
}

#[tokio::test]
async fn a_body_that_does_not_match_its_content_type_is_refused_by_name() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let a = gw.post("application/xml", "first_name=Lee&email=lee%40example.org").await;
        assert_eq!(a.status, 400, "{}", a.text);
        assert!(a.text.contains("form name-value pairs but was sent as XML"), "{}", a.text);
        let b =
            gw.post("application/x-www-form-urlencoded", "<lead><email>a@example.com</email></lead>").await;
        assert_eq!(b.status, 400);
        assert!(b.json()["error"]["message"].as_str().unwrap().contains("looks like XML"), "{}", b.text);
        let c = gw.post("application/json", "email=a@example.com").await;
        assert_eq!(c.status, 400);
        let d = gw.post("application/x-www-form-urlencoded", "just some text").await;
        assert_eq!(d.status, 400, "{}", d.text);
    })
    .await;
}

#[tokio::test]
async fn unsupported_and_missing_content_types_get_415() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let a = gw.post("text/plain", "hello").await;
        assert_eq!(a.status, 415, "{}", a.text);
        assert!(a.json()["error"]["message"].as_str().unwrap().contains("text/plain"));
        let b = gw.post("", "{}").await;
        assert_eq!(b.status, 415, "{}", b.text);
    })
    .await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let builder = GatewayBuilder::new().main("[server]\nmax_body_bytes = 2048\n");
    each_engine(builder, async |gw| {
        let big = format!("{{\"email\": \"a@example.com\", \"pad\": \"{}\"}}", "x".repeat(4096));
        let a = gw.post("application/json", big.clone()).await;
        assert_eq!(a.status, 413, "{}", a.text);
        assert_eq!(a.json()["error"]["code"], "payload_too_large");
        // Without Content-Length (chunked), the read stops at the limit.
        let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(big.into_bytes())]);
        let b = gw.post("application/json", reqwest::Body::wrap_stream(stream)).await;
        assert_eq!(b.status, 413, "{}", b.text);
        // The gateway keeps serving.
        assert_eq!(gw.post_json(&json!({"email": "ok@example.com"})).await.status, 201);
    })
    .await;
}

#[tokio::test]
async fn keys_are_checked_on_every_intake() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let body = json!({"email": "k@example.com"}).to_string();
        let none = gw.post_with("application/json", body.clone(), &[]).await;
        assert_eq!(none.status, 401);
        assert!(none.text.contains("missing API key"));
        let wrong = gw.post_with("application/json", body.clone(), &[("x-api-key", "nope-nope-nope")]).await;
        assert_eq!(wrong.status, 401);
        assert!(wrong.text.contains("unknown API key"));
        let bearer = gw
            .post_with("application/json", body.clone(), &[("authorization", &format!("Bearer {OTHER_KEY}"))])
            .await;
        assert_eq!(bearer.status, 201, "{}", bearer.text);
        let admin = gw.post_with("application/json", body, &[("x-api-key", ADMIN_KEY)]).await;
        assert_eq!(admin.status, 403);
    })
    .await;
}
