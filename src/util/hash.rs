//! FNV-1a and the sampled content hash: file identity in the library and the vector
//! dump's fingerprint, stamps of label and template sets. Stable across builds and
//! platforms (the store keeps these values).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_value() {
        // FNV-1a of "a" (the reference value).
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63dc4c8601ec8c);
    }
}
