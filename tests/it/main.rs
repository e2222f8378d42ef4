//! All integration tests in one binary (faster links, shared helpers in `common`), one
//! module per feature.

mod api;
mod auth;
mod bad_input;
mod browser;
mod clips;
mod common;
mod concurrency;
mod decode;
mod demo;
mod embed;
mod embed_stream;
mod index;
mod jobs;
mod library;
mod model_import;
mod model_package;
mod model_pull;
mod ocr;
mod ocr_bad_input;
mod ocr_footage;
mod ocr_pull;
mod ocr_search;
mod openapi;
mod runtime;
mod search;
mod setup;
mod speech;
mod speech_footage;
mod store_backends;
mod subtitles;
mod switch;
mod timelines;
mod transfer;
mod upload;
mod watch;
