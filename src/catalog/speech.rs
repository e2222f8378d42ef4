//! The library's speech settings (which speech model, on or off: remembered in the
//! store's `meta`, so a later `index` or the server hears files the same way) and the
//! reads of a video's transcript (`vidseek transcript`, `GET /api/videos/{id}/transcript`).

use std::path::{Path, PathBuf};

use super::{Catalog, CatalogError, Text, TextKind};
use crate::types::VideoId;

const SPEECH_MODEL: &str = "speech_model";
const SPEECH_MODE: &str = "speech_mode";

impl Catalog {
    /// The speech model the library recognises speech with, when one was given.
    pub async fn speech_model(&self) -> Result<Option<PathBuf>, CatalogError> {
        Ok(self.store.meta(SPEECH_MODEL).await?.map(PathBuf::from))
    }

    /// Remembers the speech model (absolute).
    pub async fn remember_speech_model(&self, dir: &Path) -> Result<(), CatalogError> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        Ok(self.store.set_meta(SPEECH_MODEL, &dir.display().to_string()).await?)
    }

    /// The `--speech` mode last asked for ("auto", "on", "off"), when one was.
    pub async fn speech_mode(&self) -> Result<Option<String>, CatalogError> {
        Ok(self.store.meta(SPEECH_MODE).await?)
    }

    /// Remembers the `--speech` mode.
    pub async fn remember_speech_mode(&self, mode: &str) -> Result<(), CatalogError> {
        Ok(self.store.set_meta(SPEECH_MODE, mode).await?)
    }

    /// The recognised speech of one video, by start time.
    pub async fn transcript(&self, video: VideoId) -> Result<Vec<Text>, CatalogError> {
        Ok(self.store.texts_of(video, TextKind::Speech).await?)
    }
}
