//! `error`: the one classification of failures. Every module keeps its own error enum
//! (what was being done, which file, the fix), and says once, through [`Classified`],
//! whose fault it is; adapters map the class (HTTP status, exit code) in one place and
//! never look at the variants.

/// Whose fault a failure is, and so what a client can do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The request or the file given is wrong (a bad query, a corrupt video, a folder
    /// that is not a model): fix it and ask again. HTTP 400.
    BadInput,
    /// What was asked for does not exist. HTTP 404.
    NotFound,
    /// It cannot be done in the present state (another process holds the folder, the
    /// library uses another model, a switch is under way). HTTP 409.
    Conflict,
    /// The machine cannot do it now (disk full, read-only folder, a lock held
    /// elsewhere, a download failing): not the client's fault; retry after the fix. HTTP 503.
    Unavailable,
    /// A fault of vidseek itself (a bug, a panicked worker). HTTP 500, logged.
    Internal,
}

impl Fault {
    /// The default machine-readable code of the class.
    pub fn code(self) -> &'static str {
        match self {
            Fault::BadInput => "bad_request",
            Fault::NotFound => "not_found",
            Fault::Conflict => "conflict",
            Fault::Unavailable => "unavailable",
            Fault::Internal => "internal",
        }
    }
}

/// Implemented by every module's error: its class and a stable machine-readable code.
pub trait Classified: std::error::Error {
    fn fault(&self) -> Fault;

    /// A code more precise than the class's (e.g. "empty_query", "model_mismatch").
    fn code(&self) -> &'static str {
        self.fault().code()
    }
}

/// The class of an I/O failure: a full disk or a read-only file system is the
/// machine's state, anything else an internal fault.
pub fn io_fault(e: &std::io::Error) -> Fault {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::StorageFull | K::ReadOnlyFilesystem | K::PermissionDenied | K::QuotaExceeded => Fault::Unavailable,
        K::NotFound => Fault::NotFound,
        _ => Fault::Internal,
    }
}
