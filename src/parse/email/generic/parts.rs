//! The readable parts of a message: text parts (stubs skipped) and HTML parts as lines,
//! unquoted, without markdown or bullets, with the range that is the vendor's message
//! (after a forwarding marker or a reply's attribution, before the signature) and where
//! its footer begins.

use super::super::html::Html;
use super::super::mime::Mail;
use super::super::vocab::footer;
use super::{MAX_LINE_CHARS, MAX_LINES};

/// One readable part: its lines and the range that is the vendor's message.
pub(super) struct Doc<'m> {
    pub(super) name: String,
    pub(super) lines: Vec<String>,
    pub(super) start: usize,
    pub(super) end: usize,
    /// Where the vendor's footer begins (unlabelled contacts are not read past it).
    pub(super) footer: usize,
    /// A reply's attribution line ("On … wrote:"): the replier's own text is above it.
    pub(super) reply: Option<usize>,
    pub(super) html: Option<&'m Html>,
}

impl Doc<'_> {
    pub(super) fn range(&self) -> impl Iterator<Item = (usize, &str)> {
        self.lines.iter().enumerate().take(self.end).skip(self.start).map(|(i, l)| (i, l.as_str()))
    }

    /// The next non-blank line after `i` within the range (at most one blank between).
    pub(super) fn next_value(&self, i: usize) -> Option<(usize, &str)> {
        let mut j = i + 1;
        let mut blanks = 0;
        while j < self.end {
            let l = self.lines.get(j)?.trim();
            if !l.is_empty() {
                return Some((j, l));
            }
            blanks += 1;
            if blanks > 1 {
                return None;
            }
            j += 1;
        }
        None
    }
}

pub(super) fn docs(mail: &Mail) -> Vec<Doc<'_>> {
    let mut out = Vec::new();
    for (n, text) in mail.texts.iter().enumerate() {
        if is_stub(text) {
            continue;
        }
        out.push(doc(format!("text part {}", n + 1), text, None));
    }
    for (n, html) in mail.htmls.iter().enumerate() {
        out.push(doc(format!("html part {}", n + 1), &html.text, Some(html)));
    }
    out
}

fn doc<'m>(name: String, text: &str, html: Option<&'m Html>) -> Doc<'m> {
    let lines: Vec<String> = text
        .lines()
        .take(MAX_LINES)
        .map(|l| {
            let l: String = l.chars().take(MAX_LINE_CHARS).collect();
            plain(unquote(&l))
        })
        .collect();
    let (start, end, reply) = readable(&lines);
    // A footer marker in the second half of the message starts the footer.
    let middle = start + (end.saturating_sub(start)) / 2;
    let footer_at = (middle..end).find(|&i| lines.get(i).is_some_and(|l| footer(l))).unwrap_or(end);
    Doc { name, lines, start, end, footer: footer_at, reply, html }
}

/// A text part that only points at the HTML one ("view this message in a browser").
fn is_stub(text: &str) -> bool {
    let lower = text.to_lowercase();
    let pointer = [
        "view this message in a browser",
        "view this email in your browser",
        "view it in your browser",
        "html version",
        "does not support html",
        "view in browser",
        "open this message in a browser",
        "enable html",
    ]
    .iter()
    .any(|p| lower.contains(p));
    let words = text.split_whitespace().count();
    (pointer && words < 80) || text.trim().is_empty()
}

/// A line without markdown emphasis or a list bullet in front (`**Email:** x`,
/// `• Phone: …`, `- Name: …`), so its label reads as one.
fn plain(line: &str) -> String {
    let t = line.trim_start();
    let bare = t.trim_start_matches(['*', '_', '•', '·', '#']).trim_start();
    let bare = match bare.strip_prefix("- ").or_else(|| bare.strip_prefix("– ")) {
        Some(rest) => rest,
        None => bare,
    };
    if bare.len() == t.len() && !bare.contains("**") {
        return line.to_owned();
    }
    bare.replace("**", "").replace("__", "")
}

/// `> > text` → `text`.
fn unquote(line: &str) -> &str {
    let mut l = line;
    loop {
        let t = l.trim_start();
        match t.strip_prefix('>') {
            Some(rest) => l = rest.strip_prefix(' ').unwrap_or(rest),
            None => return l,
        }
    }
}

/// The lines that are the vendor's message: after a forwarding marker or a reply's
/// attribution line (the forwarder's or replier's own text is above it), up to the
/// signature delimiter.
fn readable(lines: &[String]) -> (usize, usize, Option<usize>) {
    let mut start = 0;
    let mut reply = None;
    for (i, l) in lines.iter().enumerate() {
        let lower = l.trim().to_lowercase();
        let forwarded = (lower.contains("forwarded message") && lower.starts_with('-'))
            || lower.starts_with("begin forwarded message")
            || (lower.contains("original message") && lower.starts_with('-'));
        let attribution = lower.starts_with("on ") && lower.ends_with("wrote:");
        if forwarded || attribution {
            start = i + 1;
            if attribution && !forwarded {
                reply = Some(i);
            }
            break;
        }
    }
    let end = lines
        .iter()
        .enumerate()
        .skip(start)
        .find(|(_, l)| {
            let t = l.trim_end();
            t == "--" || t == "-- " || t == "__"
        })
        .map_or(lines.len(), |(i, _)| i);
    (start, end, reply)
}
