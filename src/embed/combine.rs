//! Combining of concurrent small text-tower runs into one batch.
//!
//! A server answers many queries at once, each one or a few sentences. One session runs
//! one graph at a time, so concurrent callers used to queue on its lock and run one
//! after the other, each run paying the tower's fixed cost (and the intra-op threads'
//! spin-waits between runs) for a single row. Here a caller that finds the tower busy
//! leaves its rows in a queue; the next caller to run takes everything queued (up to
//! [`MAX_ROWS`]) and runs it as one batch, then hands each caller its own rows' result.
//! No thread of its own: the callers take turns leading (flat combining), and a leader
//! stops once its own job is done, so no caller serves others for longer than a run.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex};

/// Most rows one combined run takes (jobs are never split: a larger job runs alone).
pub(crate) const MAX_ROWS: usize = 64;

struct State<J, R> {
    /// Whether some caller is running a batch now.
    running: bool,
    next: u64,
    /// Queued jobs with their tickets and row counts, oldest first.
    queue: Vec<(u64, usize, J)>,
    done: HashMap<u64, R>,
    /// Tickets whose run panicked: their callers panic too (as each would have alone).
    lost: HashSet<u64>,
}

/// A queue of jobs (each `rows` rows) that callers run together.
pub(crate) struct Combiner<J, R> {
    state: Mutex<State<J, R>>,
    changed: Condvar,
}

impl<J, R> Combiner<J, R> {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                running: false,
                next: 0,
                queue: Vec::new(),
                done: HashMap::new(),
                lost: HashSet::new(),
            }),
            changed: Condvar::new(),
        }
    }

    /// Runs `job` (of `rows` rows), possibly together with other callers' queued jobs:
    /// `exec` gets a batch of jobs and returns their results in the same order.
    pub(crate) fn run(&self, job: J, rows: usize, exec: impl Fn(Vec<J>) -> Vec<R>) -> R {
        let lock = || self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = lock();
        let ticket = s.next;
        s.next += 1;
        s.queue.push((ticket, rows, job));
        loop {
            if let Some(r) = s.done.remove(&ticket) {
                return r;
            }
            if s.lost.remove(&ticket) {
                drop(s);
                panic!("a text-tower run this caller's rows shared panicked");
            }
            if s.running {
                s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // Lead: everything queued, oldest first, up to MAX_ROWS (at least one job).
            s.running = true;
            let mut take = 0;
            let mut total = 0;
            for (_, n, _) in &s.queue {
                if take > 0 && total + n > MAX_ROWS {
                    break;
                }
                total += n;
                take += 1;
            }
            let batch: Vec<(u64, usize, J)> = s.queue.drain(..take).collect();
            drop(s);
            let (tickets, jobs): (Vec<u64>, Vec<J>) = batch.into_iter().map(|(t, _, j)| (t, j)).unzip();
            let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exec(jobs)));
            s = lock();
            s.running = false;
            let results = match results {
                Ok(r) => r,
                Err(panic) => {
                    // Nobody may wait for these results forever, nor for the tower.
                    s.lost.extend(tickets);
                    s.lost.remove(&ticket);
                    drop(s);
                    self.changed.notify_all();
                    std::panic::resume_unwind(panic);
                }
            };
            debug_assert_eq!(results.len(), tickets.len());
            s.done.extend(tickets.into_iter().zip(results));
            self.changed.notify_all();
        }
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
