//! ADF/XML 1.0 (Auto-lead Data Format) writer: the lead as dealer CRMs read it.
//!
//! [`render_adf`] writes one `<prospect>` from a canonical [`Lead`]. Guarantees:
//! - the output is a well-formed XML 1.0 document: every text and attribute value goes
//!   through [`quick_xml::escape::escape`], and characters XML 1.0 forbids (control
//!   characters other than tab and line ends, U+FFFE, U+FFFF) are dropped first;
//! - element order follows the ADF 1.0 DTD (`id*, requestdate, vehicle, customer,
//!   vendor, provider`); absent or blank lead fields write no element at all;
//! - the same inputs give the same bytes (rendered once at routing time, resent as is).
//!
//! What it does not do: ADF has no home for company, title, consent or the other
//! `custom` fields, so they are left out (the e-mail's text part carries them).
//! `<vehicle>` is written from `custom` keys that name a vehicle (see [`VEHICLE_KEYS`]),
//! else from `product` as the vehicle's comments, else not at all.

use std::borrow::Cow;

use quick_xml::escape::escape;
use serde_json::Value;

use crate::lead::Lead;

/// The `source` of the gateway's own `<id>`.
pub const ADF_ID_SOURCE: &str = "leadgate";

/// Vehicle elements in DTD order, with the `custom` keys (compared lower-cased, with
/// `.`, `_`, `-`, `/` and spaces removed) that fill them. The prefixed forms come first;
/// the bare names are what the generic XML parser makes of an incoming ADF `<vehicle>`.
pub const VEHICLE_KEYS: &[(&str, &[&str])] = &[
    ("year", &["vehicleyear", "year"]),
    ("make", &["vehiclemake", "make"]),
    ("model", &["vehiclemodel", "model"]),
    ("vin", &["vehiclevin", "vin"]),
    ("trim", &["vehicletrim", "trim"]),
];

/// Renders `lead` as an ADF 1.0 document.
///
/// - `lead_id`: the gateway's id, written as `<id sequence="1" source="leadgate">`;
///   the vendor's own id (`vendor_lead_id`) follows as `<id source="{provider_name}">`.
/// - `requestdate_rfc3339`: when the lead came in, written as given.
/// - `vendor_name`: the buyer (in ADF the *vendor* is the dealer receiving the lead);
///   `<vendor>` is written only when given.
/// - `provider_name`: who generated the lead (the lead source), always written.
pub fn render_adf(
    lead: &Lead,
    lead_id: &str,
    requestdate_rfc3339: &str,
    vendor_name: Option<&str>,
    provider_name: &str,
) -> String {
    let mut x = Writer::default();
    x.out.push_str("<?xml version=\"1.0\"?>\n<?adf version=\"1.0\"?>\n");
    x.open("adf", &[]);
    x.open("prospect", &[("status", "new")]);
    x.leaf("id", &[("sequence", "1"), ("source", ADF_ID_SOURCE)], lead_id);
    if let Some(vendor_id) = present(&lead.vendor_lead_id) {
        x.leaf("id", &[("source", provider_name)], vendor_id);
    }
    x.leaf("requestdate", &[], requestdate_rfc3339);
    vehicle(&mut x, lead);
    customer(&mut x, lead);
    if let Some(vendor) = vendor_name.filter(|v| !v.trim().is_empty()) {
        x.open("vendor", &[]);
        x.leaf("vendorname", &[], vendor);
        x.open("contact", &[]);
        x.leaf("name", &[("part", "full")], vendor);
        x.close("contact");
        x.close("vendor");
    }
    x.open("provider", &[]);
    x.leaf("name", &[("part", "full")], provider_name);
    x.close("provider");
    x.close("prospect");
    x.close("adf");
    x.out
}

