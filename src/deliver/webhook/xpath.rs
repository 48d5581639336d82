//! The XPath subset that response rules use on XML answers.
//!
//! A path is a sequence of steps, each an element name or `*`, joined by `/` (child) or
//! `//` (descendant), and may end in an attribute step `@name`:
//!
//! - `/response/status`: the `status` child of the root element `response`;
//! - `//status`: every `status` element at any depth;
//! - `/response//error/@code`: the `code` attribute of any `error` under the root.
//!
//! Names match local names (`soap:Envelope` matches `Envelope`); there are no
//! predicates, functions, axes or namespaces beyond that. An element's value is its
//! string value (all text inside it, CDATA included), trimmed; an attribute's value is
//! the attribute value. Only the five predefined entities and character references are
//! decoded: a DOCTYPE is skipped, never read, so no entity is ever expanded. A body that
//! is not well-formed XML selects nothing.

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// Elements nested deeper than this are not looked into (answers are at most 64 KiB).
const MAX_DEPTH: usize = 256;

/// A compiled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct XPath {
    steps: Vec<Step>,
    attribute: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    /// `//name` rather than `/name`.
    descendant: bool,
    /// `None` for `*`.
    name: Option<String>,
}

/// A parse error: 1-based character position and what is wrong.
pub(super) type PathError = (usize, String);

impl XPath {
    /// Parses a path; the error gives the 1-based character position in `s`.
    pub(super) fn parse(s: &str) -> Result<Self, PathError> {
        let chars: Vec<char> = s.chars().collect();
        let mut steps = Vec::new();
        let mut attribute = None;
        let mut i = 0;
        if chars.first() != Some(&'/') {
            return Err((1, "an XPath must start with `/` or `//`".into()));
        }
        while i < chars.len() {
            if attribute.is_some() {
                return Err((i + 1, "nothing may follow an attribute step `@name`".into()));
            }
            if chars.get(i) != Some(&'/') {
                return Err((i + 1, format!("expected `/` before `{}`", chars.get(i).unwrap_or(&' '))));
            }
            i += 1;
            let descendant = chars.get(i) == Some(&'/');
            if descendant {
                i += 1;
            }
            let is_attribute = chars.get(i) == Some(&'@');
            if is_attribute {
                i += 1;
            }
            let start = i;
            while chars.get(i).is_some_and(|&c| is_name_char(c) || c == '*') {
                i += 1;
            }
            let name: String = chars.get(start..i).unwrap_or_default().iter().collect();
            if name.is_empty() {
                let what = chars.get(i).map_or("the end".to_owned(), |c| format!("`{c}`"));
                return Err((i + 1, format!("expected an element name, `*` or `@attribute`, found {what}")));
            }
            if name.contains('*') && name != "*" {
                return Err((start + 1, format!("`{name}`: `*` stands alone as a step")));
            }
            if name.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') {
                return Err((start + 1, format!("`{name}` is not an XML name")));
            }
            let local = local_name(&name).to_owned();
            if is_attribute {
                if descendant || name == "*" {
                    return Err((start, "an attribute step is written `/@name`".into()));
                }
                attribute = Some(local);
            } else {
                steps.push(Step { descendant, name: (name != "*").then_some(local) });
            }
        }
        if steps.is_empty() {
            return Err((1, "the path selects no element".into()));
        }
        Ok(Self { steps, attribute })
    }

    /// The values of the selected nodes, in document order; empty when nothing is selected
    /// or `xml` is not well-formed.
    pub(super) fn select(&self, xml: &str) -> Vec<String> {
        self.try_select(xml).unwrap_or_default()
    }

    fn try_select(&self, xml: &str) -> Option<Vec<String>> {
        let mut reader = Reader::from_str(xml.trim_start_matches('\u{feff}'));
        let config = reader.config_mut();
        config.allow_dangling_amp = true;
        config.check_end_names = true;
        let mut stack: Vec<String> = Vec::new();
        // Open selected elements: their depth and the text collected so far.
        let mut open: Vec<(usize, usize)> = Vec::new();
        let mut found: Vec<String> = Vec::new();
        let mut saw_root = false;
        loop {
            match reader.read_event().ok()? {
                Event::Start(e) => {
                    saw_root = true;
                    stack.push(local_name(e.name().as_ref()).to_owned());
                    if stack.len() <= MAX_DEPTH && self.matches(&stack) {
                        match &self.attribute {
                            Some(attr) => found.extend(attribute(&e, attr)),
                            None => {
                                open.push((stack.len(), found.len()));
                                found.push(String::new());
                            }
                        }
                    }
                }
                Event::Empty(e) => {
                    saw_root = true;
                    stack.push(local_name(e.name().as_ref()).to_owned());
                    if stack.len() <= MAX_DEPTH && self.matches(&stack) {
                        match &self.attribute {
                            Some(attr) => found.extend(attribute(&e, attr)),
                            None => found.push(String::new()),
                        }
                    }
                    stack.pop();
                }
                Event::End(_) => {
                    if open.last().is_some_and(|&(depth, _)| depth == stack.len()) {
                        open.pop();
                    }
                    stack.pop();
                }
                Event::Text(t) => push_text(&mut found, &open, &t.xml10_content()),
                Event::CData(c) => push_text(&mut found, &open, &c.xml10_content()),
                Event::GeneralRef(r) => {
                    let name = r.xml10_content();
                    let text = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => match resolve_xml_entity(&name) {
                            Some(s) => s.to_owned(),
                            // Never expanded: undefined or DTD-declared entities stay as written.
                            None => format!("&{name};"),
                        },
                    };
                    push_text(&mut found, &open, &text);
                }
                Event::DocType(_) | Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof if saw_root && stack.is_empty() => break,
                Event::Eof => return None,
            }
        }
        Some(found.into_iter().map(|v| v.trim().to_owned()).collect())
    }

    /// Whether the element path `stack` (root first) is selected by the steps.
    fn matches(&self, stack: &[String]) -> bool {
        match_steps(&self.steps, stack)
    }
}

