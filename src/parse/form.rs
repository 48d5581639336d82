//! `application/x-www-form-urlencoded`: name-value pairs, one lead per body.
//!
//! Dotted names (`mortgage.loan.amount`) are kept as they are. A body that has no
//! `name=value` pair at all, or is not UTF-8 after decoding, is refused by name rather
//! than turned into an empty lead.

use serde_json::Value;

use super::{ParseContext, ParseError, ParseOutput, Record, strip_bom};

pub fn parse(raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    let body = strip_bom(raw);
    let body = trim_ascii(body);
    if body.is_empty() {
        return Err(ParseError::new("the form body is empty"));
    }
    if std::str::from_utf8(body).is_err() {
        return Err(ParseError::new("the form body is not UTF-8 (percent-encode non-ASCII characters)"));
    }
    let mut record = Record::new();
    for (i, pair) in body.split(|&b| b == b'&').enumerate() {
        if pair.is_empty() {
            continue;
        }
        if !pair.contains(&b'=') {
            return Err(ParseError::new(format!(
                "form pair {} ({:?}) has no '=': the body is not name=value pairs",
                i + 1,
                String::from_utf8_lossy(&pair[..pair.len().min(40)])
            )));
        }
        let (name, value) = form_urlencoded::parse(pair).next().unwrap_or_default();
        if name.contains('\u{FFFD}') || value.contains('\u{FFFD}') {
            return Err(ParseError::new(format!("form pair {} is not UTF-8 once percent-decoded", i + 1)));
        }
        if name.trim().is_empty() {
            return Err(ParseError::new(format!("form pair {} has an empty name", i + 1)));
        }
        if record.len() >= cx.max_records.max(1000) {
            return Err(ParseError::new("the form body has too many fields"));
        }
        record.push((name.into_owned(), Value::String(value.into_owned())));
    }
    if record.is_empty() {
        return Err(ParseError::new("the form body has no name=value pairs"));
    }
    Ok(ParseOutput { records: vec![record], batch: false })
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_keep_dotted_names_and_decode_values() {
        let out = parse(
            b"first_name=Lee&mortgage.loan.amount=350000&c=rate+%3C+6%25\r\n",
            &ParseContext::default(),
        )
        .unwrap();
        assert_eq!(out.records[0][1], ("mortgage.loan.amount".into(), Value::String("350000".into())));
        assert_eq!(out.records[0][2].1, Value::String("rate < 6%".into()));
    }

    #[test]
    fn bodies_that_are_not_pairs_are_refused() {
        let cx = ParseContext::default();
        assert!(parse(b"hello world", &cx).unwrap_err().message.contains("no '='"));
        assert!(parse(b"", &cx).is_err());
        assert!(parse(b"=x", &cx).unwrap_err().message.contains("empty name"));
        assert!(parse(b"a=%FF", &cx).unwrap_err().message.contains("UTF-8"));
    }
}