fn vehicle(x: &mut Writer, lead: &Lead) {
    let details: Vec<(&str, String)> = VEHICLE_KEYS
        .iter()
        .filter_map(|(element, keys)| custom_value(lead, keys).map(|v| (*element, v)))
        .collect();
    let product = present(&lead.product);
    let names_a_vehicle = details.iter().any(|(e, _)| matches!(*e, "year" | "make" | "model"));
    if !names_a_vehicle && product.is_none() {
        return;
    }
    x.open("vehicle", &[("interest", "buy")]);
    if names_a_vehicle {
        for (element, value) in &details {
            x.leaf(element, &[], value);
        }
    }
    if let Some(product) = product {
        x.leaf("comments", &[], product);
    }
    x.close("vehicle");
}

fn customer(x: &mut Writer, lead: &Lead) {
    x.open("customer", &[]);
    x.open("contact", &[]);
    let first = present(&lead.first_name);
    let last = present(&lead.last_name);
    if let Some(first) = first {
        x.leaf("name", &[("part", "first")], first);
    }
    if let Some(last) = last {
        x.leaf("name", &[("part", "last")], last);
    }
    if first.is_none() && last.is_none() {
        // The DTD wants at least one name.
        x.leaf("name", &[("part", "full")], "");
    }
    if let Some(email) = present(&lead.email) {
        x.leaf("email", &[], email);
    }
    if let Some(phone) = phone(&lead.phone, &lead.phone_ext) {
        x.leaf("phone", &[("type", "voice")], &phone);
    }
    if let Some(phone) = phone(&lead.phone_2, &lead.phone_2_ext) {
        x.leaf("phone", &[("type", "cellphone")], &phone);
    }
    let address = [
        ("street", Some("1"), &lead.street),
        ("street", Some("2"), &lead.street_2),
        ("city", None, &lead.city),
        ("regioncode", None, &lead.state),
        ("postalcode", None, &lead.postal_code),
        ("country", None, &lead.country),
    ];
    if address.iter().any(|(_, _, v)| present(v).is_some()) {
        x.open("address", &[]);
        for (element, line, value) in address {
            if let Some(value) = present(value) {
                match line {
                    Some(line) => x.leaf(element, &[("line", line)], value),
                    None => x.leaf(element, &[], value),
                }
            }
        }
        x.close("address");
    }
    x.close("contact");
    if let Some(comments) = present(&lead.comments) {
        x.leaf("comments", &[], comments);
    }
    x.close("customer");
}

/// `+14155550123 x12`: ADF has no extension element.
fn phone(number: &Option<String>, ext: &Option<String>) -> Option<String> {
    let number = present(number)?;
    Some(match present(ext) {
        Some(ext) => format!("{number} x{ext}"),
        None => number.to_owned(),
    })
}

/// The trimmed value, or `None` when absent or blank.
fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The first non-blank `custom` value whose folded key is one of `keys` (in order).
fn custom_value(lead: &Lead, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|wanted| {
        lead.custom.iter().filter(|(k, _)| fold_key(k) == *wanted).find_map(|(_, v)| scalar(v))
    })
}

fn fold_key(key: &str) -> String {
    key.chars().filter(|c| !matches!(c, '.' | '_' | '-' | '/' | ' ')).flat_map(char::to_lowercase).collect()
}

fn scalar(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => return None,
    };
    (!s.is_empty()).then_some(s)
}

/// XML 1.0 `Char`: tab, line ends, and everything from space up but U+FFFE/U+FFFF.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Drops what XML 1.0 cannot carry, then escapes `<>&'"`.
fn xml_text(s: &str) -> Cow<'_, str> {
    if s.chars().all(is_xml_char) {
        escape(s)
    } else {
        let clean: String = s.chars().filter(|c| is_xml_char(*c)).collect();
        Cow::Owned(escape(clean.as_str()).into_owned())
    }
}

/// An indenting writer. Element and attribute names are our own constants; only
/// values come from the lead, and those are always escaped.
#[derive(Default)]
struct Writer {
    out: String,
    depth: usize,
}

