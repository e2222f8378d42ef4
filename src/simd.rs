//! The SIMD kernels, each chosen once per process for the CPU it runs on: the float32 dot
//! product (exact rescoring, tags, probes, calibration) and the int8 dot product the vector
//! graph's distance is built on. Plain Rust fallbacks for every kernel; no outside library,
//! no knowledge of what the vectors are.

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

/// An int8 dot-product kernel.
pub type DotI8 = fn(&[i8], &[i8]) -> i32;

/// Integer dot product of two int8 slices (over the shorter one's length), with the best
/// kernel this CPU has (chosen once): AVX-512 VNNI (64 products summed a step), else
/// AVX2 (32 a step), else plain Rust. `VIDSEEK_DOT_I8` names another of
/// [`dot_i8_kernels`] (for side-by-side measurements).
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    static CHOSEN: std::sync::OnceLock<DotI8> = std::sync::OnceLock::new();
    CHOSEN.get_or_init(|| {
        let kernels = dot_i8_kernels();
        let wanted = std::env::var("VIDSEEK_DOT_I8").ok();
        match wanted.as_deref().map(|w| kernels.iter().find(|(name, _)| *name == w)) {
            Some(Some((_, k))) => *k,
            Some(None) => {
                tracing::warn!(
                    "VIDSEEK_DOT_I8={:?} is not a kernel this CPU runs ({}); using {}",
                    wanted.unwrap_or_default(),
                    kernels.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                    kernels[0].0
                );
                kernels[0].1
            }
            None => kernels[0].1,
        }
    })(a, b)
}

/// Every int8 dot kernel this CPU can run, best first (`dot_i8` uses the first; the
/// hnsw bench times them side by side).
pub fn dot_i8_kernels() -> Vec<(&'static str, DotI8)> {
    let mut out: Vec<(&'static str, DotI8)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
        {
            // SAFETY: the CPU has the kernel's features (checked above).
            out.push(("avx512-vnni", |a, b| unsafe { dot_i8_vnni(a, b) }));
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            out.push(("avx2", |a, b| unsafe { dot_i8_avx2(a, b) }));
        }
    }
    out.push(("plain", dot_i8_plain));
    out
}

/// AVX-512 VNNI: `vpdpbusd` multiplies unsigned by signed bytes, so `a` is shifted into
/// the unsigned range (`a ^ 0x80` = `a + 128`) and `128 * sum(b)` taken off again (both
/// sums exact in i32 lanes: no saturating step). The tail is read with masked loads.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dot_i8_vnni(a: &[i8], b: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let flip = _mm512_set1_epi8(-128);
    let (mut acc, mut bias) = ([_mm512_setzero_si512(); 2], [_mm512_setzero_si512(); 2]);
    let mut i = 0;
    // SAFETY (all loads): i + 64 <= n for both slices, or masked to the n - i left.
    while i + 128 <= n {
        for k in 0..2 {
            let x = unsafe { _mm512_loadu_si512(pa.add(i + 64 * k).cast()) };
            let y = unsafe { _mm512_loadu_si512(pb.add(i + 64 * k).cast()) };
            acc[k] = _mm512_dpbusd_epi32(acc[k], _mm512_xor_si512(x, flip), y);
            bias[k] = _mm512_dpbusd_epi32(bias[k], flip, y);
        }
        i += 128;
    }
    while i < n {
        let left = (n - i).min(64);
        let m: __mmask64 = if left == 64 { u64::MAX } else { (1u64 << left) - 1 };
        let x = unsafe { _mm512_maskz_loadu_epi8(m, pa.add(i)) };
        let y = unsafe { _mm512_maskz_loadu_epi8(m, pb.add(i)) };
        // Masked-off bytes of y are 0, so their shifted x contributes nothing.
        acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_xor_si512(x, flip), y);
        bias[0] = _mm512_dpbusd_epi32(bias[0], flip, y);
        i += left;
    }
    let sum = _mm512_sub_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(bias[0], bias[1]));
    _mm512_reduce_add_epi32(sum)
}

/// AVX2: 16 bytes of each side sign-extended to i16 and multiplied pairwise into i32
/// lanes (`vpmaddwd`), two chains of 16 values each a step.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_si256(); 2];
    let mut i = 0;
    // SAFETY (all loads): i + 16 <= n for both slices; unaligned loads.
    while i + 32 <= n {
        for (k, s) in acc.iter_mut().enumerate() {
            let x = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(pa.add(i + 16 * k).cast()) });
            let y = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(pb.add(i + 16 * k).cast()) });
            *s = _mm256_add_epi32(*s, _mm256_madd_epi16(x, y));
        }
        i += 32;
    }
    if i + 16 <= n {
        let x = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(pa.add(i).cast()) });
        let y = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(pb.add(i).cast()) });
        acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(x, y));
        i += 16;
    }
    let s = _mm256_add_epi32(acc[0], acc[1]);
    let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s) + dot_i8_plain(&a[i..n], &b[i..n])
}

fn dot_i8_plain(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(x, y)| *x as i32 * *y as i32).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_of_short_vectors() {
        assert_eq!(dot(&[1.0, 2.0], &[3.0, 4.0]), 11.0);
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.05).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-5, "{} vs {plain}", dot(&a, &b));
    }

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
    fn every_int8_dot_kernel_gives_the_exact_sum() {
        let kernels = dot_i8_kernels();
        assert_eq!(kernels.last().unwrap().0, "plain");
        let mut rng = crate::synth::Rng::new(3);
        // Every length up to past two of the widest steps (tails of each size), the
        // graph's 512 + 4, the extremes (-128 * -128 in every lane) and unequal lengths.
        let mut cases: Vec<(Vec<i8>, Vec<i8>)> = (0..300)
            .map(|n| {
                let a = (0..n).map(|_| rng.below(256) as u8 as i8).collect();
                let b = (0..n).map(|_| rng.below(256) as u8 as i8).collect();
                (a, b)
            })
            .collect();
        cases.push((vec![-128; 516], vec![-128; 516]));
        cases.push((vec![127; 516], vec![-128; 516]));
        cases.push((
            (0..77).map(|i| (i % 250) as i8).collect(),
            (0..90).map(|i| (3 - i) as i8).collect(),
        ));
        for (a, b) in &cases {
            let want: i64 = a.iter().zip(b).map(|(x, y)| *x as i64 * *y as i64).sum();
            for (name, k) in &kernels {
                assert_eq!(
                    k(a, b) as i64,
                    want,
                    "{name} kernel, lengths {} and {}",
                    a.len(),
                    b.len()
                );
            }
            assert_eq!(dot_i8(a, b) as i64, want);
        }
    }
}
