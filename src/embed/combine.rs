//! Combining of concurrent small text-tower runs into one batch.
//!
//! A server answers many queries at once, each one or a few sentences. One session runs
//! one graph at a time, so concurrent callers used to queue on its lock and run one
//! after the other, each run paying the tower's fixed cost for a single row. Here a
//! caller leaves its rows in a queue with a way to answer it; whoever runs the tower
//! takes everything queued (up to [`MAX_ROWS`]) as one batch, answers each caller with
//! its own rows' result, and goes on while jobs are queued. A blocking caller that finds
//! nobody running runs the queue itself ([`Combiner::run`]); an async caller has a
//! thread started for it ([`Combiner::run_async`]), which stays a while for the next
//! jobs, and waits without holding a thread. A waiting caller is woken once, when its
//! answer is there (before, a blocking thread per query waited on one condition variable
//! and all of them were woken at every run's end).

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Most rows one combined run takes (jobs are never split: a larger job runs alone).
pub(crate) const MAX_ROWS: usize = 64;

/// How a queued job's result reaches its caller.
type Reply<R> = Box<dyn FnOnce(R) + Send>;

struct State<J, R> {
    /// Whether some caller (or thread) is running the queue now.
    running: bool,
    /// Whether that runner is waiting for jobs (see [`Combiner::drain`]'s `linger`).
    waiting: bool,
    /// Queued jobs with their row counts and replies, oldest first.
    queue: Vec<(usize, J, Reply<R>)>,
}

/// A queue of jobs (each `rows` rows) that callers run together.
pub(crate) struct Combiner<J, R> {
    state: Mutex<State<J, R>>,
    /// Signalled when a job is queued while the runner waits for one.
    queued: Condvar,
}

