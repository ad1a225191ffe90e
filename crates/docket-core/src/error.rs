//! The one error type of the domain layer and its stable xyOps codes.
//!
//! Every failure a client can cause maps to a short `code` and a sentence that says what was
//! wrong; the wire layer turns it into `{code, description}` and an HTTP status.

/// Result alias for the domain layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A domain error. Each variant is one stable xyOps error code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No credentials, or expired ones.
    #[error("{0}")]
    Session(String),
    /// Bad API key, unparsable input or unknown call.
    #[error("{0}")]
    Api(String),
    /// Missing privilege or category.
    #[error("{0}")]
    Access(String),
    /// Over a key's request rate.
    #[error("{0}")]
    Rate(String),
    /// Bad ticket input or a ticket operation that cannot be done.
    #[error("{0}")]
    Ticket(String),
    /// The thing asked for does not exist (or may not be seen).
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    File(String),
    #[error("{0}")]
    User(String),
    #[error("{0}")]
    Tag(String),
    #[error("{0}")]
    Category(String),
    #[error("{0}")]
    Role(String),
    /// A change-feed cursor older than the retention: events after it were pruned.
    #[error("{0}")]
    CursorExpired(String),
    /// A failure of ours (storage, IO); the message is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable xyOps `code` for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Session(_) => "session",
            Error::Api(_) => "api",
            Error::Access(_) => "access",
            Error::Rate(_) => "rate",
            Error::Ticket(_) => "ticket",
            Error::NotFound(_) => "notfound",
            Error::File(_) => "file",
            Error::User(_) => "user",
            Error::Tag(_) => "tag",
            Error::Category(_) => "category",
            Error::Role(_) => "role",
            Error::CursorExpired(_) => "cursor_expired",
            Error::Internal(_) => "internal",
        }
    }

    /// The sentence shown to the client. Internal details are never shown.
    pub fn description(&self) -> String {
        match self {
            Error::Internal(_) => {
                "An internal error occurred; the operation was not completed. Check the server log."
                    .to_string()
            }
            other => other.to_string(),
        }
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        Error::Internal(err.to_string())
    }

    pub fn ticket(msg: impl Into<String>) -> Self {
        Error::Ticket(msg.into())
    }

    /// A search stopped at its deadline (`database.search_timeout_sec`): the caller's to
    /// narrow, so a `ticket` error, never `internal`.
    pub fn search_timeout(timeout: std::time::Duration) -> Self {
        Error::Ticket(format!(
            "Search took longer than {} and was stopped; narrow the query (fewer words, a \
             field, a date range)",
            seconds(timeout)
        ))
    }
}

/// `10 s`, `1.5 s`.
fn seconds(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{} s", d.as_secs_f64())
    }
}
