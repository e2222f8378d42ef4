//! All integration tests in one binary (faster links, shared helpers in `common`).

mod common;
mod embed;
