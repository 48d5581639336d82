//! Payload templates (minijinja), compiled at config load, rendered at routing time.
//!
//! A template's name decides its escaping: `*.json` templates write every `{{ value }}`
//! as a JSON value (quoted and escaped), `*.xml` and `*.html` templates XML-escape, others
//! (form bodies, subjects, text) are verbatim (use `| urlencode` in form bodies).

use minijinja::{AutoEscape, Environment, Value};
use serde::Serialize;

use crate::lead::Lead;

/// Every buyer template of a config snapshot.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| match name.rsplit('.').next() {
            Some("json") => AutoEscape::Json,
            Some("xml" | "html") => AutoEscape::Html,
            _ => AutoEscape::None,
        });
        Templates { env }
    }
}

impl Templates {
    /// Compiles `source` under `name`; the error names the line.
    pub fn add(&mut self, name: &str, source: &str) -> Result<(), String> {
        self.env.add_template_owned(name.to_string(), source.to_string()).map_err(describe)
    }

    pub fn render(&self, name: &str, cx: &RenderContext<'_>) -> Result<String, String> {
        let t = self.env.get_template(name).map_err(describe)?;
        t.render(Value::from(minijinja::value::Serde(cx))).map_err(describe)
    }
}

fn describe(e: minijinja::Error) -> String {
    match e.line() {
        Some(l) => format!("line {l}: {e}"),
        None => e.to_string(),
    }
}

/// What templates can use: `lead` (canonical fields), `lead_id`, `source`, `score`,
/// `grade`, `buyer`, `price`, `received_at`.
#[derive(Debug, Serialize)]
pub struct RenderContext<'a> {
    pub lead: &'a Lead,
    pub lead_id: &'a str,
    pub source: &'a str,
    pub score: i64,
    pub grade: Option<&'a str>,
    pub buyer: &'a str,
    pub price: Option<&'a str>,
    pub received_at: String,
}

/// The default JSON body: the canonical lead with its id and routing facts. Serialized in
/// one pass (no JSON tree first: this runs for every routed lead).
pub fn default_json(cx: &RenderContext<'_>) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        lead_id: &'a str,
        source: &'a str,
        received_at: &'a str,
        score: i64,
        grade: Option<&'a str>,
        price: Option<&'a str>,
        fields: &'a Lead,
    }
    let body = Body {
        lead_id: cx.lead_id,
        source: cx.source,
        received_at: &cx.received_at,
        score: cx.score,
        grade: cx.grade,
        price: cx.price,
        fields: cx.lead,
    };
    // A lead (strings, booleans, a JSON map) always serializes.
    serde_json::to_string(&body).unwrap_or_default()
}

/// The default form body: canonical fields as name=value pairs (custom as `custom.x`).
pub fn default_form(cx: &RenderContext<'_>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    out.append_pair("lead_id", cx.lead_id);
    out.append_pair("source", cx.source);
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(cx.lead) {
        for (k, v) in fields {
            match v {
                serde_json::Value::Object(inner) => {
                    for (ik, iv) in inner {
                        out.append_pair(&format!("{k}.{ik}"), &plain(&iv));
                    }
                }
                other => {
                    out.append_pair(&k, &plain(&other));
                }
            }
        }
    }
    out.finish()
}

/// The default XML body: `<lead>` with one element per canonical field.
pub fn default_xml(cx: &RenderContext<'_>) -> String {
    use quick_xml::escape::escape;
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<lead>");
    x.push_str(&format!("<lead_id>{}</lead_id><source>{}</source>", escape(cx.lead_id), escape(cx.source)));
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(cx.lead) {
        for (k, v) in fields {
            match v {
                serde_json::Value::Object(inner) => {
                    x.push_str(&format!("<{k}>"));
                    for (ik, iv) in inner {
                        let tag = xml_name(&ik);
                        x.push_str(&format!("<{tag}>{}</{tag}>", escape(plain(&iv).as_str())));
                    }
                    x.push_str(&format!("</{k}>"));
                }
                other => x.push_str(&format!("<{k}>{}</{k}>", escape(plain(&other).as_str()))),
            }
        }
    }
    x.push_str("</lead>\n");
    x
}

/// Custom field names may not be valid element names: keep letters, digits, `_-.`.
fn xml_name(name: &str) -> String {
    let mut s: String =
        name.chars().map(|c| if c.is_alphanumeric() || "_-.".contains(c) { c } else { '_' }).collect();
    if !s.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        s.insert(0, '_');
    }
    s
}

fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(lead: &Lead) -> RenderContext<'_> {
        RenderContext {
            lead,
            lead_id: "L1",
            source: "s",
            score: 10,
            grade: Some("B"),
            buyer: "b",
            price: Some("12.50"),
            received_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn json_templates_escape_values_as_json() {
        let mut t = Templates::default();
        t.add("b.json", r#"{"name": {{ lead.first_name }}, "id": {{ lead_id }}}"#).unwrap();
        let lead = Lead { first_name: Some("A \"quoted\" name".into()), ..Lead::default() };
        let out = t.render("b.json", &cx(&lead)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["name"], "A \"quoted\" name");
        assert_eq!(v["id"], "L1");
    }

    #[test]
    fn xml_templates_escape_and_defaults_render() {
        let mut t = Templates::default();
        t.add("b.xml", "<n>{{ lead.first_name }}</n>").unwrap();
        let lead = Lead { first_name: Some("<b>&".into()), ..Lead::default() };
        assert_eq!(t.render("b.xml", &cx(&lead)).unwrap(), "<n>&lt;b&gt;&amp;</n>");
        assert!(default_xml(&cx(&lead)).contains("<first_name>&lt;b&gt;&amp;</first_name>"));
        assert!(default_form(&cx(&lead)).contains("first_name=%3Cb%3E%26"));
        let json: serde_json::Value = serde_json::from_str(&default_json(&cx(&lead))).unwrap();
        assert_eq!(json["fields"]["first_name"], "<b>&");
    }

    /// Buyers parse this body: the one-pass rendering must stay what the JSON tree gave.
    #[test]
    fn the_default_json_body_is_the_lead_under_fields_after_the_routing_facts() {
        let mut lead = Lead {
            first_name: Some("Ann \"Q\"".into()),
            email: Some("a@example.com".into()),
            consent: Some(crate::lead::Consent { given: Some(true), ..Default::default() }),
            test: true,
            ..Lead::default()
        };
        lead.custom.insert("budget".into(), serde_json::json!(5000));
        lead.custom.insert("tags".into(), serde_json::json!(["a", {"b": null}]));
        let c = cx(&lead);
        let mut tree = serde_json::json!({
            "lead_id": c.lead_id, "source": c.source, "received_at": c.received_at,
            "score": c.score, "grade": c.grade, "price": c.price,
        });
        tree["fields"] = serde_json::to_value(&lead).unwrap();
        assert_eq!(default_json(&c), tree.to_string());
        let none = RenderContext { grade: None, price: None, ..cx(&lead) };
        assert!(
            default_json(&none).contains(r#""grade":null,"price":null,"fields":{"#),
            "{}",
            default_json(&none)
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let mut t = Templates::default();
        assert!(t.add("x.txt", "line\n{{ oops").unwrap_err().contains("line 2"));
    }
}
