//! Content digests as both daemons print them: lowercase hex of SHA-256.

use sha2::{Digest, Sha256};

/// The lowercase hex SHA-256 of `parts`, hashed one after another.
pub fn sha256_hex<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_of_nothing_is_sha256s() {
        assert_eq!(
            super::sha256_hex([]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            super::sha256_hex([b"ab".as_slice()]),
            super::sha256_hex([b"a".as_slice(), b"b".as_slice()])
        );
    }
}
