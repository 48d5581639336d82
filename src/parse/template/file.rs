//! The on-disk shape of a template (strict serde) and its compilation.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;

use super::{AttachmentRule, FieldRule, Split, Take, Template, TemplateProblem, TemplateTest, Where};
use crate::parse::Format;

/// `parsers/<name>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateFile {
    /// Defaults to the file name without `.toml`.
    pub name: Option<String>,
    /// What the template is for (shown by `leadgate parsers test`).
    pub description: Option<String>,
    /// Which messages the template is for.
    #[serde(rename = "match")]
    pub matcher: MatchFile,
    /// Record field name → where its value is.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldFile>,
    /// Attachments handed to a format parser; each gives records.
    #[serde(default)]
    pub attachments: Vec<AttachmentFile>,
    /// Sample messages and the lead fields they must give.
    #[serde(default)]
    pub tests: Vec<TestFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchFile {
    /// From/Sender address globs (`*@vendor.example`); any may match.
    pub from: OneOrMany,
    /// To/Cc address globs; any may match.
    pub to: OneOrMany,
    /// Regex on the decoded subject.
    pub subject: Option<String>,
    /// Header name → regex on its decoded value.
    pub headers: BTreeMap<String, String>,
}

/// A string or a list of strings.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldFile {
    /// Label(s) of a `Label: value` line or of a table's label cell.
    pub label: OneOrMany,
    /// Regex: the `value` group (else group 1, else the match); other named groups are fields.
    pub regex: Option<String>,
    /// `body` (default: text parts, then HTML), `text`, `html`, `subject` or `header:<Name>`.
    #[serde(rename = "in")]
    pub source: Option<String>,
    /// The value goes on over the following non-blank lines that are not labelled lines.
    pub multiline: bool,
    /// `first` (default), `last` or `all` (joined with ", ").
    pub take: Option<String>,
    /// `city_state_zip`: "City, ST 12345" → `city`, `state`, `postal_code`.
    pub split: Option<String>,
    /// Regex with named groups applied to the value found; each group becomes a field.
    pub pattern: Option<String>,
    /// A constant value (a vendor that only sells one product).
    pub value: Option<String>,
    /// The message is refused (and kept for replay) when this field is not found: the
    /// vendor changed its layout.
    pub required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentFile {
    /// File name glob (`*.xml`).
    pub filename: Option<String>,
    /// Content type glob (`application/*xml`).
    pub content_type: Option<String>,
    /// The format parser: `adf`, `xml`, `json`, `csv` (where built) …
    pub format: String,
    /// Refuse the message when no such attachment is there (default true).
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The sample `.eml`, relative to the template file.
    pub file: String,
    /// Normalized lead field (`email`, `custom.timeframe`) → expected value. The test
    /// fails on any other field too, so list every field the sample gives.
    pub expect: BTreeMap<String, toml::Value>,
}

