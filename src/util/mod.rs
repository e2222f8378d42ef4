//! Small plain helpers more than one module needs (shared like `image` and `config`:
//! no module's state): `hash` (FNV-1a and the sampled file hash),
//! `priority` (background work's nice value and its yielding to searches), `secret` (API
//! keys and their SHA-256, through `sha2`), the median
//! and returning freed heap pages. The SIMD kernels are in `crate::simd`.

pub mod hash;
pub mod priority;
pub mod secret;

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

/// Restores the default action of SIGPIPE (Rust ignores it, so that a write to a closed
/// pipe returns an error, which `println!` turns into a panic): the process ends
/// quietly when the reader of its output goes away.
pub fn end_on_broken_pipe() {
    #[cfg(unix)]
    {
        unsafe extern "C" {
            fn signal(signum: i32, handler: usize) -> usize;
        }
        const SIGPIPE: i32 = 13;
        const SIG_DFL: usize = 0;
        // SAFETY: restoring a signal's default disposition has no preconditions.
        unsafe {
            signal(SIGPIPE, SIG_DFL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
