//! MIME → [`Mail`]: the headers, every text and HTML part (HTML converted to text with its
//! tables and links), and the attachments, within limits.
//!
//! mail-parser does the decoding (multipart, quoted-printable, base64, charsets, RFC 2047
//! words in headers, nested `message/rfc822`); this module walks its parts and refuses
//! messages beyond [`MimeLimits`] by name.

use mail_parser::{Address, HeaderName, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use super::html::{self, Html};
use crate::parse::ParseError;

/// Bounds on one message. Defaults are generous for lead mail (a few KB of text and an
/// XML or CSV attachment) and keep a hostile message from costing much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MimeLimits {
    /// Largest message accepted (the IMAP channel checks RFC822.SIZE against it first).
    pub max_bytes: usize,
    /// Most MIME parts, nested messages included.
    pub max_parts: usize,
    /// Deepest nesting of multiparts and attached messages.
    pub max_depth: usize,
    /// Largest attachment kept (bigger ones are skipped, with their name in the error if
    /// a template needed them).
    pub max_attachment_bytes: usize,
}

impl Default for MimeLimits {
    fn default() -> Self {
        Self {
            max_bytes: 25 * 1024 * 1024,
            max_parts: 256,
            max_depth: 16,
            max_attachment_bytes: 10 * 1024 * 1024,
        }
    }
}

/// A mailbox in an address header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addr {
    pub name: Option<String>,
    /// Lower-cased.
    pub address: String,
}

impl Addr {
    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// An attachment (or a non-text inline part).
#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: Option<String>,
    /// `type/subtype`, lower-cased.
    pub content_type: String,
    pub body: Vec<u8>,
}

/// What extraction works on.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub from: Vec<Addr>,
    pub reply_to: Vec<Addr>,
    pub sender: Vec<Addr>,
    pub to: Vec<Addr>,
    pub cc: Vec<Addr>,
    /// Decoded (RFC 2047), single line.
    pub subject: String,
    pub message_id: Option<String>,
    /// Every header of the top-level message: (name as written, decoded value).
    pub headers: Vec<(String, String)>,
    /// Decoded `text/plain` parts, in message order, nested messages included.
    pub texts: Vec<String>,
    /// `text/html` parts converted to text, tables and links.
    pub htmls: Vec<Html>,
    pub attachments: Vec<Attachment>,
    /// Attachments over the size limit: (filename or content type, size).
    pub skipped: Vec<(String, usize)>,
}

impl Mail {
    /// Every address the sender side of the message uses (From, Reply-To, Sender, To,
    /// Cc): never the lead's, whatever the body says.
    pub fn envelope_addresses(&self) -> impl Iterator<Item = &Addr> {
        self.from.iter().chain(&self.reply_to).chain(&self.sender).chain(&self.to).chain(&self.cc)
    }

    /// A header's decoded value (first occurrence, name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads `raw` into a [`Mail`], or says why it is not a usable message.
pub fn read(raw: &[u8], limits: &MimeLimits) -> Result<Mail, ParseError> {
    if raw.len() > limits.max_bytes {
        return Err(ParseError::new(format!(
            "the message is {} bytes, over the limit of {} bytes",
            raw.len(),
            limits.max_bytes
        )));
    }
    if !starts_with_header(raw) {
        return Err(ParseError::at("not an e-mail message: it does not start with a header line", 1, 1));
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| ParseError::new("not an e-mail message: no header could be read"))?;
    let mut mail = Mail {
        from: addresses(message.from()),
        reply_to: addresses(message.reply_to()),
        sender: addresses(message.sender()),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        subject: message.subject().map(single_line).unwrap_or_default(),
        message_id: message.message_id().map(str::to_owned),
        headers: headers(&message),
        ..Mail::default()
    };
    let mut walk = Walk { limits, parts: 0, mail: &mut mail };
    walk.message(&message, 0)?;
    Ok(mail)
}

/// The first line is `Name: value` (or a `From ` mbox line some exports keep).
fn starts_with_header(raw: &[u8]) -> bool {
    let line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let line = raw.get(..line_end).unwrap_or(raw);
    if line.starts_with(b"From ") {
        return true;
    }
    match line.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => {
            line.get(..colon).is_some_and(|n| n.iter().all(|&b| b.is_ascii_graphic()))
        }
        _ => false,
    }
}

