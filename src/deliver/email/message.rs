//! [`EmailPayload`] → MIME message.
//!
//! Layout:
//! - `adf_body`: one `text/plain` part holding the ADF document (dealer CRMs read the
//!   body; a multipart mail or an HTML part confuses many of them). The payload's text
//!   and HTML are not sent.
//! - otherwise the text, or `multipart/alternative` of text and HTML when there is HTML;
//!   with an ADF document, that inside `multipart/mixed` beside the `lead.xml` attachment.
//!
//! The `Message-ID` is `<{delivery_id}@leadgate>`, the same on every retry, so a buyer's
//! mail system can drop repeats.

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use crate::deliver::{DeliveryError, EmailPayload, ErrorKind};

/// File name of the ADF attachment.
pub const ADF_FILE_NAME: &str = "lead.xml";
/// Content type of the ADF attachment (and the name older clients read from it).
const ADF_CONTENT_TYPE: &str = "application/xml; charset=utf-8; name=\"lead.xml\"";
/// Domain part of every `Message-ID` we write.
pub const MESSAGE_ID_DOMAIN: &str = "leadgate";

/// `<{delivery_id}@leadgate>`. Characters a `Message-ID` cannot hold (anything but
/// letters, digits and RFC 5322 `atext`/`.`) become `-`, so the id stays stable.
pub fn message_id(delivery_id: &str) -> String {
    let local: String = delivery_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c) { c } else { '-' })
        .collect();
    let local = local.trim_matches('.');
    let local = if local.is_empty() { "-" } else { local };
    format!("<{local}@{MESSAGE_ID_DOMAIN}>")
}

/// Builds the message. Refuses (permanently: resending would send the same bytes)
/// unparsable addresses, naming them, no recipient, and `adf_body` without a document.
pub fn build(payload: &EmailPayload, delivery_id: &str) -> Result<Message, DeliveryError> {
    let mut builder = Message::builder()
        .from(mailbox("from", &payload.from)?)
        .subject(payload.subject.as_str())
        .message_id(Some(message_id(delivery_id)))
        .date_now();
    if payload.to.iter().all(|to| to.trim().is_empty()) {
        return Err(DeliveryError::new(ErrorKind::Permanent, "the e-mail has no recipient (to is empty)"));
    }
    for to in payload.to.iter().filter(|a| !a.trim().is_empty()) {
        builder = builder.to(mailbox("to", to)?);
    }
    for cc in payload.cc.iter().filter(|a| !a.trim().is_empty()) {
        builder = builder.cc(mailbox("cc", cc)?);
    }

    let built = if payload.adf_body {
        let Some(adf) = &payload.adf else {
            return Err(DeliveryError::new(
                ErrorKind::Permanent,
                "adf_body is set but the payload has no ADF document",
            ));
        };
        builder.singlepart(SinglePart::plain(adf.clone()))
    } else {
        let main = match &payload.html {
            Some(html) => Body::Multi(MultiPart::alternative_plain_html(payload.text.clone(), html.clone())),
            None => Body::Single(SinglePart::plain(payload.text.clone())),
        };
        match &payload.adf {
            Some(adf) => {
                let content_type = ContentType::parse(ADF_CONTENT_TYPE).map_err(|e| {
                    DeliveryError::new(ErrorKind::Permanent, format!("bad attachment content type: {e}"))
                })?;
                let attachment = Attachment::new(ADF_FILE_NAME.to_owned()).body(adf.clone(), content_type);
                let mixed = match main {
                    Body::Multi(alternative) => MultiPart::mixed().multipart(alternative),
                    Body::Single(text) => MultiPart::mixed().singlepart(text),
                };
                builder.multipart(mixed.singlepart(attachment))
            }
            None => match main {
                Body::Multi(alternative) => builder.multipart(alternative),
                Body::Single(text) => builder.singlepart(text),
            },
        }
    };
    built.map_err(|e| DeliveryError::new(ErrorKind::Permanent, format!("cannot build the e-mail: {e}")))
}

enum Body {
    Single(SinglePart),
    Multi(MultiPart),
}

