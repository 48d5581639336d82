//! HTML → text, tables and links, for extraction.
//!
//! Lead e-mails are often HTML only, with the data in a table (label cell, value cell),
//! the phone only in a `tel:` link and the e-mail in a percent-encoded `mailto:`. This is
//! a small tolerant tokenizer, not a browser: it never fails, skips `<head>`, `<script>`,
//! `<style>` and comments, breaks lines at block elements, renders a two-cell table row
//! as `label: value` (so text templates work on table layouts too), and records every
//! table cell and link with the line it sits on.

use std::fmt::Write as _;

/// What a link points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A `mailto:` address, percent-decoded, without its `?query`.
    Mailto(String),
    /// A `tel:` number, percent-decoded, visual separators kept.
    Tel(String),
    Other(String),
}

/// An `<a href>` with its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub target: Target,
    pub text: String,
    /// Index of the text line the link sits on.
    pub line: usize,
}

/// A table cell: its text and the links inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub links: Vec<Link>,
}

/// One converted HTML part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Html {
    /// The text, one line per block, white space collapsed.
    pub text: String,
    /// Every table's rows (nested tables are tables of their own).
    pub tables: Vec<Vec<Vec<Cell>>>,
    pub links: Vec<Link>,
}

impl Html {
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.lines()
    }
}

/// Elements whose start or end begins a new line.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "ul",
];

/// Elements whose content is not text.
const SKIPPED: &[&str] = &["head", "script", "style", "title", "noscript", "template"];

#[derive(Default)]
struct Converter {
    out: Html,
    /// The current line, before it is flushed into `out.text`.
    line: String,
    /// Lines flushed so far.
    line_count: usize,
    /// Open tables: rows, the open row, the open cell.
    tables: Vec<OpenTable>,
    /// Open `<a>`: its target and where its text started in `line`.
    link: Option<(Target, String)>,
}

#[derive(Default)]
struct OpenTable {
    rows: Vec<Vec<Cell>>,
    row: Option<Vec<Cell>>,
    cell: Option<Cell>,
}

/// Converts an HTML document or fragment. Total: any input gives some output.
pub fn convert(html: &str) -> Html {
    let mut c = Converter::default();
    let mut rest = html;
    while !rest.is_empty() {
        match rest.find('<') {
            None => {
                c.text(rest);
                break;
            }
            Some(at) => {
                let (before, from_lt) = rest.split_at(at);
                c.text(before);
                rest = c.markup(from_lt);
            }
        }
    }
    c.close_all();
    c.out
}

