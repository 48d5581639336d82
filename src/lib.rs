//! leadgate: a lead-ingestion gateway.
//!
//! ```text
//!  intake channels              core pipeline (one code path)
//!  HTTP POST (json/form/xml) ┐
//!  e-mail (IMAP, IDLE)       ├─► Submission ─► parse ─► normalize ─► validate ─► dedupe ─► score ─► route ─► deliver / offer
//!  FTP drop (csv/xml/xlsx)   │   (raw bytes,   (records) (Lead)      (problems)  (keys,
//!  file import (CLI)         ┘    stored first)                                   window)
//! ```
//!
//! Modules are declared in pipeline order.

pub mod parse;
pub mod lead;
