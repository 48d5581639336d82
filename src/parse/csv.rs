//! CSV (and TSV, semicolon-separated …) lead lists.
//!
//! - Encoding: see [`super::decode`] (UTF-8 with or without BOM, Windows-1252, UTF-16).
//! - Delimiter: the one of `,` `;` tab `|` that appears most often outside quotes in the
//!   header line (`,` on a tie or none), unless the source sets one.
//! - RFC 4180 quoting: fields with delimiters, quotes (`""`) and line breaks inside
//!   quotes; CRLF, LF or CR line ends; a last row with no line end; ragged rows (cells
//!   past the header are named by their column letter, missing cells are simply absent).
//! - Header names go through the normalizer's alias table (and the source's column
//!   mapping), exactly like HTTP field names.
//! - Bounded: streaming, one row in memory at a time; a row longer than
//!   [`MAX_ROW_BYTES`] (an unclosed quote, usually) stops the file with an error naming
//!   the row, rather than reading the rest of the file into one cell.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use super::table::{self, MAX_ROW_BYTES, Row, TableOptions};
use super::{ParseContext, ParseError, ParseOutput};

/// Parses a whole CSV payload in memory (`leadgate parse`, replay). Files go through
/// [`read_rows`] instead, which streams.
pub fn parse(raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    let text = super::decode::decode_all(raw, cx.table.encoding.as_deref())?;
    let mut records = Vec::new();
    let mut too_many = false;
    read_rows(text.as_bytes(), &cx.table, &mut |_| {}, &mut |row| {
        if records.len() == cx.max_records {
            too_many = true;
            return false;
        }
        records.push(row.record);
        true
    })?;
    if too_many {
        return Err(ParseError::new(format!(
            "the file has more than {} rows; import big files with `leadgate import` or a file drop",
            cx.max_records
        )));
    }
    Ok(ParseOutput { records, batch: true })
}

/// Counts the bytes read since the last row ended, failing past the limit, and notes how
/// the input ended.
struct Guarded<R> {
    inner: R,
    since_row: Rc<Cell<usize>>,
    limit: usize,
    tail: Rc<Cell<Tail>>,
}

/// What has been read of the input: enough to tell whether the last row had a line end.
#[derive(Debug, Clone, Copy, Default)]
struct Tail {
    bytes: u64,
    eof: bool,
    last: u8,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.since_row.get() > self.limit {
            return Err(io::Error::new(io::ErrorKind::InvalidData, RowTooLong));
        }
        let n = self.inner.read(buf)?;
        self.since_row.set(self.since_row.get() + n);
        let mut tail = self.tail.get();
        match buf.get(..n).and_then(<[u8]>::last) {
            Some(&b) => {
                tail.bytes += n as u64;
                tail.last = b;
            }
            None => tail.eof = true,
        }
        self.tail.set(tail);
        Ok(n)
    }
}

#[derive(Debug)]
struct RowTooLong;

impl std::fmt::Display for RowTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("row too long")
    }
}

impl std::error::Error for RowTooLong {}

/// Reads UTF-8 CSV text row by row: `on_header` gets the column names once (before the
/// first row; letters when the file has no header), `on_row` each non-blank data row and
/// returns `false` to stop early.
pub fn read_rows<R: Read>(
    input: R,
    opts: &TableOptions,
    on_header: &mut dyn FnMut(&[String]),
    on_row: &mut dyn FnMut(Row) -> bool,
) -> Result<(), ParseError> {
    let since_row = Rc::new(Cell::new(0));
    // The csv reader buffers ahead of the row it is on: allow for that.
    let limit = MAX_ROW_BYTES + 128 * 1024;
    let tail = Rc::new(Cell::new(Tail::default()));
    let guarded = Guarded { inner: input, since_row: since_row.clone(), limit, tail: tail.clone() };
    let mut buffered = BufReader::with_capacity(64 * 1024, guarded);
    let head = buffered.fill_buf().map_err(|e| ParseError::new(format!("cannot read the file: {e}")))?;
    let delimiter = opts.delimiter.unwrap_or_else(|| sniff_delimiter(head));
    let crlf = head.windows(2).any(|w| w == b"\r\n");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(64 * 1024)
        .from_reader(buffered);

    let mut record = csv::ByteRecord::new();
    let mut columns: Option<Vec<String>> = None;
    let mut number = 0u64;
    let mut cells: Vec<String> = Vec::new();
    loop {
        let more = reader.read_byte_record(&mut record).map_err(|e| error(&e, number, opts.header))?;
        if !more {
            break;
        }
        let ends = LineEnds { crlf, tail: tail.get() };
        let empty_lines = empty_lines_before(&record, reader.position(), ends);
        since_row.set(0);
        cells.clear();
        cells.extend(record.iter().map(|f| String::from_utf8_lossy(f).into_owned()));
        let Some(cols) = &columns else {
            let cols = if opts.header {
                if table::is_blank(&cells) {
                    continue;
                }
                table::header_names(&cells)
            } else {
                Vec::new()
            };
            on_header(&cols);
            columns = Some(cols);
            if opts.header {
                continue;
            }
            number += 1 + empty_lines;
            if !emit(&[], &cells, number, on_row) {
                return Ok(());
            }
            continue;
        };
        number += 1 + empty_lines;
        if !emit(cols, &cells, number, on_row) {
            return Ok(());
        }
    }
    if columns.is_none() {
        on_header(&[]);
    }
    Ok(())
}

