//! The int8 form of a frame vector that the graph holds, and the graph's distance on it.
//! Knows nothing of the graph or of files.

use hnsw_rs::prelude::Distance;

use crate::simd::dot_i8;

/// The int8 form of a unit vector as the graph holds it: `round(x / s)` per value with
/// `s = max|x| / 127`, followed by the 4 bytes of `s` (so the distance needs no side table).
pub fn quantise(v: &[f32]) -> Vec<i8> {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let s = if max > 0.0 { max / 127.0 } else { 1.0 };
    let mut q: Vec<i8> = v.iter().map(|x| (x / s).round().clamp(-127.0, 127.0) as i8).collect();
    q.extend(s.to_le_bytes().map(|b| b as i8));
    q
}

fn scale_of(tail: &[i8]) -> f32 {
    f32::from_le_bytes([tail[0] as u8, tail[1] as u8, tail[2] as u8, tail[3] as u8])
}

/// `1 - cosine` of two [`quantise`]d vectors, from an integer dot product.
#[derive(Clone, Copy, Debug, Default)]
pub struct DistQ8;

impl Distance<i8> for DistQ8 {
    fn eval(&self, a: &[i8], b: &[i8]) -> f32 {
        let n = a.len().min(b.len()).saturating_sub(4);
        let d = dot_i8(&a[..n], &b[..n]) as f32 * scale_of(&a[n..]) * scale_of(&b[n..]);
        (1.0 - d).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::vector::tests::unit;

    #[test]
    fn int8_distance_is_close_to_the_cosine() {
        for i in 0..50u64 {
            let (a, b) = (unit(i, 512), unit(i + 1000, 512));
            // Correlated pairs too (near-duplicates are what the graph must order).
            let c: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + 0.1 * y).collect();
            let n = c.iter().map(|x| x * x).sum::<f32>().sqrt();
            let c: Vec<f32> = c.iter().map(|x| x / n).collect();
            for (x, y) in [(&a, &b), (&a, &c)] {
                let exact = crate::simd::dot(x, y);
                let q = 1.0 - DistQ8.eval(&quantise(x), &quantise(y));
                assert!((exact - q).abs() < 4e-3, "{exact} vs {q}");
            }
        }
    }
}
