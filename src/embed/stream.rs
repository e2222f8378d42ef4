//! Device-resident image batching: the indexing path's way into the image tower.
//!
//! A stream owns a few staging *slots*. Each holds a host buffer (page-locked on CUDA,
//! so copies run at full speed without a bounce buffer), a device buffer (CUDA only),
//! an output buffer and an ONNX Runtime IO binding set up once with those addresses.
//! The caller writes preprocessed pixels straight into a slot's host buffer, the copy
//! to the device runs on the caller's thread (ONNX Runtime's copy session, its own CUDA
//! stream) while a worker thread runs the previous batch on the model's stream, and the
//! embeddings come back into host memory once per batch. Two batches are in flight.
//!
//! On CUDA every batch is padded to one of a few fixed sizes (the maximum, then each
//! quarter of it), so the model sees a handful of shapes rather than one per file end.
//! On the CPU a padded row is pure waste, so each batch runs at its own size; the host
//! buffer is the model input itself (no copy at all).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, Session};
use ort::value::Tensor;

use super::{EmbedError, Embedder, Embeddings, extract};

/// Batches in flight at once: one being filled and copied, one running.
const DEPTH: usize = 2;
/// Idle slots kept for reuse (per-size buffers beyond this are freed).
const POOL: usize = 2 * DEPTH + 2;

/// Which batch sizes the model sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Each batch at its own size (the CPU default).
    Exact,
    /// Rounded up to `max`, `max/4`, `max/16`, ... (the CUDA default).
    Buckets,
    /// Always `max`: the graph is fixed at that batch size.
    Fixed,
}

/// How the stream batches: by the model's provider unless asked otherwise.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamOptions {
    /// Largest batch accepted by [`ImageStream::submit`].
    pub max_batch: usize,
    /// Padding policy; `None` picks by provider.
    pub padding: Option<Padding>,
    /// Copy each batch from the staging buffer into a second buffer the model reads,
    /// as on CUDA (where that buffer is in GPU memory); `None`: on CUDA only. On the
    /// CPU this only costs a copy; tests use it to run the CUDA path's steps there.
    pub staged: Option<bool>,
}

/// The fixed batch size a batch of `n` runs at.
fn bucket(padding: Padding, max: usize, n: usize) -> usize {
    match padding {
        Padding::Exact => n,
        Padding::Fixed => max,
        Padding::Buckets => {
            let mut b = max.max(1);
            while b / 4 >= n.max(1) {
                b /= 4;
            }
            b.max(n)
        }
    }
}

struct Slot {
    size: usize,
    host: Tensor<f32>,
    device: Option<Tensor<f32>>,
    binding: IoBinding,
    /// Inputs a combined graph needs besides the images (kept alive for the binding).
    _dummies: Vec<ort::value::DynValue>,
}

struct Job<T> {
    slot: Slot,
    n: usize,
    tag: T,
}

type Done<T> = (Slot, T, Result<Embeddings, EmbedError>);

/// A stream of image batches through the image tower; see the module docs.
pub struct ImageStream<T: Send + 'static> {
    model: Arc<Embedder>,
    padding: Padding,
    max_batch: usize,
    free: Vec<Slot>,
    in_flight: usize,
    jobs: Option<SyncSender<Job<T>>>,
    done: Receiver<Done<T>>,
    worker: Option<JoinHandle<()>>,
    staged: bool,
    /// Most threads that fill one batch (the machine's cores, less two).
    fill_threads: usize,
}

