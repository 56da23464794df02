//! The RFC 6962 / RFC 9162 Merkle tree: hashes kept in memory, proofs, and checks.
//!
//! The tree arithmetic is `tlog_tiles`, Cloudflare's port of Go's `sumdb/tlog` (the code
//! behind the Go checksum database and C2SP tlog tooling). This module keeps the
//! "stored hashes" that library expects (every complete subtree, about two hashes per
//! leaf, in Crosby-Wallach order) in a vector, so a proof reads `log2(n)` hashes from
//! memory and takes microseconds even at millions of leaves.

use tlog_tiles::{HashReader, RecordProof, TreeProof};

use crate::Hash;

/// Why a proof did not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf {index} is not in a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("a consistency proof needs 0 <= old size ({old}) <= new size ({new})")]
    SizesOutOfOrder { old: u64, new: u64 },
    #[error("tree size {size} is larger than the log ({len} leaves)")]
    SizeBeyondLog { size: u64, len: u64 },
    #[error(
        "the inclusion proof does not lead to the root hash: the leaf is not at that position in that tree"
    )]
    InclusionMismatch,
    #[error(
        "the consistency proof does not connect the two roots: the newer tree does not extend the older one"
    )]
    ConsistencyMismatch,
    #[error("two different root hashes for the same tree size {size}: the log has forked")]
    Fork { size: u64 },
    #[error("{0}")]
    Malformed(String),
}

/// The hashes of an append-only tree, in memory.
#[derive(Debug, Default, Clone)]
pub struct MerkleTree {
    stored: Vec<tlog_tiles::Hash>,
    leaves: u64,
}

impl HashReader for MerkleTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&index| {
                usize::try_from(index)
                    .ok()
                    .and_then(|index| self.stored.get(index))
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

fn internal(error: tlog_tiles::Error) -> ProofError {
    ProofError::Malformed(format!("tree arithmetic failed: {error}"))
}

impl MerkleTree {
    pub fn new() -> MerkleTree {
        MerkleTree::default()
    }

    /// The number of leaves.
    pub fn len(&self) -> u64 {
        self.leaves
    }

    pub fn is_empty(&self) -> bool {
        self.leaves == 0
    }

    /// Appends a leaf by its leaf hash ([`Hash::of_leaf`]).
    pub fn push(&mut self, leaf_hash: Hash) {
        // Reads only hashes already stored, so it cannot fail on a consistent tree.
        match tlog_tiles::stored_hashes_for_record_hash(self.leaves, leaf_hash.into(), self) {
            Ok(hashes) => {
                self.stored.extend(hashes);
                self.leaves += 1;
            }
            Err(error) => unreachable!("stored hashes of a consistent tree: {error}"),
        }
    }

    /// The leaf hash at `index`.
    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        if index >= self.leaves {
            return None;
        }
        let stored = tlog_tiles::stored_hash_index(0, index);
        self.read_hashes(&[stored])
            .ok()
            .map(|hashes| hashes[0].into())
    }

    /// The root hash of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        tlog_tiles::tree_hash(size, self)
            .map(Hash::from)
            .map_err(internal)
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162
    /// section 2.1.3 order: from the leaf's sibling up to the root's child).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let proof = tlog_tiles::prove_record(size, index, self).map_err(internal)?;
        Ok(proof.into_iter().map(Hash::from).collect())
    }

    /// The proof that the first `old` leaves are a prefix of the first `new` (RFC 9162
    /// section 2.1.4). Empty when `old` is 0 or equal to `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(new)?;
        if old > new {
            return Err(ProofError::SizesOutOfOrder { old, new });
        }
        if old == 0 || old == new {
            return Ok(Vec::new());
        }
        let proof = tlog_tiles::prove_tree(new, old, self).map_err(internal)?;
        Ok(proof.into_iter().map(Hash::from).collect())
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.leaves {
            return Err(ProofError::SizeBeyondLog {
                size,
                len: self.leaves,
            });
        }
        Ok(())
    }
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    leaf_hash: Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // A proof is at most one hash per level of a 2^64 tree; refuse more before recursing.
    if proof.len() > 64 {
        return Err(ProofError::InclusionMismatch);
    }
    let proof: RecordProof = proof.iter().map(|&hash| hash.into()).collect();
    tlog_tiles::check_record(&proof, size, root.into(), index, leaf_hash.into())
        .map_err(|_| ProofError::InclusionMismatch)
}

