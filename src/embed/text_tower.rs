//! The text tower's runs: sentences and token ids to vectors, the padded token
//! batches a run is fed, and the queue that combines concurrent small runs (a server's
//! searches) into one. Tokenisation is `text`'s.

use std::sync::Arc;
use std::time::Duration;

use ort::value::TensorRef;

use super::{EmbedError, Embedder, Embeddings, Io, combine, extract};

/// How long the thread running the queue of concurrent text runs waits for the next
/// job before it ends (a search starts another).
const TEXT_RUNNER_LINGER: Duration = Duration::from_millis(100);

impl Embedder {
    /// Embeds sentences. Each batch runs at its longest true token length when the graph
    /// allows (CLIP pools at the end token behind a causal mask, so shorter rows padded
    /// after their end token are unaffected), else padded to the context length.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Embeddings, EmbedError> {
        let ids = texts.iter().map(|t| self.tokenize(t)).collect::<Result<Vec<_>, _>>()?;
        self.embed_token_ids(&ids, None)
    }

    /// [`Self::embed_texts`] for an async caller (the server's searches): the sentences
    /// join the queue of concurrent text runs, and the caller waits for its rows without
    /// a thread of its own. (A graph of a fixed batch size, or more rows than one
    /// combined run takes, runs as one call on a blocking thread.)
    pub async fn embed_texts_async(self: &Arc<Self>, texts: &[&str]) -> Result<Embeddings, EmbedError> {
        let ids = texts.iter().map(|t| self.tokenize(t)).collect::<Result<Vec<_>, _>>()?;
        let panicked = |detail: String| EmbedError::Inference {
            what: "running the text tower",
            reason: format!("the run panicked{detail}"),
        };
        if self.text.batch.is_some() || ids.is_empty() || ids.len() > combine::MAX_ROWS || ids.iter().any(Vec::is_empty)
        {
            let m = self.clone();
            return tokio::task::spawn_blocking(move || m.embed_token_ids(&ids, None))
                .await
                .map_err(|e| panicked(format!(": {e}")))?;
        }
        let n = ids.len();
        // The queue's runner: a thread of its own started by the caller (the searches'
        // threads run at normal priority; a pool thread may have been started by the
        // niced indexing work), kept while queries keep coming.
        let start = || {
            let m = self.clone();
            let spawned = std::thread::Builder::new()
                .name("vidseek-text".into())
                .spawn(move || m.run_text_queue(TEXT_RUNNER_LINGER));
            if let Err(e) = spawned {
                tracing::warn!("cannot start a thread for the text tower ({e}); running it on the blocking pool");
                let m = self.clone();
                tokio::task::spawn_blocking(move || m.run_text_queue(Duration::ZERO));
            }
        };
        self.text_queue
            .run_async(ids, n, start)
            .await
            .unwrap_or_else(|| Err(panicked(" (see the log)".into())))
    }

    /// Runs the queue of concurrent text runs until it has been empty for `linger`.
    fn run_text_queue(&self, linger: Duration) {
        self.text_queue.drain(|jobs| self.run_combined(jobs), linger);
    }

    /// Embeds token-id rows, padded with the manifest's pad id to `pad_to` (or to the
    /// longest row, or to the length the graph or the manifest fixes), in batches of the
    /// graph's fixed size when it has one.
    pub fn embed_token_ids(&self, rows: &[Vec<u32>], pad_to: Option<usize>) -> Result<Embeddings, EmbedError> {
        if rows.is_empty() || rows.iter().any(|r| r.is_empty()) {
            return Err(EmbedError::BadInput("no token ids to embed".into()));
        }
        let Some(b) = self.text.batch else {
            if pad_to.is_none() && rows.len() <= combine::MAX_ROWS {
                // Queries of concurrent requests share a run.
                return self
                    .text_queue
                    .run(rows.to_vec(), rows.len(), |jobs| self.run_combined(jobs));
            }
            return self.run_textual(rows, pad_to, rows.len());
        };
        let mut out = Embeddings {
            dim: self.dim(),
            data: Vec::with_capacity(rows.len() * self.dim()),
        };
        for chunk in rows.chunks(b) {
            let mut batch = chunk.to_vec();
            // Pad a short batch with copies of its first row; their vectors are dropped.
            batch.resize(b, chunk[0].clone());
            let e = self.run_textual(&batch, pad_to, b)?;
            out.data.extend_from_slice(&e.data[..chunk.len() * self.dim()]);
        }
        Ok(out)
    }

    /// One run of the text graph on several callers' rows (each padded to the longest
    /// row of all, as within one call), split back per caller. Should the run fail, each
    /// job runs alone so that a failure is reported to the caller it belongs to.
    fn run_combined(&self, jobs: Vec<Vec<Vec<u32>>>) -> Vec<Result<Embeddings, EmbedError>> {
        if jobs.len() > 1 {
            let all: Vec<Vec<u32>> = jobs.iter().flatten().cloned().collect();
            if let Ok(e) = self.run_textual(&all, None, all.len()) {
                let dim = self.dim();
                let mut at = 0;
                return jobs
                    .iter()
                    .map(|j| {
                        let data = e.data[at * dim..(at + j.len()) * dim].to_vec();
                        at += j.len();
                        Ok(Embeddings { dim, data })
                    })
                    .collect();
            }
        }
        jobs.iter().map(|j| self.run_textual(j, None, j.len())).collect()
    }

    /// Ids and mask of `rows` padded to one length: the graph's fixed length, else
    /// `pad_to` or the longest row.
    pub(super) fn token_batch(&self, rows: &[Vec<u32>], pad_to: usize) -> TokenBatch {
        let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
        let len = self.text.fixed_len.unwrap_or(pad_to.max(longest));
        let n = rows.len();
        let pad = self.manifest.text.pad_id as i64;
        let mut ids = vec![pad; n * len];
        let mut mask = vec![0i64; n * len];
        for (i, r) in rows.iter().enumerate() {
            for (j, &t) in r.iter().enumerate().take(len) {
                ids[i * len + j] = t as i64;
                mask[i * len + j] = 1;
            }
        }
        TokenBatch {
            n,
            len,
            ids,
            mask,
            i32: self.text.ids_i32,
        }
    }

    /// One run of the text graph on `n` rows.
    fn run_textual(&self, rows: &[Vec<u32>], pad_to: Option<usize>, n: usize) -> Result<Embeddings, EmbedError> {
        let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
        let batch = self.token_batch(rows, pad_to.unwrap_or(longest));
        if longest > batch.len || batch.len > self.manifest.text.context_length {
            return Err(EmbedError::BadInput(format!(
                "{longest} tokens do not fit the context length {}",
                self.manifest.text.context_length
            )));
        }
        let io = &self.manifest.io;
        let err = |e: ort::Error| EmbedError::Inference {
            what: "preparing the token batch",
            reason: e.to_string(),
        };
        let mut inputs = batch.inputs(io).map_err(err)?;
        // A combined graph also wants an image: one blank one.
        let blank = io.combined.then(|| vec![0f32; self.pixels_per_image()]);
        if let Some(px) = &blank {
            let s = self.image_size() as usize;
            inputs.push((
                io.image_input.as_str().into(),
                TensorRef::from_array_view(([1, 3, s, s], &px[..])).map_err(err)?.into(),
            ));
        }
        let mut session = self.textual.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session.run(inputs).map_err(|e| EmbedError::Inference {
            what: "running the text tower",
            reason: e.to_string(),
        })?;
        extract(&outputs, &io.text_output, n, n, self.dim(), "the text tower")
    }
}

