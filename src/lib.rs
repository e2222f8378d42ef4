//! vidseek: self-hosted text-to-video semantic search.
//!
//! Write path: `library -> jobs: decode -> embed -> store -> index`.
//! Read path: `api / cli -> search: embed(text) -> index -> store -> segments`.
//! See ARCHITECTURE.md for what each module owns.

pub mod api;
pub mod bench;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod decode;
pub mod embed;
pub mod image;
pub mod index;
pub mod jobs;
pub mod library;
pub mod modelhub;
pub mod search;
pub mod store;
pub mod synth;
