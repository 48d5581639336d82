//! XLSX workbooks (calamine): one sheet, first row the header, one lead per row.
//!
//! Cells keep their meaning rather than their display:
//! - text stays text, so a ZIP or phone typed as text (`02134`) keeps its leading zero;
//! - a number that is a whole number becomes an integer (`2134`, `4155550123`), never a
//!   float with `.0` or an exponent; the normalizer then reads it as a ZIP (padded to 5
//!   digits: Excel drops leading zeros of numbers typed into General cells) or a phone;
//! - dates and times become ISO 8601 text (`2026-03-04`, `2026-03-04T09:30:00`);
//! - booleans stay booleans; error cells (`#N/A`) become their text.
//!
//! Cells are streamed from the sheet's XML; the shared-string table is held in memory, so
//! workbooks are bounded by the file size limit rather than by their row count.

use std::io::{Cursor, Read, Seek};

use calamine::{DataRef, Reader, Xlsx};
use serde_json::Value;

use super::table::{self, Row, TableOptions};
use super::{ParseContext, ParseError, ParseOutput, Record};

/// Parses a whole workbook in memory.
pub fn parse(raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    let mut records = Vec::new();
    let mut too_many = false;
    read_rows(Cursor::new(raw), &cx.table, &mut |_| {}, &mut |row| {
        if records.len() == cx.max_records {
            too_many = true;
            return false;
        }
        records.push(row.record);
        true
    })?;
    if too_many {
        return Err(ParseError::new(format!(
            "the sheet has more than {} rows; import big files with `leadgate import` or a file drop",
            cx.max_records
        )));
    }
    Ok(ParseOutput { records, batch: true })
}

/// Reads the configured (or first) sheet row by row; see [`super::csv::read_rows`] for
/// the callbacks.
pub fn read_rows<RS: Read + Seek>(
    input: RS,
    opts: &TableOptions,
    on_header: &mut dyn FnMut(&[String]),
    on_row: &mut dyn FnMut(Row) -> bool,
) -> Result<(), ParseError> {
    let mut book: Xlsx<RS> =
        Xlsx::new(input).map_err(|e| ParseError::new(format!("not a readable XLSX workbook: {e}")))?;
    let names = book.sheet_names();
    let sheet = match &opts.sheet {
        Some(wanted) => names.iter().find(|n| n.eq_ignore_ascii_case(wanted)).cloned().ok_or_else(|| {
            ParseError::new(format!("the workbook has no sheet {wanted:?} (it has {})", names.join(", ")))
        })?,
        None => names.first().cloned().ok_or_else(|| ParseError::new("the workbook has no sheet"))?,
    };
    let mut reader = book
        .worksheet_cells_reader(&sheet)
        .map_err(|e| ParseError::new(format!("cannot read sheet {sheet:?}: {e}")))?;

    let mut columns: Option<Vec<String>> = None;
    let mut first_data_row: Option<u32> = None;
    let mut current: Option<u32> = None;
    let mut cells: Vec<Option<(Value, String)>> = Vec::new();
    loop {
        let next =
            reader.next_cell().map_err(|e| ParseError::new(format!("cannot read sheet {sheet:?}: {e}")))?;
        let position = next.as_ref().map(|c| c.get_position());
        let row_changed = match (position, current) {
            (Some((r, _)), Some(c)) => r != c,
            (None, Some(_)) => true,
            _ => false,
        };
        if row_changed && let Some(r) = current {
            let keep_going =
                finish_row(r, &mut cells, opts, &mut columns, &mut first_data_row, on_header, on_row);
            if !keep_going {
                return Ok(());
            }
        }
        let Some(cell) = next else { break };
        let (row, col) = cell.get_position();
        current = Some(row);
        if let Some(converted) = convert(cell.get_value()) {
            let col = col as usize;
            if cells.len() <= col {
                cells.resize(col + 1, None);
            }
            cells[col] = Some(converted);
        }
    }
    if columns.is_none() {
        on_header(&[]);
    }
    Ok(())
}

/// Hands a finished sheet row to the header or the row callback.
fn finish_row(
    row: u32,
    cells: &mut Vec<Option<(Value, String)>>,
    opts: &TableOptions,
    columns: &mut Option<Vec<String>>,
    first_data_row: &mut Option<u32>,
    on_header: &mut dyn FnMut(&[String]),
    on_row: &mut dyn FnMut(Row) -> bool,
) -> bool {
    let taken = std::mem::take(cells);
    let texts: Vec<String> =
        taken.iter().map(|c| c.as_ref().map(|(_, t)| t.clone()).unwrap_or_default()).collect();
    if table::is_blank(&texts) {
        return true;
    }
    let cols = match columns {
        Some(c) => c,
        None if opts.header => {
            let names = table::header_names(&texts);
            on_header(&names);
            *columns = Some(names);
            // Data row 1 is the sheet row after the header.
            *first_data_row = Some(row + 1);
            return true;
        }
        None => {
            on_header(&[]);
            // Without a header, data row 1 is the sheet's first row.
            *first_data_row = Some(0);
            columns.insert(Vec::new())
        }
    };
    let number = (u64::from(row) + 1).saturating_sub(u64::from(first_data_row.unwrap_or(0)));
    let record: Record = taken
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|(v, _)| (table::column_name(cols, i), v)))
        .collect();
    on_row(Row { number, record, cells: texts })
}

/// A cell's value and its text; `None` for an empty cell.
fn convert(data: &DataRef<'_>) -> Option<(Value, String)> {
    let text_value = |s: &str| {
        if s.trim().is_empty() { None } else { Some((Value::String(s.to_owned()), s.to_owned())) }
    };
    match data {
        DataRef::Empty => None,
        DataRef::String(s) => text_value(s),
        DataRef::SharedString(s) => text_value(s),
        DataRef::Int(i) => Some((Value::from(*i), i.to_string())),
        DataRef::Float(f) => Some(number(*f)),
        DataRef::Bool(b) => Some((Value::Bool(*b), if *b { "TRUE".into() } else { "FALSE".into() })),
        DataRef::DateTime(dt) if dt.is_datetime() => {
            let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
            let text = if dt.as_f64().fract() == 0.0 {
                format!("{y:04}-{mo:02}-{d:02}")
            } else if dt.as_f64() < 1.0 {
                format!("{h:02}:{mi:02}:{s:02}")
            } else {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
            };
            Some((Value::String(text.clone()), text))
        }
        DataRef::DateTime(dt) => Some(number(dt.as_f64())),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => text_value(s),
        DataRef::Error(e) => {
            let t = e.to_string();
            Some((Value::String(t.clone()), t))
        }
    }
}

/// Whole numbers as integers (no `.0`, no exponent); others as JSON floats.
fn number(f: f64) -> (Value, String) {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if f.is_finite() && f.fract() == 0.0 && f.abs() < EXACT {
        let i = f as i64;
        return (Value::from(i), i.to_string());
    }
    match serde_json::Number::from_f64(f) {
        Some(n) => (Value::Number(n), f.to_string()),
        None => (Value::String(f.to_string()), f.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_integers() {
        assert_eq!(number(2134.0), (Value::from(2134), "2134".to_owned()));
        assert_eq!(number(4155550123.0).1, "4155550123");
        assert_eq!(number(1.5).0, serde_json::json!(1.5));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let e = parse(b"PK\x03\x04 not really a zip", &ParseContext::default()).unwrap_err();
        assert!(e.message.starts_with("not a readable XLSX workbook"), "{}", e.message);
        assert!(parse(b"", &ParseContext::default()).is_err());
    }
}
