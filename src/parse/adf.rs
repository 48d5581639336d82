//! ADF/XML 1.0 (Auto-lead Data Format): the auto industry's lead document, sent as an
//! HTTP body or, far more often, as an e-mail body or attachment.
//!
//! One record per `<prospect>`; what each ADF element becomes:
//! - `<id>` → `vendor_lead_id` (the first one; its `source` attribute → `adf_id_source`,
//!   further ids → `adf_id`); `prospect@status` → `adf_status` (`resend` marks a resend
//!   of an earlier lead: its `vendor_lead_id` makes it answer like the first one);
//!   `<requestdate>` → `requestdate`.
//! - `<customer><contact>` (the `primarycontact="1"` one, else the first): names by
//!   `part` (`first`, `last`, `middle`, `full`), `<email>`, phones in document order →
//!   `phone`, `phone_2` (their `type` → `phone_type`, `phone_2_type`; a fax → `fax`; more
//!   → `phone_3`…), `<address>` street lines by their `line` attribute → `street`,
//!   `street_2`, `<apartment>`, `<city>`, `<regioncode>` → `state`, `<postalcode>`,
//!   `<country>`. `<timeframe>` → `timeframe` (its description, else its dates),
//!   `<comments>` → `comments`.
//! - `<vehicle>`: the one of interest `buy` (the default) or `lease` → `product` as
//!   "year make model trim", its VIN, stock number, status and price → `vin`, `stock`,
//!   `vehicle_status`, `vehicle_price`; a `trade-in` → `trade_in` (with `trade_in_vin`,
//!   `trade_in_odometer`); other interests → `vehicle_<interest>`.
//! - `<vendor>` (the dealer) and `<provider>` (the lead site) are metadata: only their
//!   names (`adf_vendor`, `adf_provider`, `adf_provider_service`) are kept, never their
//!   contacts, which are not the lead's.
//!
//! Safety is the generic XML parser's (`parse::xml`): no DOCTYPE, no entity expansion,
//! depth and size limits, line/column on every error. Real senders copy the spec's
//! examples, which are not well-formed; exactly these are tolerated:
//! - typographic quotes in the XML declaration (`<?xml version=“1.0”?>`);
//! - unquoted attribute values (`<prospect status=new>`);
//! - the `<?adf version="1.0"?>` processing instruction before or after the declaration.
//!
//! Anything else malformed is refused with its line and column.

use std::borrow::Cow;

use quick_xml::errors::{Error as XmlError, IllFormedError};
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde_json::Value;

use super::xml::shared;
use super::{ParseContext, ParseError, ParseOutput, Record};

#[cfg(test)]
mod tests;

/// Most elements in one document: an ADF lead has a few dozen.
const MAX_ELEMENTS: usize = 100_000;

/// An element of the document, as far as ADF needs it.
#[derive(Debug, Default)]
struct Node {
    /// Local name, lower-cased (ADF element names are lower case; senders vary).
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The trimmed text of a child, if present and not blank.
    fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim()).filter(|t| !t.is_empty())
    }

    fn value(&self) -> Option<&str> {
        Some(self.text.trim()).filter(|t| !t.is_empty())
    }
}

/// Parses an ADF document into one record per prospect.
pub fn parse(raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    let body = super::strip_bom(raw);
    let decoded = shared::decode(body)?;
    let text = tolerate_declaration(&decoded);
    let root = read_tree(&text, cx)?;
    if root.name != "adf" {
        return Err(ParseError::at(
            format!("the root element is <{}>, not <adf>: this is not an ADF document", root.name),
            1,
            1,
        ));
    }
    let prospects: Vec<&Node> = root.children("prospect").collect();
    if prospects.is_empty() {
        return Err(ParseError::new("the ADF document has no <prospect>"));
    }
    if prospects.len() > cx.max_records {
        return Err(ParseError::new(format!("more than {} prospects in one ADF document", cx.max_records)));
    }
    let batch = prospects.len() > 1;
    Ok(ParseOutput { records: prospects.into_iter().map(prospect).collect(), batch })
}

