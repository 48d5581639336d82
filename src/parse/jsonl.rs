//! JSON lines: one JSON object per line, one lead per object.
//!
//! A line that is not a JSON object does not stop the file: it becomes a row error
//! ([`super::row_error_record`]) naming the line and column, and the next line is read.
//! Blank lines are skipped (and not counted as rows). Nested objects are flattened with
//! dots as in JSON intake; a name repeated within one object keeps every value (in
//! order), as form and CSV intake do, rather than the last one silently winning.
//!
//! This is also the format of the chunks file intake stores as submissions: rows of a
//! CSV or XLSX file are written with [`write_record`] and read back with [`parse`].

use std::fmt;
use std::io::{BufRead, Read};

use serde::Deserializer as _;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;

use super::table::{MAX_ROW_BYTES, Row};
use super::{ParseContext, ParseError, ParseOutput, Record, flatten_object};

/// Parses a whole JSON-lines payload in memory.
pub fn parse(raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    let text = super::decode::decode_all(raw, cx.table.encoding.as_deref())?;
    let mut records = Vec::new();
    let mut too_many = false;
    read_rows(text.as_bytes(), &mut |row| {
        if records.len() == cx.max_records {
            too_many = true;
            return false;
        }
        records.push(row.record);
        true
    })?;
    if too_many {
        return Err(ParseError::new(format!(
            "more than {} JSON lines; import big files with `leadgate import` or a file drop",
            cx.max_records
        )));
    }
    if records.is_empty() {
        return Err(ParseError::new("no JSON lines in the payload"));
    }
    Ok(ParseOutput { records, batch: true })
}

/// Reads UTF-8 JSON lines, calling `on_row` per non-blank line (`false` stops).
pub fn read_rows<R: Read>(input: R, on_row: &mut dyn FnMut(Row) -> bool) -> Result<(), ParseError> {
    let mut input = std::io::BufReader::with_capacity(64 * 1024, input);
    let mut line = Vec::new();
    let mut line_no = 0u64;
    let mut number = 0u64;
    loop {
        line.clear();
        let n = input
            .by_ref()
            .take(MAX_ROW_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| ParseError::new(format!("cannot read the file: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        let too_long = line.len() > MAX_ROW_BYTES && line.last() != Some(&b'\n');
        if too_long {
            // Skip the rest of the line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let m = input
                    .by_ref()
                    .take(64 * 1024)
                    .read_until(b'\n', &mut rest)
                    .map_err(|e| ParseError::new(format!("cannot read the file: {e}")))?;
                if m == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
        }
        let body = if line_no == 1 { line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line) } else { &line };
        let body = body.trim_ascii();
        if body.is_empty() {
            continue;
        }
        number += 1;
        let record = if too_long {
            super::row_error_record(format!(
                "line {line_no} is longer than {} KiB; not read",
                MAX_ROW_BYTES / 1024
            ))
        } else {
            parse_line(body).unwrap_or_else(|e| super::row_error_record(format!("line {line_no}: {e}")))
        };
        if !on_row(Row { number, record, cells: Vec::new() }) {
            return Ok(());
        }
    }
}

/// One line → one record, keeping repeated names.
pub fn parse_line(line: &[u8]) -> Result<Record, String> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let record = de.deserialize_map(RecordVisitor).map_err(|e| {
        let text = e.to_string();
        let message = text.rfind(" at line ").map_or(text.as_str(), |i| &text[..i]).to_owned();
        if message.starts_with("invalid type") {
            "not a JSON object".to_owned()
        } else {
            format!("invalid JSON at column {}: {message}", e.column())
        }
    })?;
    de.end().map_err(|e| format!("invalid JSON at column {}: text after the object", e.column()))?;
    Ok(record)
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        let mut out = Record::new();
        while let Some((name, value)) = map.next_entry::<String, Value>()? {
            match value {
                Value::Object(inner) if !inner.is_empty() => flatten_object(&name, &inner, &mut out),
                other => out.push((name, other)),
            }
        }
        Ok(out)
    }
}

/// Writes `record` as one JSON line (with its line end), repeated names included, so
/// that [`parse_line`] gives the same record back.
pub fn write_record(record: &Record, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (name, value)) in record.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Serializing a string or a Value into a Vec cannot fail.
        let _ignored = serde_json::to_writer(&mut *out, name);
        out.push(b':');
        let _ignored = serde_json::to_writer(&mut *out, value);
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_become_row_errors_and_the_file_goes_on() {
        let text = b"{\"email\":\"a@x.io\"}\r\n\nnot json\n[1]\n{\"a\":1} {\"b\":2}\n{\"utm\":{\"s\":\"g\"},\"p\":1,\"p\":2}";
        let out = parse(text, &ParseContext::default()).unwrap();
        assert_eq!(out.records.len(), 5);
        assert_eq!(out.records[0], vec![("email".to_owned(), Value::String("a@x.io".into()))]);
        let e = crate::parse::row_error(&out.records[1]).unwrap();
        assert!(e.starts_with("line 3: invalid JSON at column "), "{e}");
        assert_eq!(crate::parse::row_error(&out.records[2]), Some("line 4: not a JSON object"));
        assert!(crate::parse::row_error(&out.records[3]).unwrap().contains("text after the object"));
        let names: Vec<&str> = out.records[4].iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["utm.s", "p", "p"]);
    }

    #[test]
    fn records_round_trip_with_repeated_names() {
        let record: Record = vec![
            ("Phone".into(), Value::String("1".into())),
            ("Phone".into(), Value::String("2\n\"x\"".into())),
            ("Zip".into(), serde_json::json!(2134)),
        ];
        let mut line = Vec::new();
        write_record(&record, &mut line);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(parse_line(line.trim_ascii()).unwrap(), record);
    }

    #[test]
    fn an_overlong_line_is_skipped_with_an_error() {
        let mut text = format!("{{\"a\":\"{}\"}}\n", "x".repeat(MAX_ROW_BYTES + 10)).into_bytes();
        text.extend_from_slice(b"{\"b\":1}\n");
        let mut rows = Vec::new();
        read_rows(&text[..], &mut |r| {
            rows.push(r);
            true
        })
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert!(crate::parse::row_error(&rows[0].record).unwrap().contains("longer than"));
        assert_eq!(rows[1].record[0].0, "b");
    }
}
