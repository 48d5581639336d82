//! One streaming pass over the document: well-formedness, limits, and the raw
//! `(path, value)` items of every leaf and attribute, tagged with the unit (record
//! candidate) they belong to. Naming and record choice happen afterwards, in
//! [`super::records`].

use std::collections::HashMap;

use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::text::{
    Reference, attribute_value, error_at, first_non_space, is_xml_name, line_column, local_name,
    resolve_reference, trim_owned,
};
use crate::parse::{ParseContext, ParseError};

/// The message for any document type declaration, internal subset or not.
pub(super) const DOCTYPE_REFUSED: &str = "DOCTYPE/DTD is not allowed (entity expansion is disabled)";

/// A leaf value, a container's own text, or an attribute, before it gets its field name.
#[derive(Debug)]
pub(super) struct Item {
    /// The record candidate it belongs to; `None` for the root itself in guessing mode.
    pub unit: Option<usize>,
    /// Element path from the document root, prefixes stripped: `lead/contact/phone`, or
    /// `lead/contact/phone@type` for an attribute.
    pub path: String,
    pub value: String,
}

/// A record candidate: a configured record element, or (when guessing) a child of the root.
#[derive(Debug)]
pub(super) struct Unit {
    pub name: String,
    /// Byte offset of its start tag.
    pub start: u64,
    /// Depth of the element (root = 0): how many path segments come before its name.
    pub depth: usize,
    /// It contains at least one element.
    pub has_children: bool,
}

/// Everything the pass collected.
#[derive(Debug)]
pub(super) struct Collected {
    pub units: Vec<Unit>,
    pub items: Vec<Item>,
    /// Byte offset of the root start tag.
    pub root_start: u64,
}

/// An open element.
#[derive(Debug)]
struct Frame {
    /// Length of the path before this element's segment.
    path_len: usize,
    start: u64,
    /// Its direct text, references and CDATA, as decoded so far.
    text: String,
    has_children: bool,
    /// Attributes `(local name, value)` not yet emitted: a leaf emits them after its
    /// value, a container before its first child.
    attrs: Vec<(String, String)>,
    unit: Option<usize>,
    /// Whether its content belongs to a record (always, unless a record element is
    /// configured and this element is outside every record).
    collect: bool,
}

struct Walk<'a> {
    text: &'a [u8],
    cx: &'a ParseContext,
    /// The configured record element's local name.
    record: Option<&'a str>,
    path: String,
    stack: Vec<Frame>,
    units: Vec<Unit>,
    items: Vec<Item>,
    root_start: Option<u64>,
    /// Guessing mode: how many children of the root with element children bear each name.
    nested_by_name: HashMap<String, usize>,
}