/// Typographic quotes in the XML declaration become ASCII quotes. Each replacement is
/// one character for one, so line/column positions stay those of the input.
fn tolerate_declaration(text: &str) -> Cow<'_, str> {
    let Some(start) = text.find("<?xml") else {
        return Cow::Borrowed(text);
    };
    let Some(len) = text.get(start..).and_then(|rest| rest.find("?>")) else {
        return Cow::Borrowed(text);
    };
    let end = start + len;
    let Some(decl) = text.get(start..end) else {
        return Cow::Borrowed(text);
    };
    const TYPOGRAPHIC: [char; 6] = ['“', '”', '„', '‘', '’', '‚'];
    if !decl.contains(TYPOGRAPHIC) {
        return Cow::Borrowed(text);
    }
    let fixed: String = decl
        .chars()
        .map(|c| match c {
            '“' | '”' | '„' => '"',
            '‘' | '’' | '‚' => '\'',
            c => c,
        })
        .collect();
    let mut out = String::with_capacity(text.len());
    out.push_str(text.get(..start).unwrap_or(""));
    out.push_str(&fixed);
    out.push_str(text.get(end..).unwrap_or(""));
    Cow::Owned(out)
}

/// Reads the whole document into a tree, refusing what the generic XML parser refuses.
fn read_tree(text: &str, cx: &ParseContext) -> Result<Node, ParseError> {
    let bytes = text.as_bytes();
    let err = |pos: u64, m: String| shared::error_at(bytes, pos, m);
    let mut reader = Reader::from_reader(bytes);
    let config = reader.config_mut();
    config.allow_dangling_amp = true;
    config.check_end_names = true;
    config.expand_empty_elements = false;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut elements = 0usize;
    loop {
        let pos = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return Err(reader_error(bytes, e, reader.error_position(), pos)),
        };
        match event {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let name = e.name().as_ref().to_owned();
                return Err(err(pos, format!("a second root element <{name}> after the <adf> document")));
            }
            Event::Start(e) => {
                elements += 1;
                if elements > MAX_ELEMENTS || stack.len() >= cx.max_depth {
                    return Err(err(
                        pos,
                        "the document is nested too deeply or has too many elements".into(),
                    ));
                }
                stack.push(element(&e, bytes, pos, cx)?);
            }
            Event::Empty(e) => {
                elements += 1;
                if elements > MAX_ELEMENTS || stack.len() >= cx.max_depth {
                    return Err(err(
                        pos,
                        "the document is nested too deeply or has too many elements".into(),
                    ));
                }
                let node = element(&e, bytes, pos, cx)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::End(_) => {
                let Some(node) = stack.pop() else {
                    return Err(err(pos, "a closing tag without an opening tag".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                let decoded = t.xml10_content();
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&decoded),
                    None => {
                        if let Some(at) = decoded.find(|c: char| !c.is_ascii_whitespace()) {
                            let where_ = if root.is_some() { "after" } else { "before" };
                            return Err(err(pos + at as u64, format!("text {where_} the root element")));
                        }
                    }
                }
            }
            Event::CData(c) => {
                let decoded = c.xml10_content();
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&decoded),
                    None => return Err(err(pos, "a CDATA section outside the root element".into())),
                }
            }
            Event::GeneralRef(r) => {
                let name: &str = &r;
                let name = name.to_owned();
                let resolved = shared::reference(&name).map_err(|m| err(pos, m))?;
                let Some(node) = stack.last_mut() else {
                    return Err(err(pos, "text outside the root element".into()));
                };
                match resolved {
                    Some(c) => node.text.push(c),
                    None => {
                        node.text.push('&');
                        node.text.push_str(&name);
                        node.text.push(';');
                    }
                }
            }
            Event::DocType(_) => return Err(err(pos, shared::DOCTYPE_REFUSED.into())),
            // The declaration's encoding was handled by `decode`; `<?adf …?>` and other
            // processing instructions carry nothing for us, wherever they stand.
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        let end = reader.buffer_position();
        return Err(err(end, format!("the document ends before <{}> is closed", open.name)));
    }
    root.ok_or_else(|| ParseError::at("the document contains no XML element", 1, 1))
}

