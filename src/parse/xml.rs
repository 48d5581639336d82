//! xml parser (stub).
use super::{ParseContext, ParseError, ParseOutput};

pub fn parse(_raw: &[u8], _cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    Err(ParseError::new("not implemented"))
}