struct Walk<'a> {
    limits: &'a MimeLimits,
    parts: usize,
    mail: &'a mut Mail,
}

impl Walk<'_> {
    fn message(&mut self, message: &Message<'_>, depth: usize) -> Result<(), ParseError> {
        if depth > self.limits.max_depth {
            return Err(self.too_deep());
        }
        self.parts += message.parts.len();
        if self.parts > self.limits.max_parts {
            return Err(ParseError::new(format!(
                "the message has more than {} MIME parts",
                self.limits.max_parts
            )));
        }
        // Part 0 is the root; walk the tree from it so depth is known for every part.
        self.part(message, 0, depth, 0)
    }

    fn too_deep(&self) -> ParseError {
        ParseError::new(format!("MIME parts are nested more than {} levels deep", self.limits.max_depth))
    }

    fn part(&mut self, message: &Message<'_>, id: u32, depth: usize, hops: usize) -> Result<(), ParseError> {
        if depth > self.limits.max_depth || hops > self.limits.max_parts {
            return Err(self.too_deep());
        }
        let Some(part) = message.parts.get(id as usize) else {
            return Ok(());
        };
        let is_attachment = part.content_disposition().is_some_and(|d| d.is_attachment());
        match &part.body {
            PartType::Multipart(children) => {
                for &child in children {
                    // A child id never points back up, but a broken tree must not loop.
                    if child <= id {
                        continue;
                    }
                    self.part(message, child, depth + 1, hops + 1)?;
                }
            }
            PartType::Text(text) if !is_attachment => self.mail.texts.push(text.to_string()),
            PartType::Html(text) if !is_attachment => self.mail.htmls.push(html::convert(text)),
            PartType::Message(inner) => self.message(inner, depth + 1)?,
            PartType::Text(_) | PartType::Html(_) | PartType::Binary(_) | PartType::InlineBinary(_) => {
                let content_type = part
                    .content_type()
                    .map(|ct| match ct.subtype() {
                        Some(sub) => format!("{}/{}", ct.ctype(), sub),
                        None => ct.ctype().to_owned(),
                    })
                    .unwrap_or_else(|| "application/octet-stream".to_owned())
                    .to_ascii_lowercase();
                let filename = part.attachment_name().map(str::to_owned);
                let body = part.contents();
                if body.len() > self.limits.max_attachment_bytes {
                    let label = filename.clone().unwrap_or_else(|| content_type.clone());
                    self.mail.skipped.push((label, body.len()));
                } else {
                    self.mail.attachments.push(Attachment { filename, content_type, body: body.to_vec() });
                }
            }
        }
        Ok(())
    }
}

fn addresses(a: Option<&Address<'_>>) -> Vec<Addr> {
    let Some(a) = a else { return Vec::new() };
    a.iter()
        .filter_map(|addr| {
            let address = addr.address()?.trim().to_ascii_lowercase();
            (!address.is_empty()).then(|| Addr { name: addr.name().map(single_line), address })
        })
        .collect()
}

fn headers(message: &Message<'_>) -> Vec<(String, String)> {
    message
        .headers()
        .iter()
        .map(|h| {
            let value = match h.value() {
                HeaderValue::Text(t) => single_line(t),
                HeaderValue::TextList(list) => {
                    list.iter().map(|t| single_line(t)).collect::<Vec<_>>().join(", ")
                }
                HeaderValue::Address(a) => a
                    .iter()
                    .filter_map(|addr| addr.address())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => message.header_raw(h.name.clone()).map(single_line).unwrap_or_default(),
            };
            (header_name(&h.name), value)
        })
        .collect()
}

fn header_name(name: &HeaderName<'_>) -> String {
    name.as_str().to_owned()
}

/// White space runs (folding included) → one space, trimmed.
pub fn single_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
