//! The 32-byte SHA-256 hashes of the tree, and RFC 6962 leaf hashing.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A SHA-256 tree hash: a leaf hash, an interior node or a root.
///
/// Written as standard base64 (with padding) in checkpoints, proofs and receipts, the
/// same text form as C2SP tlog-checkpoint and Go's `sumdb/tlog`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The RFC 6962 leaf hash: `SHA-256(0x00 || leaf bytes)`.
    pub fn of_leaf(leaf: &[u8]) -> Hash {
        Hash::from(tlog_tiles::record_hash(leaf))
    }

    /// The RFC 6962 interior node hash: `SHA-256(0x01 || left || right)`.
    pub fn of_node(left: Hash, right: Hash) -> Hash {
        Hash::from(tlog_tiles::node_hash(left.into(), right.into()))
    }

    /// The root of the empty tree: `SHA-256("")`.
    pub fn empty_tree() -> Hash {
        Hash(Sha256::digest([]).into())
    }

    /// Lower-case hexadecimal, for people comparing hashes by eye.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses standard base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Hash, HashParseError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| HashParseError(text.to_owned()))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| HashParseError(text.to_owned()))?;
        Ok(Hash(array))
    }
}

/// A text that is not the base64 of a 32-byte hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a base64-encoded 32-byte SHA-256 hash")]
pub struct HashParseError(pub String);

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE64.encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl FromStr for Hash {
    type Err = HashParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Hash::from_base64(text)
    }
}

impl From<tlog_tiles::Hash> for Hash {
    fn from(hash: tlog_tiles::Hash) -> Self {
        Hash(hash.0)
    }
}

impl From<Hash> for tlog_tiles::Hash {
    fn from(hash: Hash) -> Self {
        tlog_tiles::Hash(hash.0)
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Hash::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6962_leaf_and_empty_hashes() {
        // RFC 6962 test vectors (as used by transparency-dev/merkle rfc6962_test.go).
        assert_eq!(
            Hash::empty_tree().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            Hash::of_leaf(b"").to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            Hash::of_leaf(b"L123456").to_hex(),
            "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
        );
    }

    #[test]
    fn base64_round_trip_and_errors() {
        let hash = Hash::of_leaf(b"x");
        let text = hash.to_string();
        assert_eq!(text.parse::<Hash>().unwrap(), hash);
        assert!("not base64!".parse::<Hash>().is_err());
        assert!("AAAA".parse::<Hash>().is_err(), "3 bytes is not a hash");
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), hash);
    }
}
