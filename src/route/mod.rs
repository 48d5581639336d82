//! Route: which buyers may take a lead, and when.

pub mod caps;
pub mod schedule;