/// `a@b.example` or `Name <a@b.example>`; the error names the field and the address.
fn mailbox(field: &str, address: &str) -> Result<Mailbox, DeliveryError> {
    address.trim().parse::<Mailbox>().map_err(|e| {
        DeliveryError::new(ErrorKind::Permanent, format!("invalid {field} address {address:?}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> EmailPayload {
        EmailPayload {
            from: "Leadgate <leads@gateway.example>".into(),
            to: vec!["sales@dealer.example".into(), "Desk <desk@dealer.example>".into()],
            cc: vec!["boss@dealer.example".into()],
            subject: "New lead: Dana Whitfield".into(),
            text: "Dana Whitfield wants an Outback.".into(),
            html: Some("<p>Dana Whitfield wants an <b>Outback</b>.</p>".into()),
            adf: Some("<?xml version=\"1.0\"?>\n<adf></adf>\n".into()),
            adf_body: false,
        }
    }

    fn formatted(p: &EmailPayload) -> String {
        String::from_utf8(build(p, "0190c0de-1").unwrap().formatted()).unwrap()
    }

    #[test]
    fn the_message_id_is_the_delivery_id_and_stays_the_same() {
        let a = formatted(&payload());
        let b = formatted(&payload());
        assert!(a.contains("Message-ID: <0190c0de-1@leadgate>\r\n"), "{a}");
        assert!(b.contains("Message-ID: <0190c0de-1@leadgate>\r\n"));
        assert_eq!(message_id("a b<c>@d"), "<a-b-c--d@leadgate>");
        assert_eq!(message_id(""), "<-@leadgate>");
    }

    #[test]
    fn text_html_and_adf_make_mixed_of_alternative_and_attachment() {
        let m = formatted(&payload());
        for needle in [
            "Subject: New lead: Dana Whitfield",
            "Cc: boss@dealer.example",
            "Content-Type: multipart/mixed",
            "Content-Type: multipart/alternative",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Type: text/html; charset=utf-8",
            "Content-Type: application/xml; charset=utf-8; name=\"lead.xml\"",
            "Content-Disposition: attachment; filename=\"lead.xml\"",
            "Date: ",
        ] {
            assert!(m.contains(needle), "{needle:?} missing from\n{m}");
        }
        let envelope = build(&payload(), "x").unwrap();
        let rcpt: Vec<String> = envelope.envelope().to().iter().map(|a| a.to_string()).collect();
        assert_eq!(rcpt, ["sales@dealer.example", "desk@dealer.example", "boss@dealer.example"]);
    }

    #[test]
    fn without_html_or_adf_the_mail_is_one_text_part() {
        let p = EmailPayload { html: None, adf: None, cc: vec![], ..payload() };
        let m = formatted(&p);
        assert!(!m.contains("multipart"), "{m}");
        assert!(m.contains("Content-Type: text/plain; charset=utf-8"));
        let p = EmailPayload { html: None, ..payload() };
        let m = formatted(&p);
        assert!(m.contains("multipart/mixed") && !m.contains("multipart/alternative"), "{m}");
    }

    #[test]
    fn adf_body_sends_the_document_as_the_only_text_part() {
        let p = EmailPayload { adf_body: true, ..payload() };
        let m = formatted(&p);
        assert!(!m.contains("multipart") && !m.contains("text/html"), "{m}");
        assert!(m.contains("<adf></adf>"), "{m}");
        assert!(!m.contains("wants an"), "{m}");
        let err = build(&EmailPayload { adf: None, ..p }, "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Permanent);
    }

    #[test]
    fn a_bad_address_is_permanent_and_named() {
        for (field, p) in [
            ("from", EmailPayload { from: "not an address".into(), ..payload() }),
            ("to", EmailPayload { to: vec!["ok@example.com".into(), "nope@".into()], ..payload() }),
            ("cc", EmailPayload { cc: vec!["@cc.example".into()], ..payload() }),
        ] {
            let err = build(&p, "x").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Permanent);
            assert!(err.message.contains(&format!("invalid {field} address")), "{}", err.message);
        }
        let err = build(&EmailPayload { to: vec![], ..payload() }, "x").unwrap_err();
        assert!(err.message.contains("no recipient"), "{}", err.message);
    }
}
