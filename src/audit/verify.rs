//! Verifying an audit trail, without Kafka: one partition's records in
//! order, against the partition's signed checkpoints.
//!
//! Per record: its hash over its fields; its `leaf_index` the partition's
//! next (a missing prefix, a gap or a step back is named); its link to its
//! interaction's previous record (`prev_hash`, `seq` + 1: a gap, a fork, a
//! step back or a benign duplicate is named). Per partition: each
//! checkpoint's signature (valid, invalid, unknown key), the Merkle root
//! recomputed at each checkpoint's size, checkpoints covering more leaves
//! than the topic holds (truncation), and the leaves after the last
//! checkpoint (the unanchored tail). Memory: the interactions whose chain
//! is open (an ended one leaves 8 bytes), the frontier, the checkpoints.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use super::merkle::{Frontier, Hash};
use super::note::{NoteError, NoteVerifier};
use super::record::{AuditRecord, GENESIS};
use super::states::State;

/// What the verifier found wrong (or worth a count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A record whose hash does not match its fields (an edit).
    HashMismatch,
    /// A record whose `prev_hash` is not its predecessor's hash.
    PrevMismatch,
    /// A chain that skips sequence numbers (a record deleted).
    SeqGap,
    /// Two different records with one sequence number.
    Fork,
    /// A chain whose sequence goes back (records reordered).
    Reorder,
    /// A partition whose leaf indices skip (a record deleted).
    LeafGap,
    /// A partition whose leaf indices go back (records reordered or inserted).
    LeafReorder,
    /// The partition starts after leaf 0 (a prefix deleted).
    MissingPrefix,
    /// The recomputed Merkle root differs from a signed checkpoint's.
    RootMismatch,
    /// A signed checkpoint covers more leaves than the topic holds.
    Truncated,
    /// A checkpoint whose signature does not verify.
    InvalidCheckpoint,
    /// A checkpoint signed by no key the verifier was given.
    UnknownKey,
    /// Two valid checkpoints of one size with different roots.
    CheckpointConflict,
    /// A record after its interaction's `ended` record.
    AfterEnd,
    /// A record this build cannot read.
    Unreadable,
    /// The same record twice (a re-delivery; benign, counted).
    Duplicate,
}

impl Kind {
    /// Whether this finding fails the verification.
    pub fn fails(self) -> bool {
        !matches!(self, Kind::Duplicate)
    }
}

/// One finding, with where it is. Interaction ids are Genesys ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub partition: i32,
    pub leaf_index: Option<u64>,
    pub interaction_id: Option<String>,
    pub detail: String,
}

/// One partition's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartitionReport {
    pub records: u64,
    pub first_leaf: Option<u64>,
    pub checkpoints_valid: u64,
    pub checkpoints_invalid: u64,
    pub checkpoints_unknown_key: u64,
    /// Checkpoint sizes at which the recomputed root matched.
    pub roots_matched: u64,
    /// Leaves after the last valid checkpoint.
    pub unanchored_tail: u64,
    pub open_chains: u64,
    pub ended_chains: u64,
}

/// Verifies one partition.
#[derive(Debug)]
pub struct PartitionVerifier {
    partition: i32,
    /// Valid checkpoints: size → root.
    checkpoints: BTreeMap<u64, Hash>,
    frontier: Frontier,
    next_leaf: Option<u64>,
    /// interaction → (seq, hash) of its last record.
    heads: HashMap<String, (u64, String)>,
    ended: HashSet<u64>,
    report: PartitionReport,
    findings: Vec<Finding>,
    counts: BTreeMap<Kind, u64>,
    /// How many findings to keep (all are counted).
    keep: usize,
}