impl Writer {
    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
        self.out.push('<');
        self.out.push_str(name);
        for (attr, value) in attrs {
            self.out.push(' ');
            self.out.push_str(attr);
            self.out.push_str("=\"");
            self.out.push_str(&xml_text(value));
            self.out.push('"');
        }
        self.out.push('>');
    }

    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start_tag(name, attrs);
        self.out.push('\n');
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.start_tag(name, attrs);
        self.out.push_str(&xml_text(text.trim()));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }
}

/// Test support: reads an ADF document back with quick-xml.
#[cfg(test)]
pub(crate) mod read {
    use quick_xml::events::Event;
    use quick_xml::{Reader, XmlVersion};

    /// One element with its path from the root (`adf/prospect/id`), attributes and
    /// its own text (entities and character references decoded).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Element {
        pub path: String,
        pub attrs: Vec<(String, String)>,
        pub text: String,
    }

    impl Element {
        pub fn attr(&self, name: &str) -> Option<&str> {
            self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
        }
    }

    /// Every element in document order; an error for anything not well-formed.
    pub fn elements(xml: &str) -> Result<Vec<Element>, String> {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().check_end_names = true;
        let mut out: Vec<Element> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        let mut roots = 0;
        loop {
            match reader.read_event().map_err(|e| format!("{e} at {}", reader.error_position()))? {
                Event::Start(e) => {
                    let name = AsRef::<str>::as_ref(&e.name()).to_owned();
                    let path = match open.last() {
                        Some(&parent) => format!("{}/{name}", out[parent].path),
                        None => {
                            roots += 1;
                            name
                        }
                    };
                    let mut attrs = Vec::new();
                    for a in e.attributes() {
                        let a = a.map_err(|e| e.to_string())?;
                        let key: &str = a.key.as_ref();
                        let value = a.normalized_value(XmlVersion::Explicit1_0).map_err(|e| e.to_string())?;
                        attrs.push((key.to_owned(), value.into_owned()));
                    }
                    out.push(Element { path, attrs, text: String::new() });
                    open.push(out.len() - 1);
                }
                Event::Empty(_) => return Err("unexpected empty element".into()),
                Event::End(_) => {
                    open.pop().ok_or("unbalanced end tag")?;
                }
                Event::Text(t) => {
                    let text = t.xml10_content();
                    match open.last() {
                        Some(&i) => out[i].text.push_str(&text),
                        None if text.trim().is_empty() => {}
                        None => return Err(format!("text outside the root: {text:?}")),
                    }
                }
                Event::GeneralRef(r) => {
                    let c = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => c,
                        None => match AsRef::<str>::as_ref(&r) {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            other => return Err(format!("undefined entity &{other};")),
                        },
                    };
                    let &i = open.last().ok_or("reference outside the root")?;
                    out[i].text.push(c);
                }
                Event::CData(_) | Event::DocType(_) => return Err("unexpected CDATA or DOCTYPE".into()),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        if !open.is_empty() || roots != 1 {
            return Err("unclosed elements or not exactly one root".into());
        }
        for e in &mut out {
            e.text = e.text.trim().to_owned();
        }
        Ok(out)
    }

    /// The text of the first element at `path`.
    pub fn text<'a>(elements: &'a [Element], path: &str) -> Option<&'a str> {
        elements.iter().find(|e| e.path == path).map(|e| e.text.as_str())
    }

    /// The text of the first element at `path` with attribute `attr` = `value`.
    pub fn text_with<'a>(elements: &'a [Element], path: &str, attr: &str, value: &str) -> Option<&'a str> {
        elements.iter().find(|e| e.path == path && e.attr(attr) == Some(value)).map(|e| e.text.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::read::{elements, text, text_with};
    use super::*;
    use serde_json::json;

    /// The lead the sample `adf_lead.xml` describes, as the pipeline would hold it.
    fn sample_lead() -> Lead {
        let mut lead = Lead {
            first_name: Some("Dana".into()),
            last_name: Some("Whitfield".into()),
            email: Some("dana.whitfield@example.com".into()),
            phone: Some("+16145550134".into()),
            phone_2: Some("+16145550188".into()),
            street: Some("77 Elm Street".into()),
            city: Some("Columbus".into()),
            state: Some("OH".into()),
            postal_code: Some("43215".into()),
            country: Some("US".into()),
            comments: Some("Is the Outback available in blue? Trade-in has minor hail damage.".into()),
            vendor_lead_id: Some("EA-2026-114".into()),
            product: Some("New car quote".into()),
            ..Lead::default()
        };
        lead.custom.insert("vehicle.year".into(), json!(2026));
        lead.custom.insert("vehicle_make".into(), json!("Subaru"));
        lead.custom.insert("Vehicle Model".into(), json!("Outback"));
        lead
    }

    fn render(lead: &Lead) -> String {
        render_adf(
            lead,
            "0190c0de-0000-7000-8000-000000000001",
            "2026-10-05T14:22:09-05:00",
            Some("Example Subaru of Columbus"),
            "ExampleAutoSite",
        )
    }

    #[test]
    fn a_lead_like_the_adf_sample_round_trips_its_fields() {
        let xml = render(&sample_lead());
        assert!(xml.starts_with("<?xml version=\"1.0\"?>\n<?adf version=\"1.0\"?>\n<adf>"), "{xml}");
        let el = elements(&xml).unwrap();
        let p = "adf/prospect";
        assert_eq!(el[1].attr("status"), Some("new"));
        assert_eq!(
            text_with(&el, &format!("{p}/id"), "source", "leadgate"),
            Some("0190c0de-0000-7000-8000-000000000001")
        );
        let ours = el.iter().find(|e| e.attr("source") == Some("leadgate")).unwrap();
        assert_eq!(ours.attr("sequence"), Some("1"));
        assert_eq!(text_with(&el, &format!("{p}/id"), "source", "ExampleAutoSite"), Some("EA-2026-114"));
        assert_eq!(text(&el, &format!("{p}/requestdate")), Some("2026-10-05T14:22:09-05:00"));
        let vehicle = el.iter().find(|e| e.path == format!("{p}/vehicle")).unwrap();
        assert_eq!(vehicle.attr("interest"), Some("buy"));
        assert_eq!(text(&el, &format!("{p}/vehicle/year")), Some("2026"));
        assert_eq!(text(&el, &format!("{p}/vehicle/make")), Some("Subaru"));
        assert_eq!(text(&el, &format!("{p}/vehicle/model")), Some("Outback"));
        assert_eq!(text(&el, &format!("{p}/vehicle/comments")), Some("New car quote"));
        let c = format!("{p}/customer/contact");
        assert_eq!(text_with(&el, &format!("{c}/name"), "part", "first"), Some("Dana"));
        assert_eq!(text_with(&el, &format!("{c}/name"), "part", "last"), Some("Whitfield"));
        assert_eq!(text(&el, &format!("{c}/email")), Some("dana.whitfield@example.com"));
        assert_eq!(text_with(&el, &format!("{c}/phone"), "type", "voice"), Some("+16145550134"));
        assert_eq!(text_with(&el, &format!("{c}/phone"), "type", "cellphone"), Some("+16145550188"));
        assert_eq!(text_with(&el, &format!("{c}/address/street"), "line", "1"), Some("77 Elm Street"));
        assert_eq!(text(&el, &format!("{c}/address/city")), Some("Columbus"));
        assert_eq!(text(&el, &format!("{c}/address/regioncode")), Some("OH"));
        assert_eq!(text(&el, &format!("{c}/address/postalcode")), Some("43215"));
        assert_eq!(text(&el, &format!("{c}/address/country")), Some("US"));
        assert_eq!(
            text(&el, &format!("{p}/customer/comments")),
            Some("Is the Outback available in blue? Trade-in has minor hail damage.")
        );
        assert_eq!(text(&el, &format!("{p}/vendor/vendorname")), Some("Example Subaru of Columbus"));
        assert_eq!(
            text_with(&el, &format!("{p}/vendor/contact/name"), "part", "full"),
            Some("Example Subaru of Columbus")
        );
        assert_eq!(text_with(&el, &format!("{p}/provider/name"), "part", "full"), Some("ExampleAutoSite"));
        // DTD order inside <prospect>.
        let order: Vec<&str> = el
            .iter()
            .filter_map(|e| e.path.strip_prefix("adf/prospect/"))
            .filter(|rest| !rest.contains('/'))
            .collect();
        assert_eq!(order, ["id", "id", "requestdate", "vehicle", "customer", "vendor", "provider"]);
    }

    #[test]
    fn every_text_and_attribute_is_escaped() {
        let nasty = "<b>Tom & \"Jerry\" O'Neil</b> ]]> &amp;";
        let lead = Lead {
            first_name: Some(nasty.into()),
            comments: Some(nasty.into()),
            vendor_lead_id: Some(nasty.into()),
            ..Lead::default()
        };
        let xml = render_adf(&lead, nasty, nasty, Some(nasty), nasty);
        for raw in ["<b>", "& ", "\"Jerry\"", "O'Neil", "]]>"] {
            assert!(!xml.contains(raw), "{raw:?} left unescaped in\n{xml}");
        }
        let el = elements(&xml).unwrap();
        assert_eq!(text_with(&el, "adf/prospect/customer/contact/name", "part", "first"), Some(nasty));
        assert_eq!(text(&el, "adf/prospect/customer/comments"), Some(nasty));
        assert_eq!(text_with(&el, "adf/prospect/id", "source", nasty), Some(nasty));
        assert_eq!(text_with(&el, "adf/prospect/id", "source", "leadgate"), Some(nasty));
        assert_eq!(text(&el, "adf/prospect/provider/name"), Some(nasty));
        assert_eq!(text(&el, "adf/prospect/vendor/vendorname"), Some(nasty));
    }

    #[test]
    fn characters_xml_cannot_carry_are_dropped_and_the_rest_kept() {
        let lead = Lead { comments: Some("bell\u{7} nul\u{0} ok é 🚗\u{FFFF}".into()), ..Lead::default() };
        let xml = render(&lead);
        let el = elements(&xml).unwrap();
        assert_eq!(text(&el, "adf/prospect/customer/comments"), Some("bell nul ok é 🚗"));
    }

    #[test]
    fn a_sparse_lead_writes_only_what_it_has() {
        let lead =
            Lead { email: Some("a@example.com".into()), product: Some("solar".into()), ..Lead::default() };
        let xml = render_adf(&lead, "L1", "2026-01-01T00:00:00Z", None, "web");
        let el = elements(&xml).unwrap();
        let paths: Vec<&str> = el.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "adf",
                "adf/prospect",
                "adf/prospect/id",
                "adf/prospect/requestdate",
                "adf/prospect/vehicle",
                "adf/prospect/vehicle/comments",
                "adf/prospect/customer",
                "adf/prospect/customer/contact",
                "adf/prospect/customer/contact/name",
                "adf/prospect/customer/contact/email",
                "adf/prospect/provider",
                "adf/prospect/provider/name",
            ]
        );
        assert_eq!(text(&el, "adf/prospect/vehicle/comments"), Some("solar"));
        assert_eq!(el[8].attr("part"), Some("full"));

        let bare = render_adf(&Lead::default(), "L2", "2026-01-01T00:00:00Z", Some("  "), "web");
        let el = elements(&bare).unwrap();
        assert!(!el.iter().any(|e| e.path.ends_with("/vehicle") || e.path.ends_with("/vendor")));
    }

    #[test]
    fn phone_extensions_and_second_street_line() {
        let lead = Lead {
            phone: Some("+14155550123".into()),
            phone_ext: Some("12".into()),
            street: Some("1 Main St".into()),
            street_2: Some("Suite 4".into()),
            ..Lead::default()
        };
        let el = elements(&render(&lead)).unwrap();
        let c = "adf/prospect/customer/contact";
        assert_eq!(text_with(&el, &format!("{c}/phone"), "type", "voice"), Some("+14155550123 x12"));
        assert_eq!(text_with(&el, &format!("{c}/address/street"), "line", "2"), Some("Suite 4"));
    }
}
