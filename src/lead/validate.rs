//! Validation. (stub)