/// How many empty lines came right before `record`. The csv reader skips them without a
/// record, but a row's number must stay its place in the file (a vendor reconciles the
/// results against it). A record's span starts where the previous one ended, so it covers
/// those empty lines: the `\n`s it spans, less those inside its cells and the one of a line
/// end. With LF line ends that is the record's own (none for a last row without one); with
/// CRLF the reader stops after the `\r`, so it is the previous record's `\n` (none for the
/// first record). With CR-only line ends no `\n` is seen, and empty lines are not counted.
fn empty_lines_before(record: &csv::ByteRecord, end: &csv::Position, ends: LineEnds) -> u64 {
    let Some(start) = record.position() else { return 0 };
    let spanned = end.line().saturating_sub(start.line());
    let inside: u64 = record.iter().map(|f| f.iter().filter(|&&b| b == b'\n').count() as u64).sum();
    let line_end = match ends.crlf {
        true => start.byte() > 0,
        false => !(ends.tail.eof && end.byte() == ends.tail.bytes && ends.tail.last != b'\n'),
    };
    spanned.saturating_sub(inside + u64::from(line_end))
}

/// How the file's lines end, for [`empty_lines_before`].
#[derive(Debug, Clone, Copy)]
struct LineEnds {
    /// The start of the file has a CRLF (files do not mix them, in practice).
    crlf: bool,
    tail: Tail,
}

fn emit(columns: &[String], cells: &[String], number: u64, on_row: &mut dyn FnMut(Row) -> bool) -> bool {
    if table::is_blank(cells) {
        return true;
    }
    on_row(Row { number, record: table::text_record(columns, cells), cells: cells.to_vec() })
}

fn error(e: &csv::Error, rows_before: u64, header: bool) -> ParseError {
    let row = rows_before + 1;
    if let csv::ErrorKind::Io(io) = e.kind()
        && io.get_ref().is_some_and(|inner| inner.is::<RowTooLong>())
    {
        let what =
            if header && rows_before == 0 { "the header or row 1".to_owned() } else { format!("row {row}") };
        return ParseError::new(format!(
            "{what} is longer than {} KiB: is a quote left open? The rows before it were read; the rest of the file was not",
            MAX_ROW_BYTES / 1024
        ));
    }
    match e.position() {
        Some(p) => ParseError::at(format!("cannot read row {row}: {e}"), p.line(), 1),
        None => ParseError::new(format!("cannot read row {row}: {e}")),
    }
}