/// Compiles `file`; every problem is named by its key.
pub(super) fn compile(
    stem: &str,
    file: TemplateFile,
    origin: &Path,
) -> Result<Template, Vec<TemplateProblem>> {
    let mut problems = Vec::new();
    let name = file.name.clone().unwrap_or_else(|| stem.to_owned());
    if !crate::config::valid_name(&name) {
        problems.push(TemplateProblem::field(
            "name",
            format!("invalid template name {name:?}: use lowercase letters, digits, '-' and '_'"),
        ));
    }
    let regex = |key: String, src: &str, problems: &mut Vec<TemplateProblem>| match Regex::new(src) {
        Ok(r) => Some(r),
        Err(e) => {
            // The regex crate's message spans lines (pattern, caret, reason): keep the reason.
            let text = e.to_string();
            let reason = text.lines().last().unwrap_or("").trim().trim_start_matches("error: ");
            problems.push(TemplateProblem::field(key, format!("invalid regex {src:?}: {reason}")));
            None
        }
    };
    let m = file.matcher;
    let (from, to) = (m.from.into_vec(), m.to.into_vec());
    let has_condition = !from.is_empty() || !to.is_empty() || m.subject.is_some() || !m.headers.is_empty();
    let subject = m.subject.as_deref().and_then(|s| regex("match.subject".into(), s, &mut problems));
    let mut headers = Vec::new();
    for (h, re) in &m.headers {
        if let Some(r) = regex(format!("match.headers.{h}"), re, &mut problems) {
            headers.push((h.clone(), r));
        }
    }
    if !has_condition {
        problems.push(TemplateProblem::field(
            "match",
            "a template must say which messages it is for (from, to, subject or headers)",
        ));
    }

    let mut fields = Vec::new();
    for (fname, f) in file.fields {
        let key = |k: &str| format!("fields.{fname}.{k}");
        if fname.trim().is_empty() {
            problems.push(TemplateProblem::field("fields", "a field name is empty"));
            continue;
        }
        let labels = f.label.into_vec();
        let re = f.regex.as_deref().and_then(|s| regex(key("regex"), s, &mut problems));
        if labels.is_empty() && re.is_none() && f.value.is_none() {
            problems.push(TemplateProblem::field(
                format!("fields.{fname}"),
                "say where the value is: label, regex or value",
            ));
        }
        let header = f.source.as_deref().and_then(|s| s.trim().strip_prefix("header:")).map(str::trim);
        let source = match f.source.as_deref().map(str::trim) {
            None | Some("body") => Where::Body,
            Some("text") => Where::Text,
            Some("html") => Where::Html,
            Some("subject") => Where::Subject,
            Some(_) if header.is_some_and(|h| !h.is_empty()) => {
                Where::Header(header.unwrap_or_default().to_owned())
            }
            Some(other) => {
                problems.push(TemplateProblem::field(
                    key("in"),
                    format!("{other:?} is not body, text, html, subject or header:<Name>"),
                ));
                Where::Body
            }
        };
        let take = match f.take.as_deref() {
            None | Some("first") => Take::First,
            Some("last") => Take::Last,
            Some("all") => Take::All,
            Some(other) => {
                problems.push(TemplateProblem::field(
                    key("take"),
                    format!("{other:?} is not first, last or all"),
                ));
                Take::First
            }
        };
        let split = match f.split.as_deref() {
            None => None,
            Some("city_state_zip") => Some(Split::CityStateZip),
            Some(other) => {
                problems
                    .push(TemplateProblem::field(key("split"), format!("{other:?} is not city_state_zip")));
                None
            }
        };
        let pattern = f.pattern.as_deref().and_then(|s| regex(key("pattern"), s, &mut problems));
        if let Some(p) = &pattern
            && p.capture_names().flatten().next().is_none()
        {
            problems
                .push(TemplateProblem::field(key("pattern"), "a pattern needs named groups (?P<field>…)"));
        }
        fields.push(FieldRule {
            name: fname,
            labels,
            regex: re,
            source,
            multiline: f.multiline,
            take,
            split,
            pattern,
            value: f.value,
            required: f.required,
        });
    }

    let mut attachments = Vec::new();
    for (i, a) in file.attachments.into_iter().enumerate() {
        match Format::from_name(a.format.trim()) {
            Some(Format::Email) | None => problems.push(TemplateProblem::field(
                format!("attachments[{i}].format"),
                format!(
                    "{:?} is not a format an attachment can be parsed with ({})",
                    a.format,
                    Format::ALL
                        .iter()
                        .filter(|f| **f != Format::Email)
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            Some(format) => attachments.push(AttachmentRule {
                filename: a.filename,
                content_type: a.content_type,
                format,
                required: a.required,
            }),
        }
    }

    let dir = origin.parent().unwrap_or(Path::new("."));
    let tests = file
        .tests
        .into_iter()
        .map(|t| TemplateTest {
            file: dir.join(&t.file),
            expect: t
                .expect
                .into_iter()
                .map(|(k, v)| {
                    let text = match v {
                        toml::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, text)
                })
                .collect(),
        })
        .collect();

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Template {
        name,
        description: file.description,
        origin: origin.to_path_buf(),
        from,
        to,
        subject,
        headers,
        fields,
        attachments,
        tests,
    })
}
