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

/// The directory of the shared sample payloads.
pub fn sample(path: &str) -> Vec<u8> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples").join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read sample {}: {e}", full.display()))
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
