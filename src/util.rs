//! Small plain helpers more than one module needs (shared like `image` and `config`:
//! no outside library, no module's state).

/// Dot product (the cosine of two unit vectors): AVX2 with fused multiply-adds where
/// the CPU has them (the release build targets plain x86-64, whose SSE2 does four
/// multiplies and four adds a step), else eight independent sums the compiler keeps in
/// SIMD registers (a single running sum cannot be reordered).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        return unsafe { dot_avx2_fma(a, b) };
    }
    dot_plain(a, b)
}

#[inline(always)]
fn dot_plain(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Four 8-lane fused multiply-add chains (32 values a step: one chain would wait on
/// each FMA's latency); `a` and `b` of equal length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (all loads): i + 32 <= n (or i + 8 <= n below) for both slices; unaligned
    // loads.
    while i + 32 <= n {
        for (k, s) in acc.iter_mut().enumerate() {
            let x = unsafe { _mm256_loadu_ps(pa.add(i + 8 * k)) };
            let y = unsafe { _mm256_loadu_ps(pb.add(i + 8 * k)) };
            *s = _mm256_fmadd_ps(x, y, *s);
        }
        i += 32;
    }
    while i + 8 <= n {
        let x = unsafe { _mm256_loadu_ps(pa.add(i)) };
        let y = unsafe { _mm256_loadu_ps(pb.add(i)) };
        acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        i += 8;
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 f32s.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), s) };
    lanes.iter().sum::<f32>() + a[i..].iter().zip(&b[i..]).map(|(x, y)| x * y).sum::<f32>()
}

/// FNV-1a over `bytes`, continuing from `h` (start with [`FNV_OFFSET`]).
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// FNV-1a's offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of a file's size and three 64 KiB samples (its start, middle and end; the
/// whole file when it is shorter than three samples): catches a changed, replaced or
/// truncated file without reading gigabytes. Stable across builds and platforms: the
/// library keeps these in the store.
pub fn sampled_hash(f: &mut std::fs::File) -> std::io::Result<(u64, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    const SAMPLE: u64 = 64 * 1024;
    let size = f.metadata()?.len();
    let mut h = fnv1a(FNV_OFFSET, &size.to_le_bytes());
    let mut buf = vec![0u8; SAMPLE as usize];
    let offsets = if size <= 3 * SAMPLE {
        vec![0]
    } else {
        vec![0, size / 2 - SAMPLE / 2, size - SAMPLE]
    };
    for off in offsets {
        f.seek(SeekFrom::Start(off))?;
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        h = fnv1a(h, &buf[..n]);
    }
    Ok((size, h))
}

/// The median of `xs` (the mean of the middle two for an even count; 0 when empty).
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_double_precision_sum_at_every_length() {
        // Lengths around the 8- and 32-value steps, so every tail path runs.
        for n in [0usize, 1, 7, 8, 9, 31, 32, 33, 63, 64, 77, 512, 515] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 13 % 17) as f32 - 8.0) / 9.0).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            for got in [dot(&a, &b), dot_plain(&a, &b)] {
                assert!((got as f64 - want).abs() < 1e-4, "n = {n}: {got} against {want}");
            }
        }
        // Unequal lengths: the common prefix.
        assert_eq!(dot(&[1.0; 40], &[2.0; 33]), 66.0);
    }

    #[test]
    fn helpers() {
        assert_eq!(dot(&[1.0, 2.0], &[3.0, 4.0]), 11.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        // FNV-1a of "a" (the reference value).
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63dc4c8601ec8c);
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.05).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-5, "{} vs {plain}", dot(&a, &b));
    }
}

/// Returns the heap's free pages to the system (glibc's `malloc_trim`): after a bulk
/// index build, whose transient batches were freed between long-lived graph nodes.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only releases free memory; it has no preconditions.
        unsafe {
            malloc_trim(0);
        }
    }
}

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
