//! Intake channels: each turns its protocol's input into [`Submission`](crate::submission::Submission)s
//! and the committed answer back into its protocol's acknowledgement.

pub mod http;
