//! The RFC 6962 Merkle tree hash of one audit partition's leaves, kept as a
//! compact frontier, without Kafka.
//!
//! Leaf hash `SHA-256(0x00 ‖ d)`, node hash `SHA-256(0x01 ‖ l ‖ r)`, and
//! `MTH` splitting at the largest power of two below the size (RFC 6962
//! §2.1). The frontier is the roots of the perfect subtrees the size
//! decomposes into, largest (leftmost) first: at most 64 hashes, enough to
//! append a leaf and to compute the root at any size. It is what the audit
//! stage checkpoints, and what the verifier rebuilds.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// RFC 6962 leaf hash of `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// RFC 6962 interior node hash.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The tree hash of the empty tree: `SHA-256()` of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The right edge of a tree: its size and the roots of its perfect
/// subtrees.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontier {
    size: u64,
    #[serde(with = "hex_hashes")]
    peaks: Vec<Hash>,
}

/// Why a stored frontier cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontierError {
    #[error("frontier of size {size} holds {got} subtree roots; its size needs {want}")]
    Shape { size: u64, got: usize, want: u32 },
}

impl Frontier {
    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Checks that the peaks match the size (a restored frontier).
    pub fn check(&self) -> Result<(), FrontierError> {
        let want = self.size.count_ones();
        if self.peaks.len() == want as usize {
            Ok(())
        } else {
            Err(FrontierError::Shape {
                size: self.size,
                got: self.peaks.len(),
                want,
            })
        }
    }

    /// Appends a leaf given by its leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            // A perfect subtree of the same height is to the left: merge.
            match self.peaks.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break,
            }
            s >>= 1;
        }
        self.peaks.push(h);
        self.size += 1;
    }

    /// The tree hash over every leaf so far.
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

mod hex_hashes {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(hex::encode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        let strings: Vec<String> = Vec::deserialize(d)?;
        strings
            .iter()
            .map(|s| {
                let mut h = [0u8; 32];
                hex::decode_to_slice(s, &mut h).map_err(serde::de::Error::custom)?;
                Ok(h)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962's MTH written as the RFC defines it, recursively.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn the_frontier_root_equals_rfc_6962_and_ct_merkle_at_every_size() {
        let mut f = Frontier::default();
        let mut leaves = Vec::new();
        let mut reference: ct_merkle::mem_backed_tree::MemoryBackedTree<Sha256, Vec<u8>> =
            ct_merkle::mem_backed_tree::MemoryBackedTree::new();
        assert_eq!(f.root(), empty_root());
        for i in 0..300u32 {
            let data = i.to_be_bytes().to_vec();
            f.push(leaf_hash(&data));
            leaves.push(leaf_hash(&data));
            reference.push(data);
            assert_eq!(f.root(), mth(&leaves), "size {}", i + 1);
            assert_eq!(
                f.root().as_slice(),
                reference.root().as_bytes().as_slice(),
                "ct-merkle at size {}",
                i + 1
            );
            assert!(f.peaks.len() <= 64);
            f.check().expect("shape");
        }
    }

    #[test]
    fn a_known_vector_and_a_round_trip() {
        // RFC 6962 reference: the empty tree's hash.
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // The leaf hash of the empty string (certificate-transparency test
        // vectors).
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let mut f = Frontier::default();
        for i in 0..11u8 {
            f.push(leaf_hash(&[i]));
        }
        let text = serde_json::to_string(&f).expect("json");
        let back: Frontier = serde_json::from_str(&text).expect("read");
        assert_eq!(back, f);
        back.check().expect("shape");
        let bad: Frontier =
            serde_json::from_str(&text.replace("\"size\":11", "\"size\":12")).expect("read");
        assert!(bad.check().is_err());
    }
}
