//! Dedupe: normalized keys, the window, and exactness under concurrency.

use std::time::Duration;

use serde_json::json;

use crate::support::{GatewayBuilder, each_engine};

#[tokio::test]
async fn the_same_email_differently_cased_is_a_duplicate_of_the_original() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let first = gw.post_json(&json!({"email": "Dana@Example.com"})).await;
        assert_eq!(first.status, 201);
        let second = gw.post_json(&json!({"email": "  dana@EXAMPLE.COM "})).await;
        assert_eq!(second.status, 200, "{}", second.text);
        assert_eq!(second.outcome(), "duplicate");
        assert_eq!(second.json()["duplicate_of"], first.json()["lead_id"]);
        let lead = gw.lead(&second.lead_id()).await;
        assert_eq!(lead["status"], "duplicate");
        assert_eq!(lead["duplicate_of"], first.json()["lead_id"]);
    })
    .await;
}

#[tokio::test]
async fn the_same_phone_written_differently_is_a_duplicate() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let first = gw.post_json(&json!({"phone": "(303) 555-0161"})).await;
        assert_eq!(first.status, 201, "{}", first.text);
        let second = gw.post_json(&json!({"phone": "303.555.0161", "email": "other@example.com"})).await;
        assert_eq!(second.outcome(), "duplicate", "{}", second.text);
        let third = gw.post_json(&json!({"phone": "+1 303 555 0161"})).await;
        assert_eq!(third.outcome(), "duplicate");
    })
    .await;
}

#[tokio::test]
async fn a_lead_after_the_window_is_accepted_again() {
    let builder = GatewayBuilder::new().main("");
    each_engine(builder, async |gw| {
        assert_eq!(gw.post_json(&json!({"email": "w@example.com"})).await.status, 201);
        gw.advance(Duration::from_secs(29 * 86_400));
        assert_eq!(gw.post_json(&json!({"email": "w@example.com"})).await.outcome(), "duplicate");
        gw.advance(Duration::from_secs(2 * 86_400));
        let again = gw.post_json(&json!({"email": "w@example.com"})).await;
        assert_eq!(again.status, 201, "{}", again.text);
        // The new lead now owns the key: a repeat is its duplicate.
        let repeat = gw.post_json(&json!({"email": "w@example.com"})).await;
        assert_eq!(repeat.json()["duplicate_of"], again.json()["lead_id"]);
    })
    .await;
}

#[tokio::test]
async fn a_source_scoped_policy_only_compares_within_the_source() {
    let builder = GatewayBuilder::new().source(
        "other",
        "keys = [\"${LG_TEST_UNSET_OTHER:-other-source-key}\"]\n[dedupe]\nkeys = [[\"email\"]]\nwindow = \"1d\"\nscope = \"source\"\n",
    );
    each_engine(builder, async |gw| {
        use crate::support::gateway::OTHER_KEY;
        let body = json!({"email": "s@example.com"}).to_string();
        let a = gw.post_with("application/json", body.clone(), &[("x-api-key", OTHER_KEY)]).await;
        assert_eq!(a.status, 201);
        // The global policy of `test` does not see `other`'s source-scoped key.
        assert_eq!(gw.post_json(&json!({"email": "s@example.com"})).await.status, 201);
        let b = gw.post_with("application/json", body, &[("x-api-key", OTHER_KEY)]).await;
        assert_eq!(b.outcome(), "duplicate");
    })
    .await;
}

#[tokio::test]
async fn fifty_parallel_identical_posts_make_exactly_one_accepted_lead() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let body = json!({"first_name": "Con", "email": "concurrent@example.com", "phone": "(415) 555-0100"});
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let req = gw
                .http
                .post(gw.url("/v1/leads"))
                .header("x-api-key", crate::support::gateway::SOURCE_KEY)
                .json(&body);
            tasks.spawn(async move { req.send().await.map(|r| r.status().as_u16()) });
        }
        let mut statuses = Vec::new();
        while let Some(r) = tasks.join_next().await {
            statuses.push(r.expect("join").expect("response"));
        }
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 49, "{statuses:?}");
    })
    .await;
}
