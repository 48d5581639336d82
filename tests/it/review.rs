//! Template-free e-mail extraction through a real gateway: a vendor message whose contact
//! fields are only guessed from prose is stored but held in `needs_review` (not routed),
//! and the admin API lists it; a labelled one is routed as usual.

use serde_json::Value;

use crate::support::{GatewayBuilder, TestReceiver, each_engine, fixture};

const GUESSED: &str = "email/corpus/15-no-labels-name-in-first-sentence.eml";
const LABELLED: &str = "email/corpus/01-label-next-line-text.eml";

fn events(lead: &Value) -> Vec<String> {
    lead["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_lead_whose_contacts_are_only_guessed_is_held_for_review_and_listed() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .webhook_buyer("b", &r.url(), "")
        .routes("[[route]]\nname = \"main\"\nbuyers = [\"b\"]\n");
    each_engine(builder, async |gw| {
        let held = gw.post("message/rfc822", fixture(GUESSED)).await;
        // The vendor hears "accepted": holding it is the operator's business.
        assert_eq!(held.status, 201, "{}", held.text);
        assert_eq!(held.outcome(), "accepted", "{}", held.text);
        let held_id = held.lead_id();
        let routed_id = gw.post("message/rfc822", fixture(LABELLED)).await.lead_id();

        let lead = gw.lead(&held_id).await;
        assert_eq!(lead["stage"], "needs_review", "{lead:#}");
        assert!(events(&lead).contains(&"needs_review".to_owned()), "{lead:#}");
        assert!(lead["deliveries"].as_array().unwrap().is_empty(), "{lead:#}");
        // What was guessed is all there for the operator.
        assert_eq!(lead["fields"]["email"], "rhea.k@mailbox.example");
        assert_eq!(lead["fields"]["phone"], "+14155550166");
        assert!(lead["fields"]["custom"].get("!review").is_none(), "{lead:#}");

        let routed = gw.wait_lead(&routed_id, |l| l["stage"] == "delivered").await;
        assert!(!events(&routed).contains(&"needs_review".to_owned()), "{routed:#}");

        let list = gw.get_admin("/v1/admin/review").await;
        assert_eq!(list.status, 200, "{}", list.text);
        let leads = list.json()["leads"].as_array().cloned().unwrap();
        let ids: Vec<&str> = leads.iter().map(|l| l["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [held_id.as_str()], "{}", list.text);
        assert!(leads[0]["review_reason"].as_str().unwrap().contains("low confidence"), "{}", list.text);

        let by_stage = gw.get_admin("/v1/admin/leads?stage=needs_review&source=test").await;
        assert_eq!(by_stage.json()["leads"].as_array().unwrap().len(), 1, "{}", by_stage.text);
        assert_eq!(gw.get_admin("/v1/admin/leads").await.status, 400);
    })
    .await;
}

#[tokio::test]
async fn a_held_lead_released_by_the_operator_is_routed_once_with_its_id() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .webhook_buyer("b", &r.url(), "")
        .routes("[[route]]\nname = \"main\"\nbuyers = [\"b\"]\n");
    each_engine(builder, async |gw| {
        let before = r.count();
        let held_id = gw.post("message/rfc822", fixture(GUESSED)).await.lead_id();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(r.count(), before, "a held lead is not sold");
        // Replayed as it is (no template yet), it stays held.
        let submission = gw.lead(&held_id).await["submission_id"].as_str().unwrap().to_owned();
        let replayed = gw.post_admin(&format!("/v1/admin/submissions/{submission}/replay")).await;
        assert_eq!(replayed.lead_id(), held_id, "{}", replayed.text);
        assert_eq!(gw.lead(&held_id).await["stage"], "needs_review");

        let released = gw.post_admin(&format!("/v1/admin/review/{held_id}/release")).await;
        assert_eq!(released.status, 200, "{}", released.text);
        assert_eq!(released.json()["lead_id"], held_id.as_str(), "{}", released.text);
        let lead = gw.wait_lead(&held_id, |l| l["stage"] == "delivered").await;
        assert!(events(&lead).contains(&"released".to_owned()), "{lead:#}");
        assert_eq!(lead["deliveries"].as_array().unwrap().len(), 1, "{lead:#}");
        // The guessed contacts went out as they were.
        assert_eq!(lead["fields"]["email"], "rhea.k@mailbox.example");

        // Released once: again is a conflict naming why, and nothing more is sold.
        let again = gw.post_admin(&format!("/v1/admin/review/{held_id}/release")).await;
        assert_eq!(again.status, 409, "{}", again.text);
        assert!(again.text.contains("not held for review"), "{}", again.text);
        assert_eq!(gw.post_admin("/v1/admin/review/no-such-lead/release").await.status, 404);
        let list = gw.get_admin("/v1/admin/review").await;
        assert!(list.json()["leads"].as_array().unwrap().is_empty(), "{}", list.text);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(r.count(), before + 1, "delivered exactly once");
        assert_eq!(gw.lead(&held_id).await["deliveries"].as_array().unwrap().len(), 1);
    })
    .await;
}
