//! Background work's place behind searches: the nice value of a server's job threads,
//! lowering a thread's priority, and the count of running searches that indexing yields
//! to between frames and batches.

/// The nice value of a server's background work (indexing, model switches).
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to `nice` (Linux: per thread; the
/// threads it starts afterwards inherit it). The server's job threads call it, so that
/// decoding and inference for indexing take the cores only when searches leave them.
pub fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        unsafe extern "C" {
            fn gettid() -> i32;
        }
        // SAFETY: gettid has no preconditions.
        lower_thread_priority(unsafe { gettid() } as u32, nice);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Sets thread `tid` of this process to `nice` (Linux; elsewhere nothing).
pub fn lower_thread_priority(tid: u32, nice: i32) {
    #[cfg(target_os = "linux")]
    {
        unsafe extern "C" {
            fn setpriority(which: i32, who: u32, prio: i32) -> i32;
        }
        // SAFETY: plain integers; PRIO_PROCESS (0) with a thread id changes that thread
        // only. A failure (the thread is gone) leaves everything as it was.
        unsafe {
            setpriority(0, tid, nice);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (tid, nice);
}

/// The ids of this process's threads (Linux: /proc/self/task; elsewhere none).
pub fn own_threads() -> std::collections::HashSet<u32> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Searches running in this process: background work (indexing) yields to them.
static SEARCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Held while a search runs (see [`yield_to_searches`]).
pub struct Searching(());

impl Drop for Searching {
    fn drop(&mut self) {
        SEARCHES.fetch_sub(1, std::sync::atomic::Ordering::Release);
    }
}

/// Marks a search as running until the guard is dropped.
pub fn searching() -> Searching {
    SEARCHES.fetch_add(1, std::sync::atomic::Ordering::Acquire);
    Searching(())
}

/// Waits while searches run, at most `max`: indexing calls it between frames and
/// batches, so that on a small machine a search does not queue behind a batch of image
/// inference and decoding (it never stops indexing for longer than `max` at a time).
pub fn yield_to_searches(max: std::time::Duration) {
    let t0 = std::time::Instant::now();
    while SEARCHES.load(std::sync::atomic::Ordering::Acquire) > 0 && t0.elapsed() < max {
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
}