impl Converter {
    /// Handles the markup at the start of `s` (which starts with `<`); returns what follows.
    fn markup<'a>(&mut self, s: &'a str) -> &'a str {
        if let Some(after) = s.strip_prefix("<!--") {
            return after.find("-->").map_or("", |end| after.get(end + 3..).unwrap_or(""));
        }
        if s.starts_with("<!") || s.starts_with("<?") {
            return s.find('>').map_or("", |end| s.get(end + 1..).unwrap_or(""));
        }
        let closing = s.starts_with("</");
        let name_start = if closing { 2 } else { 1 };
        let body = s.get(name_start..).unwrap_or("");
        let name_len =
            body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == ':')).unwrap_or(body.len());
        if name_len == 0 {
            // `<` that starts no tag (`a < b`): it is text.
            self.text("<");
            return s.get(1..).unwrap_or("");
        }
        let name = body.get(..name_len).unwrap_or("").to_ascii_lowercase();
        let (attrs, rest) = split_tag(body.get(name_len..).unwrap_or(""));
        if !closing && SKIPPED.contains(&name.as_str()) {
            return skip_element(rest, &name);
        }
        if closing {
            self.end(&name);
        } else {
            self.start(&name, attrs);
            if attrs.trim_end().ends_with('/') {
                self.end(&name);
            }
        }
        rest
    }

    fn start(&mut self, name: &str, attrs: &str) {
        match name {
            "table" => {
                self.newline();
                self.tables.push(OpenTable::default());
            }
            "tr" => {
                self.newline();
                if let Some(t) = self.tables.last_mut() {
                    finish_row(t);
                    t.row = Some(Vec::new());
                }
            }
            "td" | "th" => {
                if let Some(t) = self.tables.last_mut() {
                    finish_cell(t);
                    if t.row.is_none() {
                        t.row = Some(Vec::new());
                    }
                    t.cell = Some(Cell::default());
                }
                if !self.line.trim().is_empty() {
                    self.line.push('\t');
                }
            }
            "a" => {
                self.finish_link();
                if let Some(href) = attribute(attrs, "href") {
                    self.link = Some((target(&href), String::new()));
                }
            }
            "img" => {
                if let Some(alt) = attribute(attrs, "alt") {
                    self.text(&alt);
                }
            }
            n if BLOCKS.contains(&n) => self.newline(),
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "table" => {
                self.newline();
                if let Some(mut t) = self.tables.pop() {
                    finish_row(&mut t);
                    if !t.rows.is_empty() {
                        self.out.tables.push(t.rows);
                    }
                }
            }
            "tr" => {
                self.newline();
                if let Some(t) = self.tables.last_mut() {
                    finish_row(t);
                }
            }
            "td" | "th" => {
                if let Some(t) = self.tables.last_mut() {
                    finish_cell(t);
                }
            }
            "a" => self.finish_link(),
            n if BLOCKS.contains(&n) => self.newline(),
            _ => {}
        }
    }

    fn finish_link(&mut self) {
        let Some((target, text)) = self.link.take() else { return };
        let link = Link { target, text: collapse(&text), line: self.line_count };
        if let Some(cell) = self.tables.last_mut().and_then(|t| t.cell.as_mut()) {
            cell.links.push(link.clone());
        }
        self.out.links.push(link);
    }

    /// Raw text between tags: entities decoded, white space collapsed.
    fn text(&mut self, raw: &str) {
        if raw.is_empty() {
            return;
        }
        let decoded = decode_entities(raw);
        let mut collapsed = String::with_capacity(decoded.len());
        let mut space = self.line.is_empty() || self.line.ends_with([' ', '\t']);
        for ch in decoded.chars() {
            if ch.is_whitespace() && ch != '\u{a0}' {
                if !space {
                    collapsed.push(' ');
                    space = true;
                }
            } else {
                collapsed.push(if ch == '\u{a0}' { ' ' } else { ch });
                space = false;
            }
        }
        self.line.push_str(&collapsed);
        if let Some((_, text)) = self.link.as_mut() {
            text.push_str(&collapsed);
        }
        if let Some(cell) = self.tables.last_mut().and_then(|t| t.cell.as_mut()) {
            cell.text.push_str(&collapsed);
        }
    }

    /// Ends the current line (if it has text) and starts a new one. A two-cell table row
    /// is written `label: value`.
    fn newline(&mut self) {
        let line = std::mem::take(&mut self.line);
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return;
        }
        let rendered = match trimmed.split_once('\t') {
            Some((label, value)) if !value.contains('\t') && !label.trim().is_empty() => {
                format!("{}: {}", label.trim().trim_end_matches(':').trim_end(), value.trim())
            }
            _ => trimmed.replace('\t', "  "),
        };
        let _infallible = writeln!(self.out.text, "{rendered}");
        self.line_count += 1;
    }

    fn close_all(&mut self) {
        self.finish_link();
        self.newline();
        while let Some(mut t) = self.tables.pop() {
            finish_row(&mut t);
            if !t.rows.is_empty() {
                self.out.tables.push(t.rows);
            }
        }
    }
}

fn finish_cell(t: &mut OpenTable) {
    if let Some(mut cell) = t.cell.take() {
        cell.text = collapse(&cell.text);
        t.row.get_or_insert_with(Vec::new).push(cell);
    }
}

fn finish_row(t: &mut OpenTable) {
    finish_cell(t);
    if let Some(row) = t.row.take()
        && !row.is_empty()
    {
        t.rows.push(row);
    }
}

/// The attribute text of a tag and what follows its `>`, honouring quoted values.
fn split_tag(s: &str) -> (&str, &str) {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return (s.get(..i).unwrap_or(""), s.get(i + 1..).unwrap_or("")),
            _ => {}
        }
    }
    (s, "")
}