/// A start tag → a node with its attributes. Unquoted attribute values are the one
/// attribute malformation tolerated; attributes without any value are refused.
fn element(e: &BytesStart<'_>, text: &[u8], pos: u64, cx: &ParseContext) -> Result<Node, ParseError> {
    let qname = e.name();
    let raw_name: String = qname.as_ref().to_owned();
    let name = shared::local_name(&raw_name).to_ascii_lowercase();
    let strict: Result<Vec<_>, AttrError> = e.attributes().collect();
    let attrs = match strict {
        Ok(attrs) => attrs,
        Err(AttrError::UnquotedValue(_)) => {
            let lenient: Result<Vec<_>, AttrError> = e.html_attributes().collect();
            let attrs = lenient.map_err(|a| attribute_error(text, pos, &raw_name, &a))?;
            let raw_attrs = e.attributes_raw();
            for a in &attrs {
                let key: String = a.key.as_ref().to_owned();
                if a.value.is_empty() && !raw_attrs.contains(&format!("{key}=")) {
                    return Err(shared::error_at(
                        text,
                        pos,
                        format!("an attribute without `=` and a value on <{raw_name}>"),
                    ));
                }
            }
            attrs
        }
        Err(a) => return Err(attribute_error(text, pos, &raw_name, &a)),
    };
    if attrs.len() > cx.max_attributes {
        return Err(shared::error_at(
            text,
            pos,
            format!("element <{raw_name}> has more than {} attributes", cx.max_attributes),
        ));
    }
    let mut out = Vec::with_capacity(attrs.len());
    for a in attrs {
        let key: String = a.key.as_ref().to_owned();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let raw_value: &str = &a.value;
        let value = shared::attribute_value(raw_value)
            .map_err(|m| shared::error_at(text, pos, format!("attribute {key} of <{raw_name}>: {m}")))?;
        out.push((shared::local_name(&key).to_ascii_lowercase(), value));
    }
    Ok(Node { name, attrs: out, text: String::new(), children: Vec::new() })
}

fn attribute_error(text: &[u8], pos: u64, element: &str, e: &AttrError) -> ParseError {
    let (offset, problem) = match e {
        AttrError::ExpectedEq(at) => (*at, "an attribute without `=` and a value"),
        AttrError::ExpectedValue(at) => (*at, "an attribute without a value"),
        AttrError::UnquotedValue(at) => (*at, "an attribute value without quotes"),
        AttrError::ExpectedQuote(at, _) => (*at, "an attribute value without its closing quote"),
        AttrError::Duplicated(at, _) => (*at, "an attribute given twice"),
    };
    shared::error_at(text, pos + 1 + offset as u64, format!("{problem} on <{element}>"))
}

fn reader_error(text: &[u8], e: XmlError, at: u64, markup: u64) -> ParseError {
    let (at, message) = match e {
        XmlError::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
            (markup, format!("closing tag </{found}> does not match the open <{expected}>"))
        }
        XmlError::IllFormed(IllFormedError::UnmatchedEndTag(found)) => {
            (markup, format!("closing tag </{found}> without an opening tag"))
        }
        XmlError::IllFormed(IllFormedError::MissingDoctypeName) => {
            (markup, shared::DOCTYPE_REFUSED.to_owned())
        }
        XmlError::Syntax(s) => (at, format!("malformed XML: {s}")),
        other => (at, format!("malformed XML: {other}")),
    };
    shared::error_at(text, at, message)
}

/// One prospect → one record (see the module docs for the mapping).
fn prospect(p: &Node) -> Record {
    let mut r = Record::new();
    let mut put = |name: &str, value: &str| r.push((name.to_owned(), Value::String(value.to_owned())));
    if let Some(status) = p.attr("status") {
        put("adf_status", status);
    }
    for (i, id) in p.children("id").enumerate() {
        let Some(value) = id.value() else { continue };
        if i == 0 {
            put("vendor_lead_id", value);
            if let Some(source) = id.attr("source") {
                put("adf_id_source", source);
            }
        } else {
            put("adf_id", value);
        }
    }
    if let Some(date) = p.child_text("requestdate") {
        put("requestdate", date);
    }
    let mut product_taken = false;
    for v in p.children("vehicle") {
        let interest = v.attr("interest").unwrap_or("buy").to_ascii_lowercase();
        let desc = vehicle_description(v);
        match interest.as_str() {
            "buy" | "lease" if !product_taken => {
                product_taken = true;
                if let Some(desc) = &desc {
                    put("product", desc);
                }
                if interest == "lease" {
                    put("vehicle_interest", "lease");
                }
                if let Some(status) = v.attr("status") {
                    put("vehicle_status", status);
                }
                for (element, name) in [("vin", "vin"), ("stock", "stock")] {
                    if let Some(value) = v.child_text(element) {
                        put(name, value);
                    }
                }
                if let Some(price) = v.child("price").and_then(|n| n.value().map(|t| (n, t))) {
                    let (node, amount) = price;
                    match node.attr("currency") {
                        Some(cur) => put("vehicle_price", &format!("{amount} {cur}")),
                        None => put("vehicle_price", amount),
                    }
                }
            }
            "trade-in" => {
                if let Some(desc) = &desc {
                    put("trade_in", desc);
                }
                if let Some(vin) = v.child_text("vin") {
                    put("trade_in_vin", vin);
                }
                if let Some(odo) = v.child("odometer").and_then(|n| n.value().map(|t| (n, t))) {
                    let (node, miles) = odo;
                    match node.attr("units") {
                        Some(units) => put("trade_in_odometer", &format!("{miles} {units}")),
                        None => put("trade_in_odometer", miles),
                    }
                }
            }
            other => {
                if let Some(desc) = &desc {
                    let slug: String =
                        other.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
                    put(&format!("vehicle_{slug}"), desc);
                }
            }
        }
    }
    if let Some(customer) = p.child("customer") {
        customer_fields(customer, &mut put);
    }
    if let Some(vendor) = p.child("vendor")
        && let Some(name) = vendor.child_text("vendorname")
    {
        put("adf_vendor", name);
    }
    if let Some(provider) = p.child("provider") {
        if let Some(name) = provider.child("name").and_then(Node::value) {
            put("adf_provider", name);
        }
        if let Some(service) = provider.child_text("service") {
            put("adf_provider_service", service);
        }
    }
    r
}

