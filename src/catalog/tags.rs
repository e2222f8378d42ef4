//! What tagging, tag filters, probes and the label vocabulary read and write: frame tags,
//! saved probes, library settings and cached text vectors.

use super::{Catalog, CatalogError, FrameTag, SavedProbe, Span, SpanTag, TaggedFrame};
use crate::types::{FrameId, VideoId};

impl Catalog {
    /// Indexed videos whose tags are not of `stamp`.
    pub async fn videos_to_tag(&self, stamp: &str) -> Result<Vec<VideoId>, CatalogError> {
        Ok(self.store.videos_to_tag(stamp).await?)
    }

    /// Replaces a video's tags.
    pub async fn put_tags(&self, video: VideoId, stamp: &str, tags: &[FrameTag]) -> Result<(), CatalogError> {
        let done = self.store.put_tags(video, stamp, tags).await;
        self.frames.forget(&[video]);
        Ok(done?)
    }

    /// Every tagged frame, by label, video and place in the video.
    pub async fn tagged_frames(&self) -> Result<Vec<TaggedFrame>, CatalogError> {
        Ok(self.store.tagged_frames().await?)
    }

    /// The frames tagged with a label.
    pub async fn frames_tagged(&self, label: &str) -> Result<Vec<FrameId>, CatalogError> {
        Ok(self.store.frames_tagged(label).await?)
    }

    /// The tags of the frames inside spans, each with its span's index.
    pub async fn tags_in_spans(&self, spans: &[Span]) -> Result<Vec<SpanTag>, CatalogError> {
        let dir = self.directory();
        let firsts = spans.iter().filter_map(|s| dir.get(s.video).map(|l| l.first_frame));
        let Some(videos) = self.videos_of_frames(firsts).await? else {
            return Ok(self.store.tags_in_spans(spans).await?);
        };
        let mut out = Vec::new();
        for (i, s) in spans.iter().enumerate() {
            if let Some(frames) = videos.get(&s.video) {
                for (_, tags) in frames.within(s.start, s.end) {
                    out.extend(tags.iter().map(|(l, p)| SpanTag {
                        span: i,
                        label: l.to_string(),
                        prob: *p,
                    }));
                }
            }
        }
        Ok(out)
    }

    /// Every frame id.
    pub async fn all_frame_ids(&self) -> Result<Vec<FrameId>, CatalogError> {
        Ok(self.store.all_frame_ids().await?)
    }

    /// Saved probes.
    pub async fn probes(&self) -> Result<Vec<SavedProbe>, CatalogError> {
        Ok(self.store.probes().await?)
    }

    /// Saves (or replaces) a probe.
    pub async fn put_probe(&self, p: &SavedProbe) -> Result<(), CatalogError> {
        Ok(self.store.put_probe(p).await?)
    }

    /// Deletes a saved probe; false when there was none of that name.
    pub async fn delete_probe(&self, name: &str) -> Result<bool, CatalogError> {
        Ok(self.store.delete_probe(name).await?)
    }

    /// A library setting (the tag vocabulary, ...), when set.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, CatalogError> {
        Ok(self.store.meta(&format!("setting.{key}")).await?)
    }

    /// Sets a library setting.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), CatalogError> {
        Ok(self.store.set_meta(&format!("setting.{key}"), value).await?)
    }

    /// Cached embeddings of texts (label vocabularies) for `model`.
    pub async fn text_vectors(&self, model: &str, texts: &[String]) -> Result<Vec<(String, Vec<f32>)>, CatalogError> {
        Ok(self.store.text_vectors(model, texts).await?)
    }

    /// Caches embeddings of texts for `model`.
    pub async fn put_text_vectors(&self, model: &str, items: &[(String, Vec<f32>)]) -> Result<(), CatalogError> {
        Ok(self.store.put_text_vectors(model, items).await?)
    }
}
