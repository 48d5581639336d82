//! Generic XML → records, for untrusted vendor input.
//!
//! What it does:
//! - A leaf element (text, no child elements) becomes `(element name, trimmed text)`;
//!   CDATA, the five predefined entities and numeric character references are decoded,
//!   line ends normalised to LF; an empty leaf gives `""`. A container's own
//!   non-blank text (mixed content) is kept under its name too.
//! - Every attribute becomes `("element@attribute", value)`. Namespace prefixes are
//!   stripped from element and attribute names; `xmlns` declarations are ignored.
//! - [`ParseContext::xml_paths`] renames fields by element path, written from the record
//!   element (`contact/first_name`, or `lead/contact/first_name`) or from the document
//!   root; attributes as `contact/phone@type`. A mapping beats the leaf-name default.
//! - Records: see `records::assemble` (configured record element, guessed repeated
//!   children of the root, or the root as the single record).
//!
//! What it refuses, always with a line and column (1-based, in characters, of the
//! BOM-less decoded text):
//! - any DOCTYPE (this kills entity expansion — billion laughs — and external entities),
//!   undefined entities (`&foo;`), malformed character references;
//! - ill-formed markup: mismatched, unmatched or unclosed tags, a second root, text or
//!   CDATA outside the root, bad names and attributes;
//! - nesting deeper than `max_depth`, more than `max_attributes` on one element, more
//!   than `max_records` records;
//! - bodies that are not UTF-8 (or declared Latin-1/Windows-1252), UTF-16 included.
//!
//! Tolerated: a UTF-8 BOM, a lone `&` in text or attribute values (`AT&T`), typographic
//! quotes in the XML declaration, comments and processing instructions (ignored).
//!
//! One streaming pass with quick-xml over the input slice (`walk`); memory is the
//! open-element stack plus the collected values.

mod encoding;
mod records;
mod text;
mod walk;

#[cfg(test)]
mod tests;

use super::{ParseContext, ParseError, ParseOutput};

/// Parses an XML payload into records. Never panics; see the module docs for what is
/// accepted and refused.
pub fn parse(raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    let body = super::strip_bom(raw);
    let text = encoding::decode(body)?;
    let collected = walk::walk(&text, cx)?;
    records::assemble(collected, cx, text.as_bytes())
}

/// The character-level rules of this module, for the ADF parser (`parse::adf`), which
/// reads XML with the same safety rules (no DTD, no entity expansion, positions in
/// characters) but maps elements by their ADF meaning.
pub(crate) mod shared {
    use std::borrow::Cow;

    use crate::parse::ParseError;

    pub(crate) const DOCTYPE_REFUSED: &str = super::walk::DOCTYPE_REFUSED;

    /// Body bytes (BOM removed) → UTF-8 text; see `encoding::decode`.
    pub(crate) fn decode(body: &[u8]) -> Result<Cow<'_, str>, ParseError> {
        super::encoding::decode(body)
    }

    /// An error at byte `offset` of `text`, with a 1-based line and column.
    pub(crate) fn error_at(text: &[u8], offset: u64, message: impl Into<String>) -> ParseError {
        super::text::error_at(text, offset, message)
    }

    /// The text of a `&…;` reference: `Some(char)` for a predefined entity or character
    /// reference, `None` when it is no reference at all (`AT&T`), an error otherwise.
    pub(crate) fn reference(name: &str) -> Result<Option<char>, String> {
        match super::text::resolve_reference(name)? {
            super::text::Reference::Char(c) => Ok(Some(c)),
            super::text::Reference::Literal => Ok(None),
        }
    }

    /// An attribute value as written between the quotes, decoded and trimmed.
    pub(crate) fn attribute_value(raw: &str) -> Result<String, String> {
        super::text::attribute_value(raw)
    }

    /// `ns:lead` → `lead`.
    pub(crate) fn local_name(qname: &str) -> &str {
        super::text::local_name(qname)
    }
}
