//! All integration tests in one binary (faster links, shared helpers in `common`).

mod api;
mod bad_input;
mod browser;
mod claims;
mod common;
mod concurrency;
mod decode;
mod embed;
mod fuzz;
mod http;
mod hub;
mod index;
mod replicas;
mod search;
mod switch;
mod transfer;
