//! [`ApiError`]: the one place errors become HTTP responses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::error::{Classified, Fault};

/// The one place errors become HTTP responses: `{"message", "code"}` with a status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", msg)
    }
    /// The server cannot do it now for a reason that is not the client's (disk full, a
    /// read-only data folder): 503, with the fix in the message.
    pub fn unavailable(msg: impl std::fmt::Display) -> Self {
        tracing::warn!("{msg}");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", msg.to_string())
    }
    /// A file-system failure of the server (a full disk, a read-only folder: 503).
    pub fn io(e: std::io::Error) -> Self {
        match crate::error::io_fault(&e) {
            Fault::Unavailable => {
                Self::unavailable(format!("{e}; free space or fix the permissions of the library folder"))
            }
            _ => Self::internal(e),
        }
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        tracing::error!("{msg}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", msg.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // What is unavailable (a full disk, a database server restarting) is worth
            // asking again a little later.
            r.insert_header((actix_web::http::header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()));
        }
        r.json(serde_json::json!({"message": self.message, "code": self.code}))
    }
}

/// The `Retry-After` of a 503.
const RETRY_AFTER_SECONDS: u32 = 5;

impl ApiError {
    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
}

/// Every module error becomes a response the same way: its class gives the status, its
/// code the machine-readable code, its message the text. Internal faults are logged.
impl<E: Classified> From<E> for ApiError {
    fn from(e: E) -> Self {
        let status = match e.fault() {
            Fault::BadInput => StatusCode::BAD_REQUEST,
            Fault::NotFound => StatusCode::NOT_FOUND,
            Fault::Conflict => StatusCode::CONFLICT,
            Fault::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Fault::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match e.fault() {
            Fault::Internal => tracing::error!("{e}"),
            Fault::Unavailable => tracing::warn!("{e}"),
            _ => {}
        }
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// Maps actix's own extractor errors (bad JSON, bad query, bad path) to `{message, code}`.
pub(super) fn json_error(err: impl std::fmt::Display) -> actix_web::Error {
    ApiError::bad_request(format!("malformed request: {err}"))
        .with_code("malformed")
        .into()
}