fn match_steps(steps: &[Step], stack: &[String]) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return stack.is_empty();
    };
    let fits = |name: &String| step.name.as_ref().is_none_or(|n| n == name);
    if step.descendant {
        // The step may skip any number of ancestors.
        (0..stack.len()).any(|skip| {
            stack.get(skip).is_some_and(fits) && match_steps(rest, stack.get(skip + 1..).unwrap_or_default())
        })
    } else {
        stack.first().is_some_and(fits) && match_steps(rest, stack.get(1..).unwrap_or_default())
    }
}

/// Appends text to every selected element that is open (a selected element nested in
/// another gets its text too).
fn push_text(found: &mut [String], open: &[(usize, usize)], text: &str) {
    for &(_, index) in open {
        if let Some(value) = found.get_mut(index)
            && value.len() < crate::deliver::RESPONSE_KEEP
        {
            value.push_str(text);
        }
    }
}

fn attribute(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes().flatten().find(|a| local_name(a.key.as_ref()) == name).map(|a| {
        a.normalized_value(XmlVersion::Implicit1_0).map(|v| v.into_owned()).unwrap_or_else(|_| a.value.into())
    })
}

fn local_name(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':') || !c.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(path: &str, xml: &str) -> Vec<String> {
        XPath::parse(path).unwrap().select(xml)
    }

    const DOC: &str = r#"<?xml version="1.0"?>
<!DOCTYPE response [<!ENTITY boom "BOOM">]>
<ns:response xmlns:ns="urn:x" id="r1">
  <status>
    rejected
  </status>
  <detail><reason code="D1">dup &amp; <![CDATA[<late>]]> &#233;&boom;</reason></detail>
  <items><item>a</item><item>b</item><item/></items>
</ns:response>"#;

    #[test]
    fn absolute_and_descendant_paths_select_trimmed_string_values() {
        assert_eq!(select("/response/status", DOC), ["rejected"]);
        assert_eq!(select("//status", DOC), ["rejected"]);
        assert_eq!(select("/status", DOC), Vec::<String>::new());
        assert_eq!(select("/response/detail/reason", DOC), ["dup & <late> é&boom;"]);
        assert_eq!(select("//detail", DOC), ["dup & <late> é&boom;"]);
        assert_eq!(select("/response//reason", DOC), ["dup & <late> é&boom;"]);
        assert_eq!(select("//items/item", DOC), ["a", "b", ""]);
        assert_eq!(select("/*/items/*", DOC), ["a", "b", ""]);
        assert_eq!(select("//reason/@code", DOC), ["D1"]);
        assert_eq!(select("/response/@id", DOC), ["r1"]);
        assert_eq!(select("/response/@missing", DOC), Vec::<String>::new());
    }

    #[test]
    fn nested_selected_elements_each_get_their_text() {
        let xml = "<a><b>x<b>y</b></b></a>";
        assert_eq!(select("//b", xml), ["xy", "y"]);
    }

    #[test]
    fn non_xml_bodies_select_nothing() {
        assert!(select("//status", r#"{"status":"rejected"}"#).is_empty());
        assert!(select("//status", "<status>open").is_empty());
        assert!(select("//status", "<status>a</other>").is_empty());
        assert!(select("//status", "").is_empty());
    }

    #[test]
    fn bad_paths_name_the_position() {
        for (path, position, message) in [
            ("status", 1, "must start with"),
            ("/", 2, "expected an element name"),
            ("/a/", 4, "expected an element name"),
            ("/a[1]", 3, "expected `/`"),
            ("/a/@b/c", 6, "nothing may follow"),
            ("/a/b*", 4, "stands alone"),
            ("///a", 3, "expected an element name"),
            ("/@id", 1, "selects no element"),
        ] {
            let (pos, msg) = XPath::parse(path).unwrap_err();
            assert_eq!(pos, position, "{path}: {msg}");
            assert!(msg.contains(message), "{path}: {msg}");
        }
    }
}
