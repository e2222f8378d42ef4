//! API key material: a new random key and the SHA-256 the store keeps of it.

use std::io::Read;

use sha2::{Digest, Sha256};

/// What every key starts with (so a leaked one is recognisable in logs and scanners).
pub const KEY_PREFIX: &str = "vsk_";

/// A new key: [`KEY_PREFIX`] and 160 random bits from the kernel, in hex.
pub fn new_key() -> std::io::Result<String> {
    let mut bytes = [0u8; 20];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!("{KEY_PREFIX}{}", hex(&bytes)))
}

/// The SHA-256 of a key, in hex: what the store keeps and looks keys up by.
pub fn key_hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed_stably() {
        let (a, b) = (new_key().unwrap(), new_key().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 40);
        // SHA-256("abc"), FIPS 180-2's first example.
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
