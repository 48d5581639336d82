//! Lead e-mails: a whole RFC 5322 message → records.
//!
//! 1. MIME ([`mime`]): every text and HTML part (HTML converted with its tables and
//!    links), attachments, decoded headers; limits on size, part count, depth and
//!    attachment size.
//! 2. A vendor template ([`crate::parse::template`]): the one pinned for the source (or
//!    `--template`), else the first whose `[match]` the message meets.
//! 3. Without a template: an ADF document as the body or an XML attachment is parsed as
//!    ADF; otherwise generic extraction ([`generic`]) reads the message the way a person
//!    does: labels, table cells, links, prose, the subject and headers, each field with its
//!    origin and a confidence ([`provenance`]). A lead whose contact fields are all guesses
//!    is marked for review ([`crate::parse::REVIEW`]).
//!
//! A message that cannot be read as one is refused with the reason; one no template fits
//! is refused with a message starting [`NEEDS_TEMPLATE`], which the IMAP channel turns
//! into the `needs_template` status, so an operator writes a template and replays.

pub mod corpus;
pub mod generic;
pub mod html;
pub mod labels;
pub mod mime;
pub mod provenance;
pub mod shapes;
pub mod suggest;
pub mod vocab;

use std::sync::Arc;

use super::template::{Template, Templates};
use super::{Format, ParseContext, ParseError, ParseOutput};
pub use mime::{Mail, MimeLimits};
pub use provenance::{Confidence, Extracted, Extraction, Layout, Origin};

/// How a refusal that an operator fixes with a template begins.
pub const NEEDS_TEMPLATE: &str = "needs a template: ";

/// A parse error that says the message needs a (better) template.
pub fn needs_template(message: impl AsRef<str>) -> ParseError {
    ParseError::new(format!("{NEEDS_TEMPLATE}{}", message.as_ref()))
}

/// Whether a parse error message is one of those.
pub fn is_needs_template(message: &str) -> bool {
    message.starts_with(NEEDS_TEMPLATE)
}

/// Per-source e-mail settings.
#[derive(Debug, Clone, Default)]
pub struct EmailContext {
    /// The templates in matching order.
    pub templates: Arc<Templates>,
    /// Always use this template (the source's `email.template`, or `--template`).
    pub template: Option<String>,
    pub limits: MimeLimits,
}

/// Parses one message (see the module docs).
pub fn parse(raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    let mail = mime::read(raw, &cx.email.limits)?;
    match choose(&mail, &cx.email)? {
        Some(t) => t.extract(&mail, cx),
        None => without_template(&mail, cx),
    }
}

/// The template that applies to `mail`: the pinned one (an error if it is not loaded),
/// else the first that matches.
pub fn choose<'a>(mail: &Mail, email: &'a EmailContext) -> Result<Option<&'a Arc<Template>>, ParseError> {
    match &email.template {
        Some(name) => email
            .templates
            .get(name)
            .map(Some)
            .ok_or_else(|| ParseError::new(format!("the template {name:?} is not loaded"))),
        None => Ok(email.templates.find(mail)),
    }
}

/// What [`parse`] would take from `raw`, field by field, with where each value came from
/// and how sure the extractor is (`leadgate parse --explain`). A template's fields are
/// all [`Origin::Template`], high confidence; ADF is a format, read as such.
pub fn explain(raw: &[u8], cx: &ParseContext) -> Result<Vec<Extraction>, ParseError> {
    let mail = mime::read(raw, &cx.email.limits)?;
    let from_records = |out: ParseOutput, template: Option<String>, evidence: &str| {
        out.records
            .into_iter()
            .map(|record| Extraction {
                fields: record
                    .into_iter()
                    .map(|(name, v)| Extracted {
                        name,
                        value: v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                        origin: Origin::Template,
                        confidence: Confidence::High,
                        evidence: evidence.to_owned(),
                        label: None,
                        layout: None,
                    })
                    .collect(),
                review: None,
                template: template.clone(),
            })
            .collect::<Vec<_>>()
    };
    if let Some(t) = choose(&mail, &cx.email)? {
        let out = t.extract(&mail, cx)?;
        return Ok(from_records(out, Some(t.name.clone()), &format!("template {}", t.name)));
    }
    if let Some(adf) = adf(&mail, cx) {
        return Ok(from_records(adf?, None, "ADF document"));
    }
    generic::explain(&mail).map(|e| vec![e]).map_err(|e| needs_template(e.message))
}

/// The name of the template live mail would be parsed with, if any (`None`: generic).
pub fn template_name(raw: &[u8], email: &EmailContext) -> Option<String> {
    let mail = mime::read(raw, &email.limits).ok()?;
    choose(&mail, email).ok().flatten().map(|t| t.name.clone())
}

fn without_template(mail: &Mail, cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    if let Some(adf) = adf(mail, cx) {
        return adf;
    }
    let record = generic::extract(mail).map_err(|e| needs_template(e.message))?;
    Ok(ParseOutput { records: vec![record], batch: false })
}

/// An ADF document as an XML attachment or as the body, parsed; `None` if there is none.
fn adf(mail: &Mail, cx: &ParseContext) -> Option<Result<ParseOutput, ParseError>> {
    // ADF is a format, not a layout: recognised wherever it is.
    for a in &mail.attachments {
        let xmlish = a.content_type.contains("xml")
            || a.filename.as_deref().is_some_and(|f| f.to_ascii_lowercase().ends_with(".xml"));
        if xmlish && looks_like_adf(&a.body) {
            let name = a.filename.as_deref().unwrap_or(&a.content_type);
            return Some(
                super::adf::parse(&a.body, cx).map_err(|e| ParseError {
                    message: format!("ADF attachment {name}: {}", e.message),
                    ..e
                }),
            );
        }
    }
    for text in &mail.texts {
        if looks_like_adf(text.as_bytes()) {
            return Some(
                super::parse(Format::Adf, text.trim().as_bytes(), cx)
                    .map_err(|e| ParseError { message: format!("ADF body: {}", e.message), ..e }),
            );
        }
    }
    None
}

/// An `<adf>` root near the start of the text.
fn looks_like_adf(body: &[u8]) -> bool {
    let head = body.get(..body.len().min(2048)).unwrap_or(body);
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let trimmed = head.trim_start_matches('\u{feff}').trim_start();
    trimmed.starts_with('<') && (head.contains("<adf>") || head.contains("<adf "))
}

#[cfg(test)]
mod tests;
