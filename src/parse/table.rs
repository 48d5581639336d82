//! What the tabular file parsers (CSV, XLSX) share: their options, the row they produce,
//! and how a row of cells becomes a [`Record`].
//!
//! Rows are numbered from 1 at the first row *after* the header, and blank rows keep
//! their number (they are skipped, not renumbered), so "row 7" in an answer is the
//! seventh data row the vendor sees in their own spreadsheet.

use serde_json::Value;

use super::Record;

/// Longest row accepted, in bytes of text. A longer "row" is almost always a quote left
/// open, which would otherwise swallow the rest of the file into one cell.
pub const MAX_ROW_BYTES: usize = 1024 * 1024;

/// Per-source settings for CSV and XLSX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOptions {
    /// CSV: the field delimiter; detected from the header line when `None`.
    pub delimiter: Option<u8>,
    /// CSV and JSON lines: a WHATWG encoding label (`windows-1252`, `utf-16le`); detected
    /// when `None` (see [`super::decode`]).
    pub encoding: Option<String>,
    /// XLSX: the sheet to read; the first one when `None`.
    pub sheet: Option<String>,
    /// The first row names the columns. Without it, columns are named by their
    /// spreadsheet letter (`A`, `B`, …, `AA`), which a column mapping can refer to.
    pub header: bool,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self { delimiter: None, encoding: None, sheet: None, header: true }
    }
}

/// One data row of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based data row number (see the module docs); for JSON lines the record's number.
    pub number: u64,
    pub record: Record,
    /// The row's cells as text, in column order, as the vendor wrote them (tabular
    /// formats only): the results file repeats them beside each answer.
    pub cells: Vec<String>,
}

/// The spreadsheet letter of a 0-based column index: 0 → `A`, 25 → `Z`, 26 → `AA`.
pub fn column_letter(index: usize) -> String {
    let mut n = index + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// Column names from a header row: trimmed; a blank header cell is named by its letter.
pub fn header_names(cells: &[String]) -> Vec<String> {
    cells
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let name = c.trim().trim_start_matches('\u{feff}').trim();
            if name.is_empty() { column_letter(i) } else { name.to_owned() }
        })
        .collect()
}

/// The name of column `index`: its header, or its letter past the header's end (or
/// when the file has no header).
pub fn column_name(columns: &[String], index: usize) -> String {
    columns.get(index).cloned().unwrap_or_else(|| column_letter(index))
}

/// Whether every cell of a row is blank (such rows are skipped).
pub fn is_blank(cells: &[String]) -> bool {
    cells.iter().all(|c| c.trim().is_empty())
}

/// A record from text cells: blank cells are left out (they mean "not given").
pub fn text_record(columns: &[String], cells: &[String]) -> Record {
    cells
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.trim().is_empty())
        .map(|(i, c)| (column_name(columns, i), Value::String(c.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_follow_spreadsheets() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(701), "ZZ");
        assert_eq!(column_letter(702), "AAA");
    }

    #[test]
    fn blank_headers_and_cells() {
        let cols = header_names(&["\u{feff}Email".into(), " ".into()]);
        assert_eq!(cols, ["Email", "B"]);
        let r = text_record(&cols, &["a@x.io".into(), "".into(), "extra".into()]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].0, "C");
        assert!(is_blank(&[" ".into(), "".into()]));
    }
}
