//! The image tower's runs outside the indexing stream: CLIP preprocessing of one
//! image, batches of images or of preprocessed pixels (padded to a graph's fixed batch
//! size), and the dummy text a combined graph's image runs are fed. The indexing
//! path's batching is `stream`'s.

use ort::value::TensorRef;

use super::{EmbedError, Embedder, Embeddings, extract, preprocess, text_inputs};
use crate::image::RgbImage;

impl Embedder {
    /// CLIP preprocessing of one image into `out` (3 x size x size, CHW, normalised).
    pub fn preprocess(&self, img: &RgbImage, out: &mut [f32]) -> Result<(), EmbedError> {
        let size = self.image_size();
        if img.width == 0 || img.height == 0 || img.data.len() != img.width as usize * img.height as usize * 3 {
            return Err(EmbedError::BadInput(format!(
                "image of {}x{} with {} bytes is not a packed RGB image",
                img.width,
                img.height,
                img.data.len()
            )));
        }
        let resized = if self.manifest.image.resize == "squash" {
            preprocess::resize_squash(&img.data, img.width, img.height, size, self.filter)
        } else {
            preprocess::resize_center_crop(&img.data, img.width, img.height, size, self.filter)
        };
        preprocess::normalise_chw(&resized, size, self.manifest.image.mean, self.manifest.image.std, out);
        Ok(())
    }

    /// Embeds images of any size (preprocessed here).
    pub fn embed_images(&self, images: &[RgbImage]) -> Result<Embeddings, EmbedError> {
        let per = self.pixels_per_image();
        let mut pixels = vec![0f32; per * images.len()];
        for (img, out) in images.iter().zip(pixels.chunks_exact_mut(per)) {
            self.preprocess(img, out)?;
        }
        self.embed_pixels(&pixels)
    }

    /// Embeds already preprocessed images (N x 3 x size x size, concatenated), in
    /// batches of the graph's fixed size when it has one.
    pub fn embed_pixels(&self, pixels: &[f32]) -> Result<Embeddings, EmbedError> {
        let per = self.pixels_per_image();
        if pixels.is_empty() || !pixels.len().is_multiple_of(per) {
            return Err(EmbedError::BadInput(format!(
                "pixel buffer of {} floats is not a whole number of {per}-float images",
                pixels.len()
            )));
        }
        let Some(b) = self.image_batch else {
            return self.run_visual(pixels, pixels.len() / per);
        };
        let mut out = Embeddings {
            dim: self.dim(),
            data: Vec::with_capacity(pixels.len() / per * self.dim()),
        };
        let mut padded = Vec::new();
        for chunk in pixels.chunks(b * per) {
            let n = chunk.len() / per;
            let rows = if n == b {
                chunk
            } else {
                // The last, short batch is padded with blank images whose rows are dropped.
                padded.clear();
                padded.extend_from_slice(chunk);
                padded.resize(b * per, 0.0);
                &padded
            };
            let e = self.run_visual(rows, b)?;
            out.data.extend_from_slice(&e.data[..n * self.dim()]);
        }
        Ok(out)
    }

    /// One run of the image graph on `n` images.
    fn run_visual(&self, pixels: &[f32], n: usize) -> Result<Embeddings, EmbedError> {
        let s = self.image_size() as usize;
        let io = &self.manifest.io;
        let err = |e: ort::Error| EmbedError::Inference {
            what: "preparing the image batch",
            reason: e.to_string(),
        };
        let tensor = TensorRef::from_array_view(([n, 3, s, s], pixels)).map_err(err)?;
        let mut inputs: Vec<(std::borrow::Cow<'_, str>, ort::session::SessionInputValue<'_>)> =
            vec![(io.image_input.as_str().into(), tensor.into())];
        // A combined graph also wants text: the shortest sequence the model knows.
        let dummy = self
            .manifest
            .io
            .combined
            .then(|| self.token_batch(&[self.dummy_tokens()], 1));
        if let Some(batch) = &dummy {
            inputs.extend(batch.inputs(io).map_err(err)?);
        }
        let mut session = self.visual.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session.run(inputs).map_err(|e| EmbedError::Inference {
            what: "running the image tower",
            reason: e.to_string(),
        })?;
        extract(&outputs, &io.image_output, n, n, self.dim(), "the image tower")
    }

    /// The text inputs a combined graph's image runs are fed, as owned tensors (for an
    /// IO binding): (input name, value).
    pub(super) fn dummy_text_tensors(&self) -> Result<Vec<(String, ort::value::DynValue)>, ort::Error> {
        let batch = self.token_batch(&[self.dummy_tokens()], 1);
        let io = &self.manifest.io;
        let shape = [batch.n, batch.len];
        let names = text_inputs(io);
        let mut out = Vec::new();
        for (name, values) in names.iter().zip([&batch.ids, &batch.mask]) {
            let v: ort::value::DynValue = if batch.i32 {
                let v32: Vec<i32> = values.iter().map(|&x| x as i32).collect();
                ort::value::Tensor::from_array((shape, v32))?.into_dyn()
            } else {
                ort::value::Tensor::from_array((shape, values.clone()))?.into_dyn()
            };
            out.push((name.to_string(), v));
        }
        Ok(out)
    }

    /// The smallest valid token sequence (what a combined graph's text side is fed when
    /// only images are wanted).
    pub(super) fn dummy_tokens(&self) -> Vec<u32> {
        let t = &self.manifest.text;
        t.start_id.into_iter().chain([t.end_id]).collect()
    }
}