impl PartitionVerifier {
    /// `notes`: the partition's checkpoint notes, in any order; `origin`:
    /// the origin they must name.
    pub fn new(
        partition: i32,
        origin: &str,
        notes: &[String],
        key: &NoteVerifier,
        keep: usize,
    ) -> Self {
        let mut v = PartitionVerifier {
            partition,
            checkpoints: BTreeMap::new(),
            frontier: Frontier::default(),
            next_leaf: None,
            heads: HashMap::new(),
            ended: HashSet::new(),
            report: PartitionReport::default(),
            findings: Vec::new(),
            counts: BTreeMap::new(),
            keep,
        };
        for note in notes {
            match key.verify(note) {
                Ok(cp) if cp.origin != origin => {
                    v.report.checkpoints_invalid += 1;
                    v.find(
                        Kind::InvalidCheckpoint,
                        None,
                        None,
                        format!("names origin `{}`, not `{origin}`", cp.origin),
                    );
                }
                Ok(cp) => {
                    v.report.checkpoints_valid += 1;
                    match v.checkpoints.get(&cp.size) {
                        Some(root) if *root != cp.root => v.find(
                            Kind::CheckpointConflict,
                            None,
                            None,
                            format!("two signed roots for size {}", cp.size),
                        ),
                        _ => {
                            v.checkpoints.insert(cp.size, cp.root);
                        }
                    }
                }
                Err(NoteError::UnknownKey(signers)) => {
                    v.report.checkpoints_unknown_key += 1;
                    v.find(Kind::UnknownKey, None, None, format!("signed as {signers}"));
                }
                Err(e) => {
                    v.report.checkpoints_invalid += 1;
                    v.find(Kind::InvalidCheckpoint, None, None, e.to_string());
                }
            }
        }
        v
    }

    fn find(&mut self, kind: Kind, leaf: Option<u64>, id: Option<&str>, detail: String) {
        *self.counts.entry(kind).or_default() += 1;
        if self.findings.len() < self.keep {
            self.findings.push(Finding {
                kind,
                partition: self.partition,
                leaf_index: leaf,
                interaction_id: id.map(str::to_string),
                detail,
            });
        }
    }

    /// A record that could not be read.
    pub fn unreadable(&mut self, why: String) {
        self.report.records += 1;
        self.find(Kind::Unreadable, None, None, why);
    }

    /// The partition's next record.
    pub fn push(&mut self, r: &AuditRecord) {
        self.report.records += 1;
        let leaf = r.leaf_index;
        let id = r.interaction_id.as_str();
        if !r.hash_ok() {
            self.find(
                Kind::HashMismatch,
                Some(leaf),
                Some(id),
                format!("seq {}", r.seq),
            );
        }
        if r.partition != self.partition {
            self.find(
                Kind::LeafReorder,
                Some(leaf),
                Some(id),
                format!("names partition {}", r.partition),
            );
        }
        match self.next_leaf {
            None => {
                self.report.first_leaf = Some(leaf);
                if leaf != 0 {
                    self.find(
                        Kind::MissingPrefix,
                        Some(leaf),
                        None,
                        format!("the first {leaf} leaves are missing"),
                    );
                }
            }
            Some(want) if leaf > want => {
                self.find(
                    Kind::LeafGap,
                    Some(leaf),
                    Some(id),
                    format!("leaf {want} expected"),
                );
            }
            Some(want) if leaf < want => {
                self.find(
                    Kind::LeafReorder,
                    Some(leaf),
                    Some(id),
                    format!("leaf {want} expected"),
                );
            }
            Some(_) => {}
        }
        self.next_leaf = Some(leaf + 1);
        // The tree over the leaves as they lie in the topic.
        match r.leaf() {
            Some(l) => self.frontier.push(l),
            None => self.find(
                Kind::HashMismatch,
                Some(leaf),
                Some(id),
                "hash is not 64 hex".into(),
            ),
        }
        // (With a missing prefix no root can match: both are named.)
        if let Some(root) = self.checkpoints.get(&self.frontier.size()) {
            if *root == self.frontier.root() {
                self.report.roots_matched += 1;
            } else {
                let size = self.frontier.size();
                self.find(
                    Kind::RootMismatch,
                    Some(leaf),
                    None,
                    format!("at checkpoint size {size}"),
                );
            }
        }
        self.chain(r);
    }