impl<J, R> Combiner<J, R> {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                running: false,
                waiting: false,
                queue: Vec::new(),
            }),
            queued: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<J, R>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job`; true when nobody runs the queue (the caller must, with [`Self::drain`]).
    fn submit(&self, job: J, rows: usize, reply: Reply<R>) -> bool {
        let mut s = self.lock();
        s.queue.push((rows, job, reply));
        if s.waiting {
            self.queued.notify_one();
        }
        !std::mem::replace(&mut s.running, true)
    }

    /// Runs batches until the queue has been empty for `linger`: everything queued,
    /// oldest first, up to MAX_ROWS (at least one job) a run. A run that panics drops its
    /// jobs' replies (their callers learn it from that) and the rest of the queue is
    /// still run.
    pub(crate) fn drain(&self, exec: impl Fn(Vec<J>) -> Vec<R>, linger: Duration) {
        loop {
            let mut s = self.lock();
            if s.queue.is_empty() && !linger.is_zero() {
                s.waiting = true;
                s = self
                    .queued
                    .wait_timeout_while(s, linger, |s| s.queue.is_empty())
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                s.waiting = false;
            }
            if s.queue.is_empty() {
                s.running = false;
                return;
            }
            let mut take = 0;
            let mut total = 0;
            for (n, _, _) in &s.queue {
                if take > 0 && total + n > MAX_ROWS {
                    break;
                }
                total += n;
                take += 1;
            }
            let batch: Vec<(usize, J, Reply<R>)> = s.queue.drain(..take).collect();
            drop(s);
            let (jobs, replies): (Vec<J>, Vec<Reply<R>>) = batch.into_iter().map(|(_, j, r)| (j, r)).unzip();
            if let Ok(results) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exec(jobs))) {
                debug_assert_eq!(results.len(), replies.len());
                for (reply, r) in replies.into_iter().zip(results) {
                    reply(r);
                }
            }
        }
    }

    /// Runs `job` (of `rows` rows), possibly together with other callers' queued jobs,
    /// blocking: `exec` gets a batch of jobs and returns their results in the same order.
    /// Panics when the run that had this job panicked.
    pub(crate) fn run(&self, job: J, rows: usize, exec: impl Fn(Vec<J>) -> Vec<R>) -> R
    where
        R: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if self.submit(job, rows, Box::new(move |r| drop(tx.send(r)))) {
            self.drain(exec, Duration::ZERO);
        }
        rx.recv().expect("a text-tower run this caller's rows shared panicked")
    }

    /// As [`Self::run`] for an async caller, which waits without holding a thread:
    /// `start` is called when nobody runs the queue and must have [`Self::drain`] run on
    /// a thread of its own (with the same `exec` as every other caller). None when the
    /// run that had this job panicked.
    pub(crate) async fn run_async(&self, job: J, rows: usize, start: impl FnOnce()) -> Option<R>
    where
        R: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.submit(job, rows, Box::new(move |r| drop(tx.send(r)))) {
            start();
        }
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn concurrent_jobs_share_runs_and_each_gets_its_own_result() {
        let c = Arc::new(Combiner::<u64, u64>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let biggest = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..32u64)
            .map(|i| {
                let (c, runs, biggest) = (c.clone(), runs.clone(), biggest.clone());
                std::thread::spawn(move || {
                    c.run(i, 1, |jobs: Vec<u64>| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        biggest.fetch_max(jobs.len(), Ordering::SeqCst);
                        // A run slow enough that the other callers queue behind it.
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        jobs.iter().map(|j| j * 10).collect()
                    })
                })
            })
            .collect();
        let got: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(got, (0..32u64).map(|i| i * 10).collect::<Vec<_>>());
        let runs = runs.load(Ordering::SeqCst);
        assert!(runs < 32, "{runs} runs for 32 concurrent jobs: nothing was combined");
        assert!(biggest.load(Ordering::SeqCst) > 1);
    }

    #[test]
    fn a_panicking_run_fails_its_callers_and_frees_the_tower() {
        let c = Arc::new(Combiner::<u64, u64>::new());
        let threads: Vec<_> = (0..8u64)
            .map(|i| {
                let c = c.clone();
                std::thread::spawn(move || {
                    c.run(i, 1, |jobs: Vec<u64>| {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        assert!(!jobs.contains(&3), "job 3 breaks the run");
                        jobs
                    })
                })
            })
            .collect();
        let outcomes: Vec<bool> = threads.into_iter().map(|t| t.join().is_ok()).collect();
        assert!(!outcomes[3], "the caller of the breaking job did not see the panic");
        // The tower is free again: a later caller is served.
        assert_eq!(c.run(42, 1, |jobs: Vec<u64>| jobs), 42);
    }

    #[test]
    fn async_callers_share_runs_without_a_thread_each_and_a_panic_fails_only_its_run() {
        let c = Arc::new(Combiner::<u64, u64>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let call = |i: u64| {
            let (c, runs) = (c.clone(), runs.clone());
            async move {
                let c2 = c.clone();
                let start = move || {
                    std::thread::spawn(move || {
                        c2.drain(
                            |jobs: Vec<u64>| {
                                runs.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(Duration::from_millis(20));
                                assert!(!jobs.contains(&1007), "job 1007 breaks its run");
                                jobs.iter().map(|j| j * 10).collect()
                            },
                            Duration::from_millis(30),
                        )
                    });
                };
                c.run_async(i, 1, start).await
            }
        };
        // One thread polls 40 callers: had a caller blocked it, each would have run alone.
        let got = rt.block_on(futures_util::future::join_all((0..40u64).map(call)));
        assert_eq!(got, (0..40u64).map(|i| Some(i * 10)).collect::<Vec<_>>());
        let n = runs.load(Ordering::SeqCst);
        assert!(n < 10, "{n} runs for 40 concurrent callers");
        // A run that panics answers its callers None; the queue is free again after it.
        let got = rt.block_on(futures_util::future::join_all((1000..1010u64).map(call)));
        assert!(got.contains(&None) && got[7].is_none());
        assert_eq!(rt.block_on(call(5)), Some(50));
        // A blocking caller's job goes to the same queue (the lingering runner may take it).
        assert_eq!(
            c.run(42, 1, |jobs: Vec<u64>| jobs.iter().map(|j| j * 10).collect()),
            420
        );
    }

    #[test]
    fn a_batch_keeps_to_the_row_limit_and_a_large_job_runs_alone() {
        let c = Arc::new(Combiner::<usize, usize>::new());
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = [MAX_ROWS + 5, 30, 30, 30, 1]
            .into_iter()
            .map(|rows| {
                let (c, sizes) = (c.clone(), sizes.clone());
                std::thread::spawn(move || {
                    c.run(rows, rows, |jobs: Vec<usize>| {
                        sizes.lock().unwrap().push(jobs.iter().sum::<usize>());
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        jobs
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for s in sizes.lock().unwrap().iter() {
            assert!(*s <= MAX_ROWS || *s == MAX_ROWS + 5, "a run of {s} rows");
        }
    }
}
