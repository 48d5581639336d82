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
