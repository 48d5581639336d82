//! JSON intake: one object is one lead, an array of objects is a batch.
//!
//! Nested objects are flattened with dots (`utm.source`) so they keep their meaning in
//! `custom`; arrays stay values (multi-answer questions). Errors carry serde_json's
//! line and column.

use serde_json::Value;

use super::{ParseContext, ParseError, ParseOutput, Record, flatten_object, strip_bom};

pub fn parse(raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    let body = strip_bom(raw);
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ParseError::at(format!("invalid JSON: {}", strip_position(&e)), e.line() as u64, e.column() as u64)
    })?;
    check_depth(&value, cx.max_depth)?;
    match value {
        Value::Object(obj) => Ok(ParseOutput { records: vec![record(&obj)], batch: false }),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ParseError::new("the JSON array holds no leads"));
            }
            if items.len() > cx.max_records {
                return Err(ParseError::new(format!(
                    "the JSON array holds {} leads; at most {} are accepted per request",
                    items.len(),
                    cx.max_records
                )));
            }
            let mut records = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Object(obj) => records.push(record(obj)),
                    other => {
                        return Err(ParseError::new(format!(
                            "element {i} of the JSON array is {}, expected an object",
                            kind(other)
                        )));
                    }
                }
            }
            Ok(ParseOutput { records, batch: true })
        }
        other => Err(ParseError::new(format!(
            "the JSON body is {}, expected an object or an array of objects",
            kind(&other)
        ))),
    }
}

fn record(obj: &serde_json::Map<String, Value>) -> Record {
    let mut out = Record::with_capacity(obj.len());
    flatten_object("", obj, &mut out);
    out
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json appends " at line X column Y"; we report those separately.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// serde_json already refuses nesting beyond 128; leads are much flatter than that.
fn check_depth(v: &Value, max: usize) -> Result<(), ParseError> {
    fn depth(v: &Value) -> usize {
        match v {
            Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    let d = depth(v);
    if d > max {
        return Err(ParseError::new(format!(
            "the JSON is nested {d} levels deep; at most {max} are accepted"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_flatten_and_arrays_are_batches() {
        let cx = ParseContext::default();
        let out = parse(br#"{"a": 1, "utm": {"source": "g"}, "tags": ["x", "y"]}"#, &cx).unwrap();
        assert!(!out.batch);
        let names: Vec<_> = out.records[0].iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["a", "utm.source", "tags"]);
        let out = parse(b"\xEF\xBB\xBF[{\"a\":1},{\"a\":2}]", &cx).unwrap();
        assert!(out.batch);
        assert_eq!(out.records.len(), 2);
    }

    #[test]
    fn errors_name_the_position_and_the_shape() {
        let cx = ParseContext::default();
        let e = parse(b"{\n  \"a\": 1,\n}", &cx).unwrap_err();
        assert_eq!((e.line, e.column), (Some(3), Some(1)));
        assert!(e.message.starts_with("invalid JSON: trailing comma"), "{}", e.message);
        assert!(parse(b"[1]", &cx).unwrap_err().message.contains("element 0"));
        assert!(parse(b"\"x\"", &cx).unwrap_err().message.contains("a string"));
        assert!(parse(b"[]", &cx).is_err());
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(parse(deep.as_bytes(), &cx).unwrap_err().message.contains("nested"));
    }
}