/// A padded batch of token ids with its attention mask.
pub(super) struct TokenBatch {
    pub(super) n: usize,
    pub(super) len: usize,
    pub(super) ids: Vec<i64>,
    pub(super) mask: Vec<i64>,
    pub(super) i32: bool,
}

impl TokenBatch {
    /// The graph inputs: ids, and the mask when the graph takes one, in the graph's
    /// integer type.
    pub(super) fn inputs<'a>(
        &'a self,
        io: &'a Io,
    ) -> Result<Vec<(std::borrow::Cow<'a, str>, ort::session::SessionInputValue<'a>)>, ort::Error> {
        let shape = [self.n, self.len];
        let mut out: Vec<(std::borrow::Cow<'a, str>, ort::session::SessionInputValue<'a>)> = Vec::new();
        let mut push = |name: &'a str, v: &'a [i64]| -> Result<(), ort::Error> {
            let value: ort::session::SessionInputValue<'a> = if self.i32 {
                let v32: Vec<i32> = v.iter().map(|&x| x as i32).collect();
                ort::value::Tensor::from_array((shape, v32))?.into()
            } else {
                TensorRef::from_array_view((shape, v))?.into()
            };
            out.push((name.into(), value));
            Ok(())
        };
        push(io.text_input.as_str(), &self.ids)?;
        if let Some(m) = &io.text_mask {
            push(m.as_str(), &self.mask)?;
        }
        Ok(out)
    }
}
