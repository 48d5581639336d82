#![allow(clippy::unwrap_used, clippy::expect_used)] // test support code: a panic is a failed test
//! Integration tests: user stories against a real gateway on a real socket, with a real
//! SQLite file (and PostgreSQL when LEADGATE_TEST_POSTGRES is set). One binary, so the
//! crate links once.
//!
//! Tests that need a service (IMAP, SMTP, two instances on PostgreSQL) are `#[ignore]`d with
//! the variable they need, so a plain `cargo test` counts them as ignored rather than passing
//! them empty; `cargo test -- --ignored` runs them (and fails without the variable).

mod support;

mod admin;
mod check;
mod claim;
mod deliver_email;
mod deliver_webhook;
mod dedupe;
mod email_cli;
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
mod review;
mod routing;
mod vendor_google_ads;
mod vendor_meta;
mod vendor_forms;
mod vendor_cli;

/// Every test runs on SQLite, and again on PostgreSQL when LEADGATE_TEST_POSTGRES is set.
/// Ignored, so that a plain `cargo test` shows in its summary that the PostgreSQL runs may
/// have been left out; run with the ignored tests, it fails unless they were not.
#[test]
#[ignore = "needs LEADGATE_TEST_POSTGRES (without it every test runs on SQLite only)"]
fn every_test_also_runs_on_postgresql() {
    support::service_env("LEADGATE_TEST_POSTGRES");
}
mod web;
