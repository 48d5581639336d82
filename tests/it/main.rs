#![allow(clippy::unwrap_used, clippy::expect_used)] // test support code: a panic is a failed test
//! Integration tests: user stories against a real gateway on a real socket, with a real
//! SQLite file (and PostgreSQL when LEADGATE_TEST_POSTGRES is set). One binary, so the
//! crate links once.

mod support;

mod admin;
mod check;
mod claim;
mod deliver_email;
mod deliver_webhook;
mod dedupe;
mod idempotency;
mod intake_files;
mod intake_ftp;
mod intake_email;
mod intake_http;
mod lifecycle;
mod multi_instance;
mod reload;
mod replay;
mod report;
mod routing;
mod vendor_google_ads;
mod vendor_meta;
mod vendor_forms;
mod vendor_cli;
mod web;
