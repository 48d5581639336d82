//! Normalization: vendor records → canonical [`Lead`](crate::lead::Lead). (stub)
