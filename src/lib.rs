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
//! Modules are declared in pipeline order; `config`, `store`, `api` and `app` hold it together.

pub mod clock;
pub mod config;
pub mod auth;
pub mod submission;
pub mod intake;
pub mod parse;
pub mod lead;
pub mod dedupe;
pub mod score;
pub mod route;
pub mod pipeline;
pub mod store;
pub mod deliver;
pub mod claim;
pub mod replay;
pub mod report;
pub mod api;
pub mod telemetry;
pub mod app;
