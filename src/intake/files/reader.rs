//! Reading a file on a blocking thread: its digest first, then its rows, handed over in
//! chunks through a small bounded channel (so at most a few chunks are in memory
//! whatever the file's size, and parsing overlaps with committing).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::parse::decode::{self, DecodeReader, Utf8Check};
use crate::parse::table::Row;
use crate::parse::{self, Format, ParseContext, ParseError};

/// What one pass over the bytes tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// SHA-256, hex: with the row number, the identity of every row of the file.
    pub digest: String,
    pub size: u64,
    /// The whole file is valid UTF-8 (for encoding detection).
    pub utf8: bool,
    /// The first bytes (BOM, UTF-16 detection).
    pub head: Vec<u8>,
}

/// Hashes the file and checks its encoding in one streaming pass (blocking).
pub fn inspect(path: &Path) -> std::io::Result<Facts> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut utf8 = Utf8Check::default();
    let mut head = Vec::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let piece = &buf[..n];
        if head.len() < decode::HEAD_BYTES {
            let take = (decode::HEAD_BYTES - head.len()).min(n);
            head.extend_from_slice(&piece[..take]);
        }
        let body = if size == 0 { piece.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(piece) } else { piece };
        utf8.update(body);
        hasher.update(piece);
        size += n as u64;
    }
    Ok(Facts { digest: hex::encode(hasher.finalize()), size, utf8: utf8.finish(), head })
}

/// What the reader sends.
#[derive(Debug)]
pub enum Event {
    /// The column names (tabular formats; empty for the others). Always first.
    Header(Vec<String>),
    Chunk(Chunk),
    /// The file cannot be read further; the chunks sent before stand.
    Failed(ParseError),
}

/// Consecutive rows, `chunk_rows` of them except the last.
#[derive(Debug)]
pub struct Chunk {
    /// 0-based: the chunk's place in the file, part of its idempotency key.
    pub index: u64,
    pub rows: Vec<Row>,
}

/// How to read a file.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    pub path: PathBuf,
    pub format: Format,
    pub facts: Facts,
    pub parse: ParseContext,
    pub chunk_rows: usize,
    pub max_rows: u64,
    pub max_document_bytes: u64,
}

/// Starts reading on the blocking pool. Dropping the receiver stops the reader.
pub fn spawn(plan: ReadPlan) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let tx_panic = tx.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&plan, &tx)));
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(ParseError::new("internal parser error (the file is kept in the archive)")),
        };
        if let Some(e) = failure {
            let _ignored = tx_panic.blocking_send(Event::Failed(e));
        }
    });
    rx
}

/// Gathers rows into chunks and sends them; `false` once the receiver is gone.
struct Chunker<'a> {
    tx: &'a mpsc::Sender<Event>,
    size: usize,
    index: u64,
    rows: Vec<Row>,
    taken: u64,
    max_rows: u64,
    over_limit: bool,
    header_sent: bool,
    closed: bool,
}

impl Chunker<'_> {
    fn header(&mut self, columns: &[String]) {
        if !self.header_sent {
            self.header_sent = true;
            self.closed |= self.tx.blocking_send(Event::Header(columns.to_vec())).is_err();
        }
    }

    fn row(&mut self, row: Row) -> bool {
        self.header(&[]);
        if self.taken == self.max_rows {
            self.over_limit = true;
            return false;
        }
        self.taken += 1;
        self.rows.push(row);
        if self.rows.len() == self.size {
            self.flush();
        }
        !self.closed
    }

    fn flush(&mut self) {
        if self.rows.is_empty() || self.closed {
            return;
        }
        let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(self.size));
        let chunk = Chunk { index: self.index, rows };
        self.index += 1;
        self.closed |= self.tx.blocking_send(Event::Chunk(chunk)).is_err();
    }
}

fn read(plan: &ReadPlan, tx: &mpsc::Sender<Event>) -> Result<(), ParseError> {
    let chunker = std::cell::RefCell::new(Chunker {
        tx,
        size: plan.chunk_rows.max(1),
        index: 0,
        rows: Vec::with_capacity(plan.chunk_rows.max(1)),
        taken: 0,
        max_rows: plan.max_rows,
        over_limit: false,
        header_sent: false,
        closed: false,
    });
    let header = |h: &[String]| chunker.borrow_mut().header(h);
    let row = |r: Row| chunker.borrow_mut().row(r);
    let open = || File::open(&plan.path).map_err(|e| ParseError::new(format!("cannot open the file: {e}")));
    match plan.format {
        Format::Csv | Format::Jsonl => {
            let (encoding, bom) =
                decode::choose(plan.parse.table.encoding.as_deref(), &plan.facts.head, plan.facts.utf8)?;
            let mut file = open()?;
            file.seek(SeekFrom::Start(bom as u64))
                .map_err(|e| ParseError::new(format!("cannot read: {e}")))?;
            let input: Box<dyn Read> = if encoding == encoding_rs::UTF_8 {
                Box::new(BufReader::with_capacity(256 * 1024, file))
            } else {
                Box::new(DecodeReader::new(file, encoding))
            };
            if plan.format == Format::Csv {
                parse::csv::read_rows(input, &plan.parse.table, &mut { header }, &mut { row })?;
            } else {
                parse::jsonl::read_rows(input, &mut { row })?;
            }
        }
        Format::Xlsx => {
            let file = BufReader::new(open()?);
            parse::xlsx::read_rows(file, &plan.parse.table, &mut { header }, &mut { row })?;
        }
        _ => {
            if plan.facts.size > plan.max_document_bytes {
                return Err(ParseError::new(format!(
                    "{} files are read whole and this one is larger than the limit of {} bytes",
                    plan.format.name().to_uppercase(),
                    plan.max_document_bytes
                )));
            }
            let bytes =
                std::fs::read(&plan.path).map_err(|e| ParseError::new(format!("cannot read: {e}")))?;
            let cx = ParseContext {
                max_records: usize::try_from(plan.max_rows).unwrap_or(usize::MAX),
                ..plan.parse.clone()
            };
            let output = parse::parse(plan.format, &bytes, &cx)?;
            drop(bytes);
            for (i, record) in output.records.into_iter().enumerate() {
                if !row(Row { number: i as u64 + 1, record, cells: Vec::new() }) {
                    break;
                }
            }
        }
    }
    let mut chunker = chunker.into_inner();
    chunker.header(&[]);
    chunker.flush();
    if chunker.over_limit {
        return Err(ParseError::new(format!(
            "the file has more than {} rows (files.max_rows); the rows after that were not read",
            plan.max_rows
        )));
    }
    Ok(())
}
