//! The library's on-screen text settings (which OCR model, on or off: remembered in the
//! store's `meta`, so a later `index` or the server reads text the same way) and the
//! reads of a video's on-screen text (`vidseek text`, `GET /api/videos/{id}/text`).

use std::path::{Path, PathBuf};

use super::{Catalog, CatalogError, Text, TextKind};
use crate::types::VideoId;

const OCR_MODEL: &str = "ocr_model";
const OCR_MODE: &str = "ocr_mode";

impl Catalog {
    /// The OCR model folder the library reads on-screen text with, when one was given.
    pub async fn ocr_model(&self) -> Result<Option<PathBuf>, CatalogError> {
        Ok(self.store.meta(OCR_MODEL).await?.map(PathBuf::from))
    }

    /// Remembers the OCR model folder (absolute).
    pub async fn remember_ocr_model(&self, dir: &Path) -> Result<(), CatalogError> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        Ok(self.store.set_meta(OCR_MODEL, &dir.display().to_string()).await?)
    }

    /// The `--ocr` mode last asked for ("auto", "on", "off"), when one was.
    pub async fn ocr_mode(&self) -> Result<Option<String>, CatalogError> {
        Ok(self.store.meta(OCR_MODE).await?)
    }

    /// Remembers the `--ocr` mode.
    pub async fn remember_ocr_mode(&self, mode: &str) -> Result<(), CatalogError> {
        Ok(self.store.set_meta(OCR_MODE, mode).await?)
    }

    /// The on-screen text of one video, by start time.
    pub async fn screen_text(&self, video: VideoId) -> Result<Vec<Text>, CatalogError> {
        Ok(self.store.texts_of(video, TextKind::Ocr).await?)
    }

    /// One video's texts of one kind (subtitle cues, on-screen text), by start time.
    pub async fn texts_of(&self, video: VideoId, kind: TextKind) -> Result<Vec<Text>, CatalogError> {
        Ok(self.store.texts_of(video, kind).await?)
    }
}
