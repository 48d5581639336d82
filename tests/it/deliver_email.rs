//! E-mail buyers: a real SMTP server receives the lead, with an ADF attachment.

use serde_json::json;

use crate::support::smtp::{REJECTED, SmtpSink};
use crate::support::{GatewayBuilder, each_engine};

fn email_buyer(port: u16, to: &str) -> String {
    format!(
        "delivery = \"email\"\n[retry]\nschedule = [\"0s\", \"50ms\"]\n[email]\nfrom = \"leads@gateway.example\"\n\
         to = [\"{to}\"]\nsubject = \"New lead: {{{{ lead.first_name }}}} {{{{ lead.last_name }}}}\"\n\
         html = \"<p>{{{{ lead.first_name }}}} wants {{{{ lead.product }}}}</p>\"\nadf = \"attachment\"\n\
         smtp = {{ host = \"127.0.0.1\", port = {port}, security = \"none\", timeout = \"5s\" }}\n"
    )
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_SMTP (scripts/test-services installs aiosmtpd)"]
async fn an_email_buyer_gets_the_lead_with_an_adf_attachment() {
    let sink = SmtpSink::start();
    let builder = GatewayBuilder::new()
        .buyer("dealer", &email_buyer(sink.port, "sales@dealer.example"))
        .routes("[[route]]\nname = \"main\"\nbuyers = [\"dealer\"]\n");
    each_engine(builder, async |gw| {
        let n = sink.received().len();
        let id = gw
            .post_json(&json!({"first_name": "Dana", "last_name": "Whitfield", "email": "dana@example.com", "product": "2026 Subaru Outback"}))
            .await
            .lead_id();
        let l = gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        let delivery_id = l["deliveries"][0]["id"].as_str().unwrap().to_string();
        let mails = sink.received();
        let m = &mails[n]["message"];
        assert_eq!(m["subject"], "New lead: Dana Whitfield");
        assert_eq!(m["to"], "sales@dealer.example");
        assert_eq!(m["message_id"], format!("<{delivery_id}@leadgate>"));
        let parts = m["parts"].as_array().unwrap();
        let html = parts.iter().find(|p| p["content_type"] == "text/html").unwrap();
        assert!(html["content"].as_str().unwrap().contains("Dana wants 2026 Subaru Outback"));
        let adf = parts.iter().find(|p| p["filename"] == "lead.xml").unwrap();
        assert_eq!(adf["content_type"], "application/xml");
        let xml = adf["content"].as_str().unwrap();
        assert!(xml.contains("<email>dana@example.com</email>"), "{xml}");
        assert!(xml.contains(&format!("<id sequence=\"1\" source=\"leadgate\">{id}</id>")), "{xml}");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_SMTP (scripts/test-services installs aiosmtpd)"]
async fn a_permanent_smtp_refusal_rejects_the_delivery() {
    let sink = SmtpSink::start();
    let builder = GatewayBuilder::new()
        .buyer("gone", &email_buyer(sink.port, REJECTED))
        .routes("[[route]]\nname = \"main\"\nbuyers = [\"gone\"]\n");
    each_engine(builder, async |gw| {
        let id = gw.post_json(&json!({"email": "x@example.com"})).await.lead_id();
        let l = gw.wait_lead(&id, |l| l["deliveries"][0]["status"] == "rejected").await;
        assert!(l["deliveries"][0]["last_error"].as_str().unwrap().contains("550"), "{l:#}");
        assert_eq!(l["deliveries"][0]["attempts"], 1);
    })
    .await;
}