/// Checks that the tree (`new_size`, `new_root`) extends the tree (`old_size`,
/// `old_root`). Equal sizes must have equal roots (and an empty proof); a different root
/// for the same size is reported as [`ProofError::Fork`].
pub fn verify_consistency(
    old_size: u64,
    old_root: Hash,
    new_size: u64,
    new_root: Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        if old_root != new_root {
            return Err(ProofError::Fork { size: old_size });
        }
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::ConsistencyMismatch)
        };
    }
    if old_size == 0 {
        // Every tree extends the empty tree, whose root is fixed.
        return if proof.is_empty() && old_root == Hash::empty_tree() {
            Ok(())
        } else {
            Err(ProofError::ConsistencyMismatch)
        };
    }
    if proof.len() > 128 {
        return Err(ProofError::ConsistencyMismatch);
    }
    let proof: TreeProof = proof.iter().map(|&hash| hash.into()).collect();
    tlog_tiles::check_tree(&proof, new_size, new_root.into(), old_size, old_root.into())
        .map_err(|_| ProofError::ConsistencyMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(hex_text: &str) -> Hash {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut bytes).unwrap();
        Hash(bytes)
    }

    /// The eight leaves and roots of RFC 6962's reference tree, as published in
    /// transparency-dev/merkle `proof/verify_test.go` (and certificate-transparency-go).
    fn reference_tree() -> (MerkleTree, Vec<Hash>) {
        let leaves: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let mut tree = MerkleTree::new();
        for leaf in leaves {
            tree.push(Hash::of_leaf(leaf));
        }
        (tree, roots.iter().map(|r| h(r)).collect())
    }

    #[test]
    fn roots_match_the_reference_vectors() {
        let (tree, roots) = reference_tree();
        assert_eq!(tree.root(0).unwrap(), Hash::empty_tree());
        for (size, root) in (1..=8).zip(&roots) {
            assert_eq!(tree.root(size).unwrap(), *root, "root of size {size}");
        }
    }

    #[test]
    fn inclusion_proofs_match_the_reference_vectors() {
        let (tree, roots) = reference_tree();
        // (leaf index, tree size, audit path) from transparency-dev/merkle inclusionProofs
        // (which number leaves from 1).
        let vectors: [(u64, u64, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, expected) in vectors {
            let expected: Vec<Hash> = expected.iter().map(|e| h(e)).collect();
            let proof = tree.inclusion_proof(index, size).unwrap();
            assert_eq!(proof, expected, "proof of leaf {index} in size {size}");
            let leaf = tree.leaf_hash(index).unwrap();
            let root = roots[size as usize - 1];
            verify_inclusion(leaf, index, size, &proof, root).unwrap();
            // The corruptions transparency-dev/merkle probes must all fail.
            assert!(verify_inclusion(leaf, index + 1, size, &proof, root).is_err());
            assert!(verify_inclusion(leaf, index, size * 2, &proof, root).is_err());
            assert!(
                verify_inclusion(Hash::of_leaf(b"WrongLeaf"), index, size, &proof, root).is_err()
            );
            assert!(verify_inclusion(leaf, index, size, &proof, Hash::empty_tree()).is_err());
            let mut longer = proof.clone();
            longer.push(root);
            assert!(verify_inclusion(leaf, index, size, &longer, root).is_err());
            for position in 0..proof.len() {
                let mut flipped = proof.clone();
                flipped[position].0[0] ^= 8;
                assert!(verify_inclusion(leaf, index, size, &flipped, root).is_err());
            }
        }
    }

    #[test]
    fn consistency_proofs_match_the_reference_vectors() {
        let (tree, roots) = reference_tree();
        let vectors: [(u64, u64, &[&str]); 5] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (old, new, expected) in vectors {
            let expected: Vec<Hash> = expected.iter().map(|e| h(e)).collect();
            let proof = tree.consistency_proof(old, new).unwrap();
            assert_eq!(proof, expected, "consistency {old} -> {new}");
            let (old_root, new_root) = (roots[old as usize - 1], roots[new as usize - 1]);
            verify_consistency(old, old_root, new, new_root, &proof).unwrap();
            if !proof.is_empty() {
                assert!(verify_consistency(old, new_root, new, old_root, &proof).is_err());
                assert!(verify_consistency(old, old_root, new, new_root, &[]).is_err());
                assert!(verify_consistency(old + 1, old_root, new, new_root, &proof).is_err());
                assert!(
                    verify_consistency(old, old_root, new, new_root, &proof[..proof.len() - 1])
                        .is_err()
                );
                for position in 0..proof.len() {
                    let mut flipped = proof.clone();
                    flipped[position].0[0] ^= 16;
                    assert!(verify_consistency(old, old_root, new, new_root, &flipped).is_err());
                }
            }
        }
    }

    #[test]
    fn edge_cases() {
        let (tree, roots) = reference_tree();
        assert_eq!(
            verify_consistency(3, roots[2], 3, roots[3], &[]),
            Err(ProofError::Fork { size: 3 })
        );
        verify_consistency(0, Hash::empty_tree(), 5, roots[4], &[]).unwrap();
        assert!(verify_consistency(0, roots[0], 5, roots[4], &[]).is_err());
        assert!(verify_consistency(5, roots[4], 3, roots[2], &[]).is_err());
        assert!(tree.inclusion_proof(8, 8).is_err());
        assert!(tree.inclusion_proof(0, 9).is_err());
        assert!(tree.consistency_proof(5, 3).is_err());
        assert!(verify_inclusion(roots[0], 0, 0, &[], roots[0]).is_err());
        assert!(
            verify_inclusion(
                Hash::empty_tree(),
                0,
                1,
                &[Hash::empty_tree(); 65],
                roots[0]
            )
            .is_err()
        );
        assert_eq!(tree.leaf_hash(8), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn proofs_verify_for_random_sizes(size in 1u64..600, index_seed in any::<u64>(), old_seed in any::<u64>()) {
            let mut tree = MerkleTree::new();
            for leaf in 0..size {
                tree.push(Hash::of_leaf(&leaf.to_be_bytes()));
            }
            let index = index_seed % size;
            let root = tree.root(size).unwrap();
            let proof = tree.inclusion_proof(index, size).unwrap();
            let leaf = Hash::of_leaf(&index.to_be_bytes());
            prop_assert!(verify_inclusion(leaf, index, size, &proof, root).is_ok());
            prop_assert!(verify_inclusion(Hash::of_leaf(b"other"), index, size, &proof, root).is_err());
            if size > 1 {
                let other = (index + 1) % size;
                prop_assert!(verify_inclusion(leaf, other, size, &proof, root).is_err());
            }

            let old = old_seed % (size + 1);
            let old_root = tree.root(old).unwrap();
            let consistency = tree.consistency_proof(old, size).unwrap();
            prop_assert!(verify_consistency(old, old_root, size, root, &consistency).is_ok());
            if old > 0 && old < size {
                let mut flipped = consistency.clone();
                flipped[0].0[31] ^= 1;
                prop_assert!(verify_consistency(old, old_root, size, root, &flipped).is_err());
                prop_assert!(verify_consistency(old, Hash::of_leaf(b"x"), size, root, &consistency).is_err());
            }
        }
    }
}
