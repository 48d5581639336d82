//! Shared test support: spawn gateways, talk to them.

pub mod files;
pub mod gateway;
pub mod imap;
pub mod graph;
pub mod process;
pub mod receiver;
pub mod smtp;
pub mod vendors;

pub use gateway::{GatewayBuilder, each_engine};
pub use receiver::{Mode, TestReceiver};

/// A sample payload in a vendor's real shape (`tests/fixtures/samples/<path>`).
pub fn sample(path: &str) -> Vec<u8> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples").join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read sample {}: {e}", full.display()))
}

/// The value of the environment variable naming a service an `#[ignore]`d test needs.
///
/// Service tests are ignored in a plain `cargo test` (the summary counts them) and run with
/// `cargo test -- --ignored` once `scripts/test-services` has set their variables, so a
/// missing variable here is a failure, never a silent pass.
pub fn service_env(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{var} is unset: run scripts/test-services and source \
             $CARGO_TARGET_DIR/test-services.env before running the ignored service tests"
        ),
    }
}

/// Whether `CI=true` (set by `.ci/run`): a skip is then a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says that (part of) a test did not run, and why. The harness swallows a passing test's
/// `eprintln!`, so this writes to the process's stderr directly, where it shows among the
/// `test … ok` lines; with `CI=true` it fails the test instead, so CI never passes a test that
/// did nothing.
pub fn skip(why: &str) {
    use std::io::Write as _;
    assert!(!in_ci(), "{why} (a skip is a failure with CI=true)");
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    std::io::stderr().write_all(format!("SKIPPED {test}: {why}\n").as_bytes()).ok();
}

/// A fixture of this crate (`tests/fixtures/<path>`).
pub fn fixture(path: &str) -> Vec<u8> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", full.display()))
}

/// The text between `start` and `end` (for XML answers).
pub fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let s = text.find(start).map(|i| i + start.len()).unwrap_or_else(|| panic!("{start} not in {text}"));
    let e = text[s..].find(end).map(|i| s + i).unwrap_or_else(|| panic!("{end} not in {text}"));
    &text[s..e]
}