/// Skips to after `</name>` (case-insensitive), or to the end.
fn skip_element<'a>(s: &'a str, name: &str) -> &'a str {
    let lower = s.to_ascii_lowercase();
    let close = format!("</{name}");
    match lower.find(&close) {
        Some(at) => {
            let after = s.get(at..).unwrap_or("");
            after.find('>').map_or("", |end| after.get(end + 1..).unwrap_or(""))
        }
        None => "",
    }
}

/// An attribute's value (quoted or not), entities decoded.
fn attribute(attrs: &str, name: &str) -> Option<String> {
    let lower = attrs.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower.get(from..).and_then(|l| l.find(name)) {
        let at = from + found;
        from = at + name.len();
        let before_ok = at == 0 || lower.as_bytes().get(at - 1).is_some_and(|b| b.is_ascii_whitespace());
        let rest = attrs.get(at + name.len()..)?.trim_start();
        let Some(value) = rest.strip_prefix('=') else { continue };
        if !before_ok {
            continue;
        }
        let value = value.trim_start();
        let raw = match value.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let inner = value.get(1..)?;
                inner.get(..inner.find(q).unwrap_or(inner.len()))?
            }
            _ => value.get(..value.find(|c: char| c.is_whitespace() || c == '>').unwrap_or(value.len()))?,
        };
        return Some(decode_entities(raw).trim().to_owned());
    }
    None
}

fn target(href: &str) -> Target {
    let lower = href.to_ascii_lowercase();
    if lower.starts_with("mailto:") {
        let addr = href.get(7..).unwrap_or("");
        let addr = addr.split('?').next().unwrap_or(addr);
        Target::Mailto(percent_decode(addr).trim().to_owned())
    } else if lower.starts_with("tel:") || lower.starts_with("callto:") {
        let number = href.split_once(':').map_or("", |(_, n)| n);
        Target::Tel(percent_decode(number).trim().to_owned())
    } else {
        Target::Other(href.to_owned())
    }
}

/// `%40` → `@`; malformed escapes stay as written; invalid UTF-8 is replaced.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1).and_then(hex), bytes.get(i + 2).and_then(hex))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Named entities vendors actually use, plus numeric references. Unknown ones stay as
/// written.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or(""));
        let after = rest.get(amp + 1..).unwrap_or("");
        let end = after.find(';').filter(|&e| e <= 12);
        let decoded = end.and_then(|e| after.get(..e)).and_then(entity);
        match (decoded, end) {
            (Some(c), Some(e)) => {
                out.push(c);
                rest = after.get(e + 1..).unwrap_or("");
            }
            _ => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "middot" => '·',
        "bull" => '•',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "sect" => '§',
        "deg" => '°',
        "times" => '×',
        "eacute" => 'é',
        "egrave" => 'è',
        "aacute" => 'á',
        "iacute" => 'í',
        "oacute" => 'ó',
        "uacute" => 'ú',
        "ntilde" => 'ñ',
        "uuml" => 'ü',
        "ouml" => 'ö',
        "auml" => 'ä',
        "ccedil" => 'ç',
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tables_links_and_entities() {
        let h = convert(
            "<html><head><style>td{}</style></head><body><h2>New</h2><table>\
             <tr><td><b>Email</b></td><td><a href=\"mailto:grace.kim%40example.com?subject=x\">write</a></td></tr>\
             <tr><td>Phone:</td><td><a href='tel:%2B17185550126'>(718) 555&#8209;0126</a></td></tr></table>\
             <p>Agent &middot; a@b.example</p><!-- <td>hidden</td> --></body></html>",
        );
        assert_eq!(h.text, "New\nEmail: write\nPhone: (718) 555\u{2011}0126\nAgent · a@b.example\n");
        assert_eq!(h.tables.len(), 1);
        assert_eq!(h.tables[0][0][1].links[0].target, Target::Mailto("grace.kim@example.com".into()));
        assert_eq!(h.tables[0][1][1].links[0].target, Target::Tel("+17185550126".into()));
        assert_eq!(h.links.len(), 2);
        assert_eq!(h.links[1].line, 2);
    }

    #[test]
    fn broken_markup_never_fails() {
        for s in
            ["<", "<a href=", "<table><tr><td>x", "</td></tr>", "a < b > c", "<script>", "&#xFFFFFFFF;", "&"]
        {
            let _html = convert(s);
        }
        assert_eq!(convert("a < b").text, "a < b\n");
    }
}
