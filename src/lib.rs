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

pub mod api;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod dedupe;
pub mod route;
pub mod intake;
pub mod lead;
pub mod parse;
pub mod pipeline;
pub mod replay;
pub mod store;
pub mod deliver;
pub mod submission;
pub mod telemetry;