impl<T: Send + 'static> ImageStream<T> {
    /// Starts the worker thread; buffers are allocated on first use of each size.
    pub fn new(model: Arc<Embedder>, opts: StreamOptions) -> Result<Self, EmbedError> {
        if opts.max_batch == 0 {
            return Err(EmbedError::BadInput("a batch size of 0 cannot run".into()));
        }
        let cuda = model.provider() == "CUDA";
        // A graph fixed at a batch size gets exactly that size (Immich's exports: 1).
        let (max_batch, padding) = match model.image_batch() {
            Some(b) => (b, Padding::Fixed),
            None => (
                opts.max_batch,
                opts.padding
                    .unwrap_or(if cuda { Padding::Buckets } else { Padding::Exact }),
            ),
        };
        let (jobs_tx, jobs_rx) = sync_channel::<Job<T>>(DEPTH);
        let (done_tx, done_rx) = sync_channel::<Done<T>>(DEPTH);
        let worker_model = model.clone();
        let worker = std::thread::Builder::new()
            .name("vidseek-infer".into())
            .spawn(move || run_worker(&worker_model, jobs_rx, done_tx))
            .map_err(|e| EmbedError::Inference {
                what: "starting the inference thread",
                reason: e.to_string(),
            })?;
        Ok(Self {
            model,
            padding,
            max_batch,
            free: Vec::new(),
            in_flight: 0,
            jobs: Some(jobs_tx),
            done: done_rx,
            worker: Some(worker),
            staged: opts.staged.unwrap_or(cuda),
            // Two cores stay with the decoder and the inference thread.
            fill_threads: std::thread::available_parallelism()
                .map_or(1, |c| c.get())
                .saturating_sub(2)
                .min(8),
        })
    }

    /// The padding policy in use.
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// The largest batch [`ImageStream::submit`] takes (the graph's fixed batch size
    /// when it has one, whatever was asked for).
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Fills a batch of `n` images (`fill(i, out)` writes image `i`'s preprocessed
    /// pixels into `out`, e.g. with [`Embedder::preprocess`]; large batches are filled
    /// by several threads when the machine has the cores) and queues it. Returns the
    /// batches that finished meanwhile, oldest first, each with its tag. After an error
    /// the stream stays usable, but batches that finished during the failed call are
    /// not returned (callers treat an error as the end of the work).
    pub fn submit(
        &mut self,
        n: usize,
        tag: T,
        fill: impl Fn(usize, &mut [f32]) -> Result<(), EmbedError> + Sync,
    ) -> Result<Vec<(T, Embeddings)>, EmbedError> {
        if n == 0 || n > self.max_batch {
            return Err(EmbedError::BadInput(format!(
                "a batch of {n} images does not fit this stream (1 to {})",
                self.max_batch
            )));
        }
        let (mut slot, finished) = self.take_slot(n)?;
        if let Err(e) = self.stage(&mut slot, n, &fill) {
            self.free.push(slot);
            return Err(e);
        }
        let jobs = self.jobs.as_ref().expect("stream is open");
        if jobs.send(Job { slot, n, tag }).is_err() {
            return Err(self.worker_gone());
        }
        self.in_flight += 1;
        Ok(finished)
    }

    /// An idle slot for a batch of `n` (waiting for a running batch when all are busy),
    /// and the batches that finished while waiting.
    fn take_slot(&mut self, n: usize) -> Result<(Slot, Vec<(T, Embeddings)>), EmbedError> {
        let size = bucket(self.padding, self.max_batch, n);
        let mut finished = Vec::new();
        loop {
            if let Some(pos) = self.free.iter().position(|s| s.size == size) {
                return Ok((self.free.swap_remove(pos), finished));
            }
            if self.in_flight < DEPTH {
                if self.free.len() >= POOL {
                    self.free.remove(0);
                }
                return Ok((self.new_slot(size)?, finished));
            }
            finished.push(self.wait_one()?);
        }
    }

    /// Benchmark support: fills a batch of `n` once, puts it where the model reads it
    /// (GPU memory on CUDA), then times `reps` runs of the model on it alone: the
    /// device-input rate, with only the embeddings copied back. Seconds per run.
    pub fn time_resident(
        &mut self,
        n: usize,
        reps: usize,
        fill: impl Fn(usize, &mut [f32]) -> Result<(), EmbedError> + Sync,
    ) -> Result<Vec<f64>, EmbedError> {
        if self.in_flight > 0 {
            return Err(EmbedError::BadInput(
                "time_resident needs an idle stream: flush it first".into(),
            ));
        }
        let (mut slot, _) = self.take_slot(n)?;
        let result = self.stage(&mut slot, n, &fill).and_then(|()| {
            let mut session = self.model.visual.lock().unwrap_or_else(|e| e.into_inner());
            (0..reps)
                .map(|_| {
                    let t = std::time::Instant::now();
                    run_slot(&self.model, &mut session, &slot, n)?;
                    Ok(t.elapsed().as_secs_f64())
                })
                .collect()
        });
        self.free.push(slot);
        result
    }

    /// Writes `n` images into the slot's staging buffer (several threads for a large
    /// batch, when the machine has the cores) and copies them to where the model reads.
    fn stage(
        &self,
        slot: &mut Slot,
        n: usize,
        fill: &(impl Fn(usize, &mut [f32]) -> Result<(), EmbedError> + Sync),
    ) -> Result<(), EmbedError> {
        let per = self.model.pixels_per_image();
        let threads = self.fill_threads.min(n / 32);
        fill_rows(&mut slot.host.extract_tensor_mut().1[..n * per], per, threads, fill)?;
        if let Some(device) = slot.device.as_mut() {
            // A synchronous copy through ONNX Runtime's copy session (its own CUDA
            // stream): it overlaps the batch the worker is running on the model's stream.
            slot.host.copy_into(device).map_err(|e| EmbedError::Inference {
                what: "copying the image batch to the model's input buffer",
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Waits for every queued batch and returns them, oldest first.
    pub fn flush(&mut self) -> Result<Vec<(T, Embeddings)>, EmbedError> {
        let mut out = Vec::with_capacity(self.in_flight);
        while self.in_flight > 0 {
            out.push(self.wait_one()?);
        }
        Ok(out)
    }

    fn wait_one(&mut self) -> Result<(T, Embeddings), EmbedError> {
        let Ok((slot, tag, result)) = self.done.recv() else {
            return Err(self.worker_gone());
        };
        self.in_flight -= 1;
        self.free.push(slot);
        Ok((tag, result?))
    }

    fn worker_gone(&mut self) -> EmbedError {
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        EmbedError::Inference {
            what: "the inference thread",
            reason: "stopped unexpectedly".into(),
        }
    }

    /// Buffers and binding for batches of `size`.
    fn new_slot(&self, size: usize) -> Result<Slot, EmbedError> {
        let fail = |what: &'static str| {
            move |e: ort::Error| EmbedError::Inference {
                what,
                reason: e.to_string(),
            }
        };
        let s = self.model.image_size() as usize;
        let shape = [size, 3, s, s];
        let io = &self.model.manifest().io;
        let session = self.model.visual.lock().unwrap_or_else(|e| e.into_inner());
        let (host_alloc, out_alloc, device_alloc) = if self.model.provider() == "CUDA" {
            let mem = |dev, ty| MemoryInfo::new(dev, 0, AllocatorType::Device, ty);
            // Page-locked memory where ONNX Runtime offers it; ordinary memory works too
            // (the copies are then synchronous and slower), so that is the fallback.
            let pinned = |ty, what: &str| {
                mem(AllocationDevice::CUDA_PINNED, ty)
                    .and_then(|m| Allocator::new(&session, m))
                    .unwrap_or_else(|e| {
                        tracing::warn!("no page-locked memory for the {what} ({e}); using ordinary memory");
                        Allocator::default()
                    })
            };
            let host = pinned(MemoryType::CPUInput, "image batch");
            let out = pinned(MemoryType::CPUOutput, "embeddings");
            let dev = mem(AllocationDevice::CUDA, MemoryType::Default)
                .and_then(|m| Allocator::new(&session, m))
                .map_err(fail("allocating GPU memory for the image batch"))?;
            (host, out, Some(dev))
        } else {
            let staged = self.staged.then(Allocator::default);
            (Allocator::default(), Allocator::default(), staged)
        };
        let mut host = Tensor::<f32>::new(&host_alloc, shape).map_err(fail("allocating the image batch"))?;
        // Rows past a short batch are never read back, but keep them finite (each batch
        // copies the whole buffer to the device one).
        host.extract_tensor_mut().1.fill(0.0);
        let device = device_alloc
            .map(|a| Tensor::<f32>::new(&a, shape))
            .transpose()
            .map_err(fail("allocating the image batch's input buffer"))?;
        let output = Tensor::<f32>::new(&out_alloc, [size, self.model.dim()]).map_err(fail("allocating the output"))?;
        let mut binding = session.create_binding().map_err(fail("creating the IO binding"))?;
        let input = device.as_ref().unwrap_or(&host);
        binding
            .bind_input(io.image_input.as_str(), input)
            .map_err(fail("binding the image input"))?;
        binding
            .bind_output(io.image_output.as_str(), output)
            .map_err(fail("binding the image output"))?;
        let mut dummies = Vec::new();
        if io.combined {
            // A combined graph also wants text: the shortest sequence, bound once.
            for (name, values) in self
                .model
                .dummy_text_tensors()
                .map_err(fail("preparing the text dummy"))?
            {
                binding
                    .bind_input(name.as_str(), &values)
                    .map_err(fail("binding the text dummy"))?;
                dummies.push(values);
            }
        }
        Ok(Slot {
            size,
            host,
            device,
            binding,
            _dummies: dummies,
        })
    }
}

impl<T: Send + 'static> Drop for ImageStream<T> {
    fn drop(&mut self) {
        self.jobs = None;
        // Unblock a worker waiting to hand back a result, then let it end.
        while self.in_flight > 0 && self.done.recv().is_ok() {
            self.in_flight -= 1;
        }
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Writes `rows.len() / per` images with `fill`, split over `threads` threads (in order
/// on this one when fewer than two).
fn fill_rows(
    rows: &mut [f32],
    per: usize,
    threads: usize,
    fill: &(impl Fn(usize, &mut [f32]) -> Result<(), EmbedError> + Sync),
) -> Result<(), EmbedError> {
    let n = rows.len() / per;
    if threads < 2 {
        for (i, out) in rows.chunks_exact_mut(per).enumerate() {
            fill(i, out)?;
        }
        return Ok(());
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = rows
            .chunks_mut(chunk * per)
            .enumerate()
            .map(|(c, part)| {
                s.spawn(move || {
                    for (k, out) in part.chunks_exact_mut(per).enumerate() {
                        fill(c * chunk + k, out)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(EmbedError::BadInput("preprocessing panicked".into())))
        })
    })
}

/// The worker: runs each bound batch on the model's session and reads back its rows.
fn run_worker<T>(model: &Embedder, jobs: Receiver<Job<T>>, done: SyncSender<Done<T>>) {
    while let Ok(Job { slot, n, tag }) = jobs.recv() {
        let result = {
            let mut session = model.visual.lock().unwrap_or_else(|e| e.into_inner());
            run_slot(model, &mut session, &slot, n)
        };
        if done.send((slot, tag, result)).is_err() {
            return;
        }
    }
}

/// One run of the model on a slot's bound buffers: the embeddings of its first `n` rows.
fn run_slot(model: &Embedder, session: &mut Session, slot: &Slot, n: usize) -> Result<Embeddings, EmbedError> {
    let outputs = session.run_binding(&slot.binding).map_err(|e| EmbedError::Inference {
        what: "running the image tower",
        reason: e.to_string(),
    })?;
    let name = &model.manifest().io.image_output;
    extract(&outputs, name, slot.size, n, model.dim(), "the image tower")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_quarters_of_the_maximum() {
        let b = |n| bucket(Padding::Buckets, 1024, n);
        assert_eq!(b(1), 1);
        assert_eq!(b(2), 4);
        assert_eq!(b(5), 16);
        assert_eq!(b(64), 64);
        assert_eq!(b(65), 256);
        assert_eq!(b(300), 1024);
        assert_eq!(b(1024), 1024);
        // A maximum that is not a power of 4 still ends at 1 and never below n.
        let c = |n| bucket(Padding::Buckets, 100, n);
        assert_eq!((c(1), c(6), c(7), c(26), c(100)), (1, 6, 25, 100, 100));
        assert_eq!(bucket(Padding::Exact, 1024, 300), 300);
    }

    #[test]
    fn parallel_fill_writes_each_image_once_at_its_row() {
        let (per, n) = (5, 100);
        for threads in [1, 3, 8] {
            let mut rows = vec![-1f32; per * n];
            fill_rows(&mut rows, per, threads, &|i, out: &mut [f32]| {
                out.iter_mut().for_each(|v| *v += 1.0 + i as f32);
                Ok(())
            })
            .unwrap();
            for (i, row) in rows.chunks_exact(per).enumerate() {
                assert!(
                    row.iter().all(|&v| v == i as f32),
                    "threads {threads}, row {i}: {row:?}"
                );
            }
            let err = fill_rows(&mut rows, per, threads, &|i, _: &mut [f32]| {
                if i == 77 {
                    Err(EmbedError::BadInput("image 77".into()))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
            assert!(err.to_string().contains("77"), "{err}");
        }
    }
}
