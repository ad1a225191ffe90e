//! The one error type of the crate: a sentence naming the problem and its position, the
//! byte span it concerns, and an optional hint for fixing it.

use crate::ast::Span;

/// A query that cannot be parsed or lowered.
///
/// `message` is one sentence that includes the byte position (`at position N`); `span` is
/// the offending part of the query; `hint`, when present, suggests a fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub message: String,
    pub span: Span,
    pub hint: Option<String>,
}

impl QueryError {
    pub(crate) fn new(message: impl Into<String>, span: Span) -> QueryError {
        QueryError {
            message: message.into(),
            span,
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> QueryError {
        self.hint = Some(hint.into());
        self
    }
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;
