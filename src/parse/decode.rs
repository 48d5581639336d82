//! Text encodings of vendor files: which one a file is in, and a streaming decoder to
//! UTF-8.
//!
//! Spreadsheet programs write CSV in whatever their platform likes: UTF-8 with a BOM
//! (Excel's "CSV UTF-8"), Windows-1252 (Excel's plain "CSV" on Western Windows), UTF-16LE
//! with a BOM ("Unicode text"). Detection, first hit wins:
//! 1. a byte-order mark (UTF-8, UTF-16LE, UTF-16BE);
//! 2. UTF-16 without a BOM: NUL bytes in the head, mostly at odd (LE) or even (BE) offsets;
//! 3. UTF-8, if the *whole* file is valid UTF-8 (checked while its digest is computed, so
//!    a stray Windows-1252 byte on row 90 000 is not decoded as garbage);
//! 4. otherwise Windows-1252, which decodes every byte (so nothing is refused).
//!
//! A per-source `encoding` label overrides detection.

use std::io::{self, Read};

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

use super::ParseError;

/// How many leading bytes [`detect`] looks at for BOMs and UTF-16 NULs.
pub const HEAD_BYTES: usize = 4096;

/// The encoding of a file and the length of its byte-order mark.
pub fn detect(head: &[u8], whole_is_utf8: bool) -> (&'static Encoding, usize) {
    if head.starts_with(b"\xEF\xBB\xBF") {
        return (UTF_8, 3);
    }
    if head.starts_with(b"\xFF\xFE") {
        return (UTF_16LE, 2);
    }
    if head.starts_with(b"\xFE\xFF") {
        return (UTF_16BE, 2);
    }
    let sample = &head[..head.len().min(HEAD_BYTES)];
    let (mut even, mut odd) = (0usize, 0usize);
    for (i, b) in sample.iter().enumerate() {
        if *b == 0 {
            if i % 2 == 0 { even += 1 } else { odd += 1 }
        }
    }
    let pairs = sample.len() / 2;
    if pairs > 0 && odd * 4 > pairs && odd > even * 4 {
        return (UTF_16LE, 0);
    }
    if pairs > 0 && even * 4 > pairs && even > odd * 4 {
        return (UTF_16BE, 0);
    }
    if whole_is_utf8 { (UTF_8, 0) } else { (WINDOWS_1252, 0) }
}

/// The encoding named by a per-source label, or detected; with its BOM length.
pub fn choose(
    label: Option<&str>,
    head: &[u8],
    whole_is_utf8: bool,
) -> Result<(&'static Encoding, usize), ParseError> {
    match label {
        None => Ok(detect(head, whole_is_utf8)),
        Some(l) => {
            let enc = Encoding::for_label(l.trim().as_bytes())
                .ok_or_else(|| ParseError::new(format!("unknown text encoding {l:?}")))?;
            let bom = match Encoding::for_bom(head) {
                Some((b, len)) if b == enc => len,
                _ => 0,
            };
            Ok((enc, bom))
        }
    }
}

/// Checks UTF-8 validity of a stream fed in arbitrary pieces.
#[derive(Debug, Default)]
pub struct Utf8Check {
    /// The bytes of a sequence cut by the end of the previous piece.
    pending: Vec<u8>,
    invalid: bool,
}

impl Utf8Check {
    pub fn update(&mut self, mut piece: &[u8]) {
        // Complete a sequence cut by the previous piece, one byte at a time.
        while !self.invalid && !self.pending.is_empty() && !piece.is_empty() {
            self.pending.push(piece[0]);
            piece = &piece[1..];
            match std::str::from_utf8(&self.pending) {
                Ok(_) => self.pending.clear(),
                Err(e) if e.error_len().is_some() => self.invalid = true,
                Err(_) => {}
            }
        }
        if self.invalid || !self.pending.is_empty() {
            return;
        }
        match std::str::from_utf8(piece) {
            Ok(_) => {}
            Err(e) if e.error_len().is_some() => self.invalid = true,
            Err(e) => self.pending = piece[e.valid_up_to()..].to_vec(),
        }
    }