/// "2026 Subaru Outback Premium": the parts that are there, in that order.
fn vehicle_description(v: &Node) -> Option<String> {
    let parts: Vec<&str> = ["year", "make", "model", "trim"].iter().filter_map(|n| v.child_text(n)).collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn customer_fields(customer: &Node, put: &mut impl FnMut(&str, &str)) {
    let contact = customer
        .children("contact")
        .find(|c| c.attr("primarycontact") == Some("1"))
        .or_else(|| customer.child("contact"));
    if let Some(c) = contact {
        contact_fields(c, put);
    }
    if let Some(tf) = customer.child("timeframe") {
        match tf.child_text("description") {
            Some(d) => put("timeframe", d),
            None => {
                for (element, name) in
                    [("earliestdate", "timeframe_earliest"), ("latestdate", "timeframe_latest")]
                {
                    if let Some(v) = tf.child_text(element) {
                        put(name, v);
                    }
                }
            }
        }
    }
    if let Some(comments) = customer.child_text("comments") {
        put("comments", comments);
    }
}

fn contact_fields(c: &Node, put: &mut impl FnMut(&str, &str)) {
    let mut full = None;
    for name in c.children("name") {
        let Some(value) = name.value() else { continue };
        match name.attr("part").map(str::to_ascii_lowercase).as_deref() {
            Some("first") => put("first_name", value),
            Some("last") => put("last_name", value),
            Some("middle") => put("middle_name", value),
            Some("suffix") => put("name_suffix", value),
            _ => full = full.or(Some(value)),
        }
    }
    if let Some(full) = full {
        put("full_name", full);
    }
    for (i, email) in c.children("email").filter_map(Node::value).enumerate() {
        put(if i == 0 { "email" } else { "email_2" }, email);
    }
    let mut slot = 0;
    for phone in c.children("phone") {
        let Some(value) = phone.value() else { continue };
        let kind = phone.attr("type").map(str::to_ascii_lowercase);
        if kind.as_deref() == Some("fax") {
            put("fax", value);
            continue;
        }
        slot += 1;
        let name = match slot {
            1 => "phone".to_owned(),
            2 => "phone_2".to_owned(),
            n => format!("phone_{n}"),
        };
        put(&name, value);
        if let Some(kind) = kind {
            put(&format!("{name}_type"), &kind);
        }
    }
    if let Some(address) = c.child("address") {
        let mut lines: Vec<(u32, &str)> = address
            .children("street")
            .enumerate()
            .filter_map(|(i, s)| {
                let line = s.attr("line").and_then(|l| l.parse().ok()).unwrap_or(i as u32 + 1);
                s.value().map(|v| (line, v))
            })
            .collect();
        lines.sort_by_key(|(line, _)| *line);
        for (i, (_, street)) in lines.iter().enumerate() {
            let name = match i {
                0 => "street".to_owned(),
                1 => "street_2".to_owned(),
                n => format!("street_{}", n + 1),
            };
            put(&name, street);
        }
        if let Some(apartment) = address.child_text("apartment") {
            put(if lines.len() < 2 { "street_2" } else { "adf_apartment" }, apartment);
        }
        for (element, name) in
            [("city", "city"), ("regioncode", "state"), ("postalcode", "postal_code"), ("country", "country")]
        {
            if let Some(v) = address.child_text(element) {
                put(name, v);
            }
        }
    }
}