/// The most frequent of `,` `;` tab `|` outside quotes in the first line; `,` if none.
pub fn sniff_delimiter(head: &[u8]) -> u8 {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let mut counts = [0usize; 4];
    const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = CANDIDATES.iter().position(|c| *c == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let best = (0..4).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).unwrap_or(0);
    if counts[best] == 0 { b',' } else { CANDIDATES[best] }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn rows(text: &str, opts: &TableOptions) -> (Vec<String>, Vec<Row>) {
        let mut header = Vec::new();
        let mut out = Vec::new();
        read_rows(text.as_bytes(), opts, &mut |h| header = h.to_vec(), &mut |r| {
            out.push(r);
            true
        })
        .unwrap();
        (header, out)
    }

    fn get<'a>(row: &'a Row, name: &str) -> Option<&'a str> {
        row.record.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_str())
    }

    #[test]
    fn quoting_line_ends_and_last_row_without_newline() {
        for eol in ["\n", "\r\n"] {
            let text = format!(
                "Name,Notes,Zip{eol}Ana,\"a, b\",02134{eol}Ben,\"two{eol}lines \"\"quoted\"\"\",80202"
            );
            let (header, rows) = rows(&text, &TableOptions::default());
            assert_eq!(header, ["Name", "Notes", "Zip"]);
            assert_eq!(rows.len(), 2);
            assert_eq!(get(&rows[0], "Notes"), Some("a, b"));
            assert_eq!(get(&rows[0], "Zip"), Some("02134"));
            assert_eq!(get(&rows[1], "Notes"), Some(format!("two{eol}lines \"quoted\"").as_str()));
            assert_eq!(get(&rows[1], "Zip"), Some("80202"));
            assert_eq!(rows[1].number, 2);
        }
    }

    #[test]
    fn delimiters_are_detected() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1,5;2;3"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter(b"\"x;y\",b,c"), b',');
        assert_eq!(sniff_delimiter(b"single"), b',');
        let (h, r) = rows("E-mail;Phone\r\na@x.io;1,5\r\n", &TableOptions::default());
        assert_eq!(h, ["E-mail", "Phone"]);
        assert_eq!(get(&r[0], "Phone"), Some("1,5"));
    }

    #[test]
    fn blank_rows_keep_their_numbers_and_ragged_rows_are_kept() {
        // Row 2 is blank cells, row 3 an empty line (which the csv reader skips silently).
        for eol in ["\n", "\r\n"] {
            let text = "a,b\n1,2\n,\n\n3,4,5\n6\n".replace('\n', eol);
            let (_, r) = rows(&text, &TableOptions::default());
            let numbers: Vec<u64> = r.iter().map(|r| r.number).collect();
            assert_eq!(numbers, [1, 4, 5], "{eol:?}");
            assert_eq!(get(&r[1], "C"), Some("5"));
            assert_eq!(r[2].record, vec![("a".to_owned(), Value::String("6".into()))]);
        }
    }

    #[test]
    fn empty_lines_count_as_rows_around_multi_line_cells_and_without_a_header() {
        for eol in ["\n", "\r\n"] {
            let t = |text: &str, opts: &TableOptions| {
                let (_, r) = rows(&text.replace('\n', eol), opts);
                r.iter().map(|r| r.number).collect::<Vec<u64>>()
            };
            let header = TableOptions::default();
            assert_eq!(
                t("a,b\n\n\n\"x\ny\",1\n\n2,3\n", &header),
                [3, 5],
                "a quoted line break is not a row"
            );
            let no_header = TableOptions { header: false, ..TableOptions::default() };
            assert_eq!(t("\na@x.io\n\n\nb@x.io\n", &no_header), [2, 5], "{eol:?}");
            assert_eq!(t("a\n1\n\n2", &header), [1, 3], "a last row without a line end");
            assert_eq!(t("\n\na,b\n1,2\n", &header), [1], "empty lines before the header are not rows");
        }
    }

    #[test]
    fn without_a_header_columns_are_letters() {
        let opts = TableOptions { header: false, ..TableOptions::default() };
        let (h, r) = rows("a@x.io,555\n", &opts);
        assert!(h.is_empty());
        assert_eq!(r[0].number, 1);
        assert_eq!(get(&r[0], "A"), Some("a@x.io"));
        assert_eq!(get(&r[0], "B"), Some("555"));
    }

    #[test]
    fn an_unclosed_quote_stops_with_the_row_named() {
        let mut text = String::from("a,b\n1,2\n3,\"open\n");
        text.push_str(&"x".repeat(MAX_ROW_BYTES + 200 * 1024));
        let mut seen = 0;
        let e = read_rows(text.as_bytes(), &TableOptions::default(), &mut |_| {}, &mut |_| {
            seen += 1;
            true
        })
        .unwrap_err();
        assert_eq!(seen, 1);
        assert!(e.message.contains("row 2 is longer than"), "{}", e.message);
    }

    #[test]
    fn encodings_from_spreadsheets() {
        let cx = ParseContext::default();
        let win = b"First Name,Last Name\r\nChlo\xE9,Mart\xEDn\r\n";
        let out = parse(win, &cx).unwrap();
        assert_eq!(out.records[0][0].1, Value::String("Chloé".into()));
        let mut utf16 = vec![0xFF, 0xFE];
        for u in "Email\tName\r\nz@x.io\tZoë\r\n".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let out = parse(&utf16, &cx).unwrap();
        assert_eq!(out.records[0][1], ("Name".to_owned(), Value::String("Zoë".into())));
        let out = parse(b"\xEF\xBB\xBFEmail\r\nb@x.io", &cx).unwrap();
        assert_eq!(out.records[0][0].0, "Email");
        assert!(out.batch);
    }

    #[test]
    fn the_row_limit_is_named() {
        let cx = ParseContext { max_records: 1, ..ParseContext::default() };
        assert!(parse(b"a\n1\n2\n", &cx).unwrap_err().message.contains("more than 1 rows"));
    }
}