    /// Valid UTF-8 from start to end (a sequence cut at the very end is invalid).
    pub fn finish(&self) -> bool {
        !self.invalid && self.pending.is_empty()
    }
}

/// Decodes `R` (in `encoding`, BOM already skipped) to UTF-8 as it is read.
pub struct DecodeReader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    output: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<R: Read> DecodeReader<R> {
    pub fn new(inner: R, encoding: &'static Encoding) -> Self {
        Self {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            input: vec![0; 64 * 1024],
            output: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.output.len() {
                let n = buf.len().min(self.output.len() - self.pos);
                buf[..n].copy_from_slice(&self.output[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            let n = self.inner.read(&mut self.input)?;
            let last = n == 0;
            let room = self.decoder.max_utf8_buffer_length(n).unwrap_or(n * 3 + 16);
            self.output.clear();
            self.output.resize(room, 0);
            let (_, _, written, _) = self.decoder.decode_to_utf8(&self.input[..n], &mut self.output, last);
            self.output.truncate(written);
            self.pos = 0;
            self.done = last;
        }
    }
}

/// Decodes a whole in-memory payload to UTF-8 text (lossless for valid input; invalid
/// sequences become U+FFFD).
pub fn decode_all(raw: &[u8], label: Option<&str>) -> Result<String, ParseError> {
    let whole_is_utf8 = std::str::from_utf8(raw).is_ok()
        || raw.strip_prefix(b"\xEF\xBB\xBF").is_some_and(|r| std::str::from_utf8(r).is_ok());
    let (encoding, bom) = choose(label, raw, whole_is_utf8)?;
    let body = raw.get(bom..).unwrap_or_default();
    let (text, _) = encoding.decode_without_bom_handling(body);
    Ok(text.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str, bom: bool) -> Vec<u8> {
        let mut v = if bom { vec![0xFF, 0xFE] } else { vec![] };
        for u in s.encode_utf16() {
            v.extend_from_slice(&u.to_le_bytes());
        }
        v
    }

    #[test]
    fn detection_order() {
        assert_eq!(detect(b"\xEF\xBB\xBFa,b", true), (UTF_8, 3));
        assert_eq!(detect(&utf16le("a,b\r\n", true), false), (UTF_16LE, 2));
        assert_eq!(detect(&utf16le("Name,Email\r\nAna,a@x.io\r\n", false), false).0, UTF_16LE);
        assert_eq!(detect(b"caf\xE9", false), (WINDOWS_1252, 0));
        assert_eq!(detect("café".as_bytes(), true), (UTF_8, 0));
    }

    #[test]
    fn streaming_utf8_check_handles_split_sequences() {
        let text = "Chloé Martín €".as_bytes();
        for cut in 0..text.len() {
            let mut c = Utf8Check::default();
            c.update(&text[..cut]);
            c.update(&text[cut..]);
            assert!(c.finish(), "cut at {cut}");
        }
        let mut c = Utf8Check::default();
        c.update(b"ok \xE9 not");
        assert!(!c.finish());
        let mut c = Utf8Check::default();
        c.update(b"cut \xE2\x82");
        assert!(!c.finish());
    }

    #[test]
    fn decode_reader_and_decode_all_agree() {
        let raw = utf16le("Name\r\nJosé\r\n", true);
        assert_eq!(decode_all(&raw, None).unwrap(), "Name\r\nJosé\r\n");
        let mut out = String::new();
        DecodeReader::new(&raw[2..], UTF_16LE).read_to_string(&mut out).unwrap();
        assert_eq!(out, "Name\r\nJosé\r\n");
        assert_eq!(decode_all(b"Mart\xEDn", None).unwrap(), "Martín");
        assert_eq!(decode_all(b"x", Some("latin1")).unwrap(), "x");
        assert!(decode_all(b"x", Some("klingon")).is_err());
    }
}
