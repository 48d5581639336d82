//! Helpers for the vendor endpoint tests: a source with every vendor table, raw posts.

use serde_json::Value;

use super::gateway::{Answer, Gateway, GatewayBuilder};

/// The key of the `acme` source.
pub const ACME_KEY: &str = "acme-source-key";
/// Google Ads `google_key` of `acme` (the one in the shared sample).
pub const GOOGLE_KEY: &str = "example-shared-secret";
/// Meta app secret, verify token and page token of `acme`.
pub const META_SECRET: &str = "meta-app-secret";
pub const META_VERIFY: &str = "meta-verify-token";
pub const META_PAGE_TOKEN: &str = "page-token-1";
/// Salesforce organization id of `acme`.
pub const OID: &str = "00D5f000000ABCD";

/// The `acme` source: every vendor endpoint on; `extra` TOML appended; Meta pointed at
/// `graph_url` with a fast retry schedule.
pub fn acme_source(graph_url: &str, extra: &str) -> String {
    format!(
        "keys = [\"${{LG_TEST_UNSET_ACME:-{ACME_KEY}}}\"]\n\
         [validate]\nrequired = [\"email or phone\"]\n\
         [google_ads]\nkey = \"${{LG_TEST_UNSET_GOOGLE:-{GOOGLE_KEY}}}\"\n\
         [meta]\napp_secret = \"${{LG_TEST_UNSET_META_SECRET:-{META_SECRET}}}\"\n\
         verify_token = \"${{LG_TEST_UNSET_META_VERIFY:-{META_VERIFY}}}\"\n\
         page_token = \"${{LG_TEST_UNSET_META_TOKEN:-{META_PAGE_TOKEN}}}\"\n\
         graph_url = \"{graph_url}\"\nretry = [\"0s\", \"50ms\", \"100ms\", \"200ms\"]\ntimeout = \"2s\"\n\
         allow_private = [\"127.0.0.0/8\"]\n\
         [hubspot]\ndate_fields = [\"move_in_date\"]\n\
         [web_to_lead]\noid = \"{OID}\"\nreturn_url = \"https://www.example.com/default-thanks\"\n\
         [web_to_lead.fields]\n\"00N5f00000Fbudg\" = \"custom.budget\"\n\"00N5f00000Fserv\" = \"product\"\n\
         [leadconduit]\nprice = 12.5\n\
         {extra}\n"
    )
}

/// The default builder plus `acme` (Graph API at an unroutable port unless given).
pub fn builder(graph_url: Option<&str>) -> GatewayBuilder {
    GatewayBuilder::new().source("acme", &acme_source(graph_url.unwrap_or("http://127.0.0.1:9/v25.0"), ""))
}

/// POSTs `body` to `path` with `headers`, never following redirects.
pub async fn post(
    gw: &Gateway,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Answer {
    post_location(gw, path, content_type, body, headers).await.0
}

/// [`post`], with the `Location` of a redirect.
pub async fn post_location(
    gw: &Gateway,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (Answer, Option<String>) {
    let client =
        reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut req = client.post(gw.url(path)).body(body);
    if !content_type.is_empty() {
        req = req.header("content-type", content_type);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("request sent");
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    (Answer::from(r).await, location)
}

/// The stored submissions of a source, newest first.
pub async fn submissions(gw: &Gateway, source: &str) -> Vec<Value> {
    let a = gw.get_admin(&format!("/v1/admin/submissions?source={source}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()["submissions"].as_array().cloned().unwrap_or_default()
}

/// One stored submission with its raw body and lead ids.
pub async fn submission(gw: &Gateway, id: &str) -> Value {
    let a = gw.get_admin(&format!("/v1/admin/submissions/{id}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()
}