/// Walks `text` once. Refuses DOCTYPE, undefined entities, ill-formed markup and input
/// beyond the limits in `cx`, each with a line and column.
pub(super) fn walk(text: &str, cx: &ParseContext) -> Result<Collected, ParseError> {
    let record = configured_record(cx);
    let mut walk = Walk {
        text: text.as_bytes(),
        cx,
        record,
        path: String::new(),
        stack: Vec::new(),
        units: Vec::new(),
        items: Vec::new(),
        root_start: None,
        nested_by_name: HashMap::new(),
    };
    let mut reader = Reader::from_reader(text.as_bytes());
    let config = reader.config_mut();
    // `AT&T` is common in vendor data and is no reference: keep a lone `&` as text.
    config.allow_dangling_amp = true;
    config.check_end_names = true;
    config.expand_empty_elements = false;
    loop {
        let pos = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => return Err(walk.reader_error(e, reader.error_position(), pos)),
        };
        match event {
            Event::Start(e) => walk.open(&e, pos)?,
            Event::Empty(e) => {
                walk.open(&e, pos)?;
                walk.close(pos)?;
            }
            Event::End(_) => walk.close(pos)?,
            Event::Text(t) => walk.text(&t, &t.xml10_content(), pos)?,
            Event::CData(c) => walk.cdata(&c.xml10_content(), pos)?,
            Event::GeneralRef(r) => walk.reference(&r, pos)?,
            Event::DocType(_) => return Err(walk.error(pos, DOCTYPE_REFUSED)),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    walk.finish(reader.buffer_position())
}

/// The configured record element's local name; blank counts as not configured.
pub(super) fn configured_record(cx: &ParseContext) -> Option<&str> {
    cx.xml_record.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(local_name)
}

impl Walk<'_> {
    fn error(&self, pos: u64, message: impl Into<String>) -> ParseError {
        error_at(self.text, pos, message)
    }

    fn open(&mut self, e: &BytesStart<'_>, pos: u64) -> Result<(), ParseError> {
        let qname = e.name();
        let raw: &str = qname.as_ref();
        let name = local_name(raw);
        if !is_xml_name(raw) || name.is_empty() {
            return Err(self.error(pos, format!("invalid element name <{raw}>")));
        }
        if self.stack.len() >= self.cx.max_depth {
            let max = self.cx.max_depth;
            return Err(self.error(pos, format!("elements are nested more than {max} levels deep")));
        }
        if self.stack.is_empty() {
            if self.root_start.is_some() {
                return Err(self
                    .error(pos, format!("a second root element <{raw}> (a document has exactly one root)")));
            }
            self.root_start = Some(pos);
        }
        self.first_child_of_parent()?;
        let (unit, collect) = self.place(name, pos)?;
        let attrs = self.attributes(e, raw, pos, collect)?;
        let path_len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('/');
        }
        self.path.push_str(name);
        self.stack.push(Frame {
            path_len,
            start: pos,
            text: String::new(),
            has_children: false,
            attrs,
            unit,
            collect,
        });
        Ok(())
    }

    /// The parent gets its first child element: it is a container, so its attributes go
    /// out now, ahead of its children. When guessing records, a child of the root that
    /// turns out to contain elements counts towards its name's records.
    fn first_child_of_parent(&mut self) -> Result<(), ParseError> {
        let depth = self.stack.len();
        let Some(parent) = self.stack.last_mut() else {
            return Ok(());
        };
        if parent.has_children {
            return Ok(());
        }
        parent.has_children = true;
        if first_non_space(&parent.text).is_none() {
            parent.text = String::new();
        }
        if parent.collect {
            for (attr, value) in std::mem::take(&mut parent.attrs) {
                let path = format!("{}@{attr}", self.path);
                self.items.push(Item { unit: parent.unit, path, value });
            }
        }
        if self.record.is_none()
            && depth == 2
            && let Some(unit) = parent.unit.and_then(|u| self.units.get_mut(u))
        {
            unit.has_children = true;
            let count = match self.nested_by_name.get_mut(&unit.name) {
                Some(count) => {
                    *count += 1;
                    *count
                }
                None => {
                    self.nested_by_name.insert(unit.name.clone(), 1);
                    1
                }
            };
            if count > self.cx.max_records {
                let (start, name) = (unit.start, unit.name.clone());
                return Err(self.too_many_records(start, &name));
            }
        }
        Ok(())
    }

    /// Which unit a new element belongs to and whether its content is kept.
    fn place(&mut self, name: &str, pos: u64) -> Result<(Option<usize>, bool), ParseError> {
        let depth = self.stack.len();
        let parent = self.stack.last().map(|p| (p.unit, p.collect));
        match (self.record, parent) {
            (Some(_), Some((unit, true))) => Ok((unit, true)),
            (Some(record), _) if name == record => {
                if self.units.len() >= self.cx.max_records {
                    return Err(self.too_many_records(pos, record));
                }
                Ok((Some(self.new_unit(name, pos, depth)), true))
            }
            (Some(_), _) => Ok((None, false)),
            (None, None) => Ok((None, true)),
            (None, Some(_)) if depth == 1 => Ok((Some(self.new_unit(name, pos, depth)), true)),
            (None, Some((unit, collect))) => Ok((unit, collect)),
        }
    }

    fn new_unit(&mut self, name: &str, start: u64, depth: usize) -> usize {
        self.units.push(Unit { name: name.to_owned(), start, depth, has_children: false });
        self.units.len() - 1
    }

    fn too_many_records(&self, pos: u64, name: &str) -> ParseError {
        let max = self.cx.max_records;
        self.error(pos, format!("more than {max} records (<{name}> elements) in one document"))
    }

    fn attributes(
        &self,
        e: &BytesStart<'_>,
        element: &str,
        pos: u64,
        collect: bool,
    ) -> Result<Vec<(String, String)>, ParseError> {
        let mut attrs = Vec::new();
        for (count, attr) in e.attributes().enumerate() {
            if count >= self.cx.max_attributes {
                let max = self.cx.max_attributes;
                return Err(self.error(pos, format!("element <{element}> has more than {max} attributes")));
            }
            let attr = attr.map_err(|a| self.attribute_error(a, e, element, pos))?;
            let key: &str = attr.key.as_ref();
            if key == "xmlns" || key.starts_with("xmlns:") {
                continue;
            }
            let name = local_name(key);
            if !is_xml_name(key) || name.is_empty() {
                return Err(self.error(pos, format!("invalid attribute name {key} on <{element}>")));
            }
            let value = attribute_value(&attr.value)
                .map_err(|m| self.error(pos, format!("attribute {key} of <{element}>: {m}")))?;
            if collect {
                attrs.push((name.to_owned(), value));
            }
        }
        Ok(attrs)
    }

    /// quick-xml reports attribute errors relative to the byte after `<`.
    fn attribute_error(&self, e: AttrError, tag: &BytesStart<'_>, element: &str, pos: u64) -> ParseError {
        let content: &str = tag;
        let (offset, problem) = match e {
            AttrError::ExpectedEq(at) => (at, "an attribute without `=` and a value".to_owned()),
            AttrError::ExpectedValue(at) => (at, "an attribute without a value".to_owned()),
            AttrError::UnquotedValue(at) => (at, "an attribute value without quotes".to_owned()),
            AttrError::ExpectedQuote(at, _) => {
                (at, "an attribute value without its closing quote".to_owned())
            }
            AttrError::Duplicated(at, _) => {
                let rest = content.get(at..).unwrap_or("");
                let end = rest.find(|c: char| c == '=' || c.is_ascii_whitespace()).unwrap_or(rest.len());
                (at, format!("attribute {} appears twice", rest.get(..end).unwrap_or("")))
            }
        };
        self.error(pos + 1 + offset as u64, format!("{problem} on <{element}>"))
    }

    fn close(&mut self, pos: u64) -> Result<(), ParseError> {
        let Some(frame) = self.stack.pop() else {
            return Err(self.error(pos, "a closing tag without an opening tag"));
        };
        if frame.collect {
            let text = trim_owned(frame.text);
            let unit = frame.unit;
            if !frame.has_children {
                self.items.push(Item { unit, path: self.path.clone(), value: text });
                for (attr, value) in frame.attrs {
                    let path = format!("{}@{attr}", self.path);
                    self.items.push(Item { unit, path, value });
                }
            } else if !text.is_empty() {
                // Mixed content: the container's own text is data too.
                self.items.push(Item { unit, path: self.path.clone(), value: text });
            }
        }
        self.path.truncate(frame.path_len);
        Ok(())
    }

    /// Text: `raw` as written (to place stray text outside the root), `decoded` with
    /// line ends normalised. White space between child elements is not kept.
    fn text(&mut self, raw: &str, decoded: &str, pos: u64) -> Result<(), ParseError> {
        match self.stack.last_mut() {
            Some(frame) => {
                if frame.collect && !(frame.has_children && first_non_space(decoded).is_none()) {
                    frame.text.push_str(decoded);
                }
                Ok(())
            }
            None => match first_non_space(raw) {
                None => Ok(()),
                Some(at) => Err(self.outside_root(pos + at as u64)),
            },
        }
    }

    fn cdata(&mut self, decoded: &str, pos: u64) -> Result<(), ParseError> {
        let Some(frame) = self.stack.last_mut() else {
            return Err(self.error(pos, "a CDATA section outside the root element"));
        };
        if frame.collect {
            frame.text.push_str(decoded);
        }
        Ok(())
    }

    fn outside_root(&self, pos: u64) -> ParseError {
        let where_ = if self.root_start.is_some() { "after" } else { "before" };
        self.error(pos, format!("text {where_} the root element"))
    }

    fn reference(&mut self, name: &str, pos: u64) -> Result<(), ParseError> {
        let resolved = resolve_reference(name).map_err(|m| self.error(pos, m))?;
        let Some(frame) = self.stack.last_mut() else {
            return Err(self.outside_root(pos));
        };
        if frame.collect {
            match resolved {
                Reference::Char(c) => frame.text.push(c),
                Reference::Literal => {
                    frame.text.push('&');
                    frame.text.push_str(name);
                    frame.text.push(';');
                }
            }
        }
        Ok(())
    }

    /// `at` is where quick-xml places the error, `markup` where the markup being read
    /// started.
    fn reader_error(&self, e: XmlError, at: u64, markup: u64) -> ParseError {
        let (at, message) = match e {
            XmlError::Syntax(SyntaxError::UnclosedDoctype)
            | XmlError::IllFormed(IllFormedError::MissingDoctypeName) => (markup, DOCTYPE_REFUSED.to_owned()),
            XmlError::Syntax(s) => (at, format!("malformed XML: {s}")),
            XmlError::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
                (at, format!("closing tag </{found}> does not match <{expected}>"))
            }
            XmlError::IllFormed(IllFormedError::UnmatchedEndTag(found)) => {
                (at, format!("closing tag </{found}> has no matching opening tag"))
            }
            XmlError::IllFormed(IllFormedError::UnclosedReference) => {
                (at, "an entity or character reference without its closing `;`".to_owned())
            }
            other => (at, format!("malformed XML: {other}")),
        };
        self.error(at, message)
    }

    fn finish(self, end: u64) -> Result<Collected, ParseError> {
        if let Some(frame) = self.stack.last() {
            let name = self.path.get(frame.path_len..).unwrap_or("").trim_start_matches('/');
            let (line, column) = line_column(self.text, frame.start);
            return Err(self.error(
                end,
                format!(
                    "the document ends before <{name}> (opened at line {line}, column {column}) \
                     is closed"
                ),
            ));
        }
        let Some(root_start) = self.root_start else {
            return Err(self.error(end, "the document contains no XML element"));
        };
        Ok(Collected { units: self.units, items: self.items, root_start })
    }
}