    fn chain(&mut self, r: &AuditRecord) {
        let id = r.interaction_id.as_str();
        let leaf = Some(r.leaf_index);
        if self.ended.contains(&xxh3_64(id.as_bytes())) {
            self.find(
                Kind::AfterEnd,
                leaf,
                Some(id),
                format!("seq {} after `ended`", r.seq),
            );
            return;
        }
        match self.heads.get(id).cloned() {
            None => {
                if r.seq != 1 {
                    self.find(
                        Kind::SeqGap,
                        leaf,
                        Some(id),
                        format!("the chain starts at seq {}", r.seq),
                    );
                } else if r.prev_hash != GENESIS {
                    self.find(
                        Kind::PrevMismatch,
                        leaf,
                        Some(id),
                        "seq 1 without the genesis prev_hash".into(),
                    );
                }
            }
            Some((seq, hash)) => {
                if r.seq == seq && r.hash == hash {
                    *self.counts.entry(Kind::Duplicate).or_default() += 1;
                    return;
                }
                if r.seq == seq {
                    self.find(
                        Kind::Fork,
                        leaf,
                        Some(id),
                        format!("two records with seq {seq}"),
                    );
                } else if r.seq < seq {
                    self.find(
                        Kind::Reorder,
                        leaf,
                        Some(id),
                        format!("seq {} after seq {seq}", r.seq),
                    );
                    return;
                } else if r.seq > seq + 1 {
                    self.find(
                        Kind::SeqGap,
                        leaf,
                        Some(id),
                        format!("seq {} after seq {seq}", r.seq),
                    );
                } else if r.prev_hash != hash {
                    self.find(Kind::PrevMismatch, leaf, Some(id), format!("seq {}", r.seq));
                }
            }
        }
        if r.to_state == State::Ended.as_str() {
            self.heads.remove(id);
            self.ended.insert(xxh3_64(id.as_bytes()));
            self.report.ended_chains += 1;
        } else {
            self.heads.insert(id.to_string(), (r.seq, r.hash.clone()));
        }
    }

    /// The end of the partition.
    pub fn finish(mut self) -> (PartitionReport, Vec<Finding>, BTreeMap<Kind, u64>) {
        let leaves = self.frontier.size();
        if let Some((&size, _)) = self.checkpoints.range(leaves + 1..).next_back() {
            self.find(
                Kind::Truncated,
                None,
                None,
                format!("a signed checkpoint covers {size} leaves; the partition holds {leaves}"),
            );
        }
        let anchored = self
            .checkpoints
            .range(..=leaves)
            .next_back()
            .map_or(0, |(s, _)| *s);
        self.report.unanchored_tail = leaves - anchored.min(leaves);
        self.report.open_chains = self.heads.len() as u64;
        (self.report, self.findings, self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::note::{Checkpoint, NoteSigner};
    use crate::audit::record::tests::record;

    const ORIGIN: &str = "cxstream.audit/cx.audit.events/3";

    /// Three interactions' chains interleaved on partition 3.
    fn log() -> Vec<AuditRecord> {
        let mut out = Vec::new();
        let mut heads: HashMap<&str, (u64, String)> = HashMap::new();
        for (i, id) in ["a", "b", "a", "c", "b", "a", "c", "b"].iter().enumerate() {
            let (seq, prev) = heads
                .get(id)
                .map_or((1, GENESIS.to_string()), |(s, h)| (s + 1, h.clone()));
            let mut r = record(id, seq, &prev, i as u64);
            if seq == 3 {
                r.to_state = "ended".into();
                r = r.seal();
            }
            heads.insert(id, (seq, r.hash.clone()));
            out.push(r);
        }
        out
    }

    fn sign(log: &[AuditRecord], size: usize, s: &NoteSigner) -> String {
        let mut f = Frontier::default();
        for r in &log[..size] {
            f.push(r.leaf().expect("leaf"));
        }
        s.sign(&Checkpoint {
            origin: ORIGIN.into(),
            size: size as u64,
            root: f.root(),
        })
    }

    fn verify(log: &[AuditRecord], notes: &[String], key: &NoteVerifier) -> BTreeMap<Kind, u64> {
        let mut v = PartitionVerifier::new(3, ORIGIN, notes, key, 100);
        for r in log {
            v.push(r);
        }
        let (_, _, counts) = v.finish();
        counts.into_iter().filter(|(k, _)| k.fails()).collect()
    }

    #[test]
    fn a_clean_log_verifies_and_every_tampering_is_named() {
        let key = NoteSigner::generate("cxstream-audit");
        let v = key.verifier();
        let clean = log();
        let notes = vec![sign(&clean, 4, &key), sign(&clean, 8, &key)];
        let mut pv = PartitionVerifier::new(3, ORIGIN, &notes, &v, 100);
        for r in &clean {
            pv.push(r);
        }
        let (report, findings, _) = pv.finish();
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(report.roots_matched, 2);
        assert_eq!(report.checkpoints_valid, 2);
        assert_eq!(report.unanchored_tail, 0);
        assert_eq!(report.ended_chains, 2);
        assert_eq!(report.open_chains, 1);

        let has = |log: &[AuditRecord], notes: &[String], kind: Kind| {
            let found = verify(log, notes, &v);
            assert!(found.contains_key(&kind), "{kind:?} not found in {found:?}");
        };
        // One edited field.
        let mut edited = clean.clone();
        edited[2].actor = "agent:someone-else".into();
        has(&edited, &notes, Kind::HashMismatch);
        // One deleted record in the middle.
        let mut deleted = clean.clone();
        deleted.remove(2);
        has(&deleted, &notes, Kind::LeafGap);
        has(&deleted, &notes, Kind::SeqGap);
        has(&deleted, &notes, Kind::RootMismatch);
        // Two swapped records.
        let mut swapped = clean.clone();
        swapped.swap(0, 2);
        has(&swapped, &notes, Kind::LeafReorder);
        has(&swapped, &notes, Kind::RootMismatch);
        // An inserted forged record, the chain and leaves recomputed after it.
        let mut forged: Vec<AuditRecord> = clean[..3].to_vec();
        let prev = clean[3].prev_hash.clone();
        forged.push(record("c", 1, &prev, 3));
        for (i, r) in clean[3..].iter().enumerate() {
            forged.push(
                AuditRecord {
                    leaf_index: 4 + i as u64,
                    ..r.clone()
                }
                .seal(),
            );
        }
        has(&forged, &notes, Kind::RootMismatch);
        // The last two records truncated after a checkpoint covered them.
        has(&clean[..6], &notes, Kind::Truncated);
        // A checkpoint signed with another key.
        let other = NoteSigner::generate("cxstream-audit");
        has(&clean, &[sign(&clean, 8, &other)], Kind::UnknownKey);
        // A forged checkpoint over a rewritten log.
        has(&forged, &[sign(&forged, 8, &other)], Kind::UnknownKey);
        // A checkpoint with an edited size.
        let bent = notes[1].replacen("\n8\n", "\n7\n", 1);
        has(&clean, &[bent], Kind::InvalidCheckpoint);
    }

    #[test]
    fn a_redelivered_record_is_benign_and_a_missing_prefix_is_named() {
        let key = NoteSigner::generate("k");
        let clean = log();
        let mut again = clean.clone();
        again.insert(3, clean[2].clone());
        let found = verify(&again, &[], &key.verifier());
        assert!(found.contains_key(&Kind::LeafReorder), "{found:?}");
        assert!(!found.contains_key(&Kind::Fork));
        let found = verify(&clean[2..], &[], &key.verifier());
        assert!(found.contains_key(&Kind::MissingPrefix), "{found:?}");
    }
}
