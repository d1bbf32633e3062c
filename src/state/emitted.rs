//! The emitted-state model (changelog format 1), without Kafka.
//!
//! A task's state that must survive a crash is *what it already emitted*:
//! the dedup fingerprints of every event that reached silver or late, each
//! interaction's last emitted event time (the reorder operator's late
//! decision), and the positions of records already dead-lettered. Events
//! still buffered are not state: their input offsets are not committed, so
//! they are read again.
//!
//! Two sources rebuild it when a partition is assigned:
//!
//! * the **changelog** (`cx.internal.<topology>.changelog`, one partition per
//!   input partition): [`Delta`] records written after the outputs they
//!   describe were acknowledged, each carrying the output offsets it covers;
//! * the **tail of the output topics** after those offsets: every silver and
//!   late record carries a `cx.state` header ([`state_header`]), every dead
//!   letter its source position, so outputs acknowledged after the last
//!   changelog record (a crash in between) are found too.
//!
//! The outputs are the truth of what left the processor; the changelog only
//! makes reading them short. [`Restored`] folds both.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::model::Fingerprint;

/// Entries (fingerprints + interactions + dead letters) per changelog record:
/// keeps records well under the brokers' default 1 MB message limit.
pub const MAX_ENTRIES_PER_RECORD: usize = 8_192;

/// Errors reading state records. Never quotes record contents.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("changelog record is not a state delta: {0}")]
    BadDelta(String),
    #[error("changelog record has format version {0}; this build reads version 1")]
    Version(u32),
    #[error("malformed `cx.state` header")]
    BadHeader,
    #[error("state record: {0}")]
    BadRecord(&'static str),
    #[error("state record has format {0}; this model reads format 2")]
    Format(u32),
}

/// Where a dead-lettered unit came from: the topic role
/// ([`crate::stage::Role::code`]: 0 input, 1 repartition, 2 + n co-input
/// n), the record offset and the unit's byte offset in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeadLetterPos {
    pub source: u8,
    pub offset: i64,
    pub unit: u32,
}

/// The `cx.state` header of a silver or late record:
/// `<event_time_ms>;<content fingerprint hex>[;<envelope-id fingerprint hex>]`.
pub fn state_header(
    event_time_ms: i64,
    content_fp: Fingerprint,
    id_fp: Option<Fingerprint>,
) -> String {
    let mut out = String::with_capacity(90);
    write_state_header(&mut out, event_time_ms, content_fp, id_fp);
    out
}

/// [`state_header`] into a reused buffer (cleared first): the runtime
/// writes one per silver or late record without allocating.
pub fn write_state_header(
    out: &mut String,
    event_time_ms: i64,
    content_fp: Fingerprint,
    id_fp: Option<Fingerprint>,
) {
    use std::fmt::Write;
    out.clear();
    // Writing to a String cannot fail.
    let _ = match id_fp {
        Some(id) if id != content_fp => write!(out, "{event_time_ms};{content_fp:032x};{id:032x}"),
        _ => write!(out, "{event_time_ms};{content_fp:032x}"),
    };
}

/// Parses a [`state_header`].
pub fn parse_state_header(h: &str) -> Result<(i64, Fingerprint, Option<Fingerprint>), StateError> {
    let mut it = h.split(';');
    let t = it
        .next()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or(StateError::BadHeader)?;
    let c = it
        .next()
        .and_then(|c| u128::from_str_radix(c, 16).ok())
        .ok_or(StateError::BadHeader)?;
    let id = match it.next() {
        None => None,
        Some(s) => Some(u128::from_str_radix(s, 16).map_err(|_| StateError::BadHeader)?),
    };
    if it.next().is_some() {
        return Err(StateError::BadHeader);
    }
    Ok((t, c, id))
}

/// One changelog record on the wire (JSON).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct WireDelta {
    v: u32,
    /// Fingerprints, 32 hex digits each, concatenated.
    keys: String,
    /// (interaction id, last emitted event time ms).
    emitted: Vec<(String, i64)>,
    /// (0 = input / 1 = repartition / 2 + n = co-input n, offset, unit byte offset).
    dead_letters: Vec<(u8, i64, u32)>,
    /// (topic, partition, next offset): every output of this task below it
    /// is described by this record or an earlier one.
    covers: Vec<(String, i32, i64)>,
    /// The instance that wrote the record and whether it still owns the
    /// partition (absent in records of older builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<WireOwner>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct WireOwner {
    id: String,
    released: bool,
}

/// Who owns a partition, as its changelog last said: every owner writes a
/// record at least once per commit interval while it holds the partition
/// (a lease), and a *released* record once it has handed it over (outputs
/// acknowledged, changelog written, offsets committed). A new owner waits
/// for the release, or for the lease to lapse, before it reads the outputs'
/// tail: without broker-side fencing, that is what keeps two owners from
/// emitting for the same partition at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerMark {
    pub id: String,
    pub released: bool,
    /// Timestamp of the record that said so (ms since the epoch).
    pub at_ms: i64,
}

/// What a task emitted since its last changelog record, plus the output
/// offsets covered so far (cumulative).
#[derive(Debug, Default)]
pub struct Delta {
    keys: Vec<Fingerprint>,
    emitted: HashMap<String, i64>,
    dead_letters: Vec<DeadLetterPos>,
    covers: BTreeMap<(String, i32), i64>,
    covers_changed: bool,
}

impl Delta {
    /// A silver or late record was acknowledged.
    pub fn record_emitted(
        &mut self,
        interaction: &str,
        event_time_ms: i64,
        content_fp: Fingerprint,
        id_fp: Option<Fingerprint>,
    ) {
        self.keys.push(content_fp);
        if let Some(id) = id_fp.filter(|id| *id != content_fp) {
            self.keys.push(id);
        }
        match self.emitted.get_mut(interaction) {
            Some(t) => *t = (*t).max(event_time_ms),
            None => {
                self.emitted.insert(interaction.to_string(), event_time_ms);
            }
        }
    }

    /// A dead letter was acknowledged.
    pub fn record_dead_letter(&mut self, pos: DeadLetterPos) {
        self.dead_letters.push(pos);
    }

    /// An output of this task was acknowledged at `offset`.
    pub fn cover(&mut self, topic: &str, partition: i32, offset: i64) {
        let next = offset + 1;
        match self.covers.get_mut(&(topic.to_string(), partition)) {
            Some(o) if *o >= next => {}
            Some(o) => {
                *o = next;
                self.covers_changed = true;
            }
            None => {
                self.covers.insert((topic.to_string(), partition), next);
                self.covers_changed = true;
            }
        }
    }

    /// Entries waiting to be written.
    pub fn pending(&self) -> usize {
        self.keys.len() + self.emitted.len() + self.dead_letters.len()
    }

    /// True when a record should be written now (something new, or covers
    /// moved).
    pub fn is_dirty(&self) -> bool {
        self.pending() > 0 || self.covers_changed
    }

    /// Encodes the pending entries (at most [`MAX_ENTRIES_PER_RECORD`]) as
    /// one changelog record and clears them; call again while
    /// [`Delta::pending`] is non-zero. The covers are only written with the
    /// last chunk, so a record never claims outputs a later chunk describes.
    pub fn take_record(&mut self, owner: &str) -> Vec<u8> {
        let mut budget = MAX_ENTRIES_PER_RECORD;
        let nk = self.keys.len().min(budget);
        let mut keys = String::with_capacity(nk * 32);
        for k in self.keys.drain(..nk) {
            keys.push_str(&format!("{k:032x}"));
        }
        budget -= nk;
        let ne = self.emitted.len().min(budget);
        let take: Vec<String> = self.emitted.keys().take(ne).cloned().collect();
        let mut emitted = Vec::with_capacity(ne);
        for id in take {
            if let Some(t) = self.emitted.remove(&id) {
                emitted.push((id, t));
            }
        }
        budget -= ne;
        let nd = self.dead_letters.len().min(budget);
        let dead_letters = self
            .dead_letters
            .drain(..nd)
            .map(|d| (d.source, d.offset, d.unit))
            .collect();
        let last = self.pending() == 0;
        let covers = if last {
            self.covers_changed = false;
            self.covers
                .iter()
                .map(|((t, p), o)| (t.clone(), *p, *o))
                .collect()
        } else {
            Vec::new()
        };
        let wire = WireDelta {
            v: 1,
            keys,
            emitted,
            dead_letters,
            covers,
            owner: Some(WireOwner {
                id: owner.to_string(),
                released: false,
            }),
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

/// A changelog record with no state, only ownership: the lease renewal of
/// an owner with nothing new to write (`released = false`), or its release.
pub fn owner_record(owner: &str, released: bool) -> Vec<u8> {
    let wire = WireDelta {
        v: 1,
        keys: String::new(),
        emitted: Vec::new(),
        dead_letters: Vec::new(),
        covers: Vec::new(),
        owner: Some(WireOwner {
            id: owner.to_string(),
            released,
        }),
    };
    serde_json::to_vec(&wire).unwrap_or_default()
}

/// State rebuilt for one partition.
#[derive(Debug, Default)]
pub struct Restored {
    pub keys: Vec<Fingerprint>,
    pub emitted: HashMap<String, i64>,
    pub dead_letters: HashSet<DeadLetterPos>,
    /// Output offsets the changelog covers (where the output scan starts).
    pub covers: BTreeMap<(String, i32), i64>,
    pub changelog_records: u64,
    pub output_records: u64,
    /// Changelog records older than the dedup TTL (their keys are skipped).
    pub expired_records: u64,
    /// What was found in the output tail: written back to the changelog
    /// with the new covers, so the next restore need not scan it again.
    tail: Delta,
    /// The owner the changelog names last.
    pub owner: Option<OwnerMark>,
}

impl Restored {
    /// The first changelog record after a restore: what the output scan
    /// found, covering every output offset read.
    pub fn into_delta(&mut self) -> Delta {
        let mut d = std::mem::take(&mut self.tail);
        d.covers = self.covers.clone();
        d.covers_changed = true;
        d
    }

    /// Folds one changelog record; `expired`: older than the dedup TTL (its
    /// fingerprints would have expired; emitted times and covers still count).
    /// `at_ms`: the record's timestamp.
    pub fn apply_changelog(
        &mut self,
        value: &[u8],
        expired: bool,
        at_ms: i64,
    ) -> Result<(), StateError> {
        let wire: WireDelta = serde_json::from_slice(value).map_err(|e| {
            StateError::BadDelta(format!("{:?} error at column {}", e.classify(), e.column()))
        })?;
        if wire.v != 1 {
            return Err(StateError::Version(wire.v));
        }
        if let Some(o) = wire.owner {
            self.owner = Some(OwnerMark {
                id: o.id,
                released: o.released,
                at_ms,
            });
        }
        self.changelog_records += 1;
        if expired {
            self.expired_records += 1;
        } else {
            let hex = wire.keys.as_bytes();
            if hex.len() % 32 != 0 {
                return Err(StateError::BadDelta("fingerprint list length".into()));
            }
            for chunk in hex.chunks(32) {
                let s = std::str::from_utf8(chunk)
                    .map_err(|_| StateError::BadDelta("fingerprint encoding".into()))?;
                let k = u128::from_str_radix(s, 16)
                    .map_err(|_| StateError::BadDelta("fingerprint encoding".into()))?;
                self.keys.push(k);
            }
        }
        for (id, t) in wire.emitted {
            self.note_emitted(id, t);
        }
        for (role, offset, unit) in wire.dead_letters {
            self.dead_letters.insert(DeadLetterPos {
                source: role,
                offset,
                unit,
            });
        }
        for (t, p, o) in wire.covers {
            let e = self.covers.entry((t, p)).or_insert(o);
            *e = (*e).max(o);
        }
        Ok(())
    }

    /// Folds one silver or late record found after the covered offsets.
    pub fn apply_output(
        &mut self,
        interaction: &str,
        state_header: &str,
    ) -> Result<(), StateError> {
        let (t, c, id) = parse_state_header(state_header)?;
        self.output_records += 1;
        self.tail.record_emitted(interaction, t, c, id);
        self.keys.push(c);
        if let Some(id) = id {
            self.keys.push(id);
        }
        self.note_emitted(interaction.to_string(), t);
        Ok(())
    }

    /// Folds one dead letter found after the covered offsets.
    pub fn apply_dead_letter(&mut self, pos: DeadLetterPos) {
        self.output_records += 1;
        self.tail.record_dead_letter(pos);
        self.dead_letters.insert(pos);
    }

    fn note_emitted(&mut self, id: String, t: i64) {
        let e = self.emitted.entry(id).or_insert(t);
        *e = (*e).max(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_header_round_trips() {
        let h = state_header(1_700_000_000_123, 0xabc, Some(0xdef));
        assert_eq!(
            parse_state_header(&h).unwrap(),
            (1_700_000_000_123, 0xabc, Some(0xdef))
        );
        let h = state_header(5, 7, Some(7));
        assert_eq!(parse_state_header(&h).unwrap(), (5, 7, None));
        let h = state_header(-3, u128::MAX, None);
        assert_eq!(parse_state_header(&h).unwrap(), (-3, u128::MAX, None));
        for bad in ["", "x;1", "1", "1;zz", "1;2;3;4", "1;2;q"] {
            assert!(parse_state_header(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deltas_restore_what_was_emitted() {
        let mut d = Delta::default();
        d.record_emitted("conv-a", 100, 1, Some(2));
        d.record_emitted("conv-a", 90, 3, None);
        d.record_emitted("conv-b", 50, 4, Some(4));
        d.record_dead_letter(DeadLetterPos {
            source: 1,
            offset: 17,
            unit: 40,
        });
        d.cover("silver", 0, 9);
        d.cover("silver", 0, 4); // acks never move a cover back
        d.cover("cx.dlq", 2, 0);
        assert!(d.is_dirty());
        let rec = d.take_record("t");
        assert_eq!(d.pending(), 0);
        assert!(!d.is_dirty());

        let mut r = Restored::default();
        r.apply_changelog(&rec, false, 0).unwrap();
        let mut keys = r.keys.clone();
        keys.sort_unstable();
        assert_eq!(keys, vec![1, 2, 3, 4]);
        assert_eq!(r.emitted["conv-a"], 100);
        assert_eq!(r.emitted["conv-b"], 50);
        assert!(r.dead_letters.contains(&DeadLetterPos {
            source: 1,
            offset: 17,
            unit: 40
        }));
        assert_eq!(r.covers[&("silver".to_string(), 0)], 10);
        assert_eq!(r.covers[&("cx.dlq".to_string(), 2)], 1);

        // The output tail adds what the changelog missed.
        r.apply_output("conv-a", &state_header(120, 9, None))
            .unwrap();
        assert_eq!(r.emitted["conv-a"], 120);
        assert!(r.keys.contains(&9));
        assert_eq!((r.changelog_records, r.output_records), (1, 1));

        // What the tail scan found goes back into the changelog with the
        // covers, so a later restore that starts after them still has it.
        r.covers.insert(("silver".to_string(), 0), 42);
        let mut next = r.into_delta();
        assert!(next.is_dirty());
        let mut again = Restored::default();
        again.apply_changelog(&rec, false, 0).unwrap();
        again
            .apply_changelog(&next.take_record("t"), false, 0)
            .unwrap();
        assert!(again.keys.contains(&9));
        assert_eq!(again.emitted["conv-a"], 120);
        assert_eq!(again.covers[&("silver".to_string(), 0)], 42);
    }

    #[test]
    fn expired_records_keep_times_and_covers_but_not_keys() {
        let mut d = Delta::default();
        d.record_emitted("c", 7, 11, None);
        d.cover("s", 1, 3);
        let rec = d.take_record("t");
        let mut r = Restored::default();
        r.apply_changelog(&rec, true, 0).unwrap();
        assert!(r.keys.is_empty());
        assert_eq!(r.emitted["c"], 7);
        assert_eq!(r.covers[&("s".to_string(), 1)], 4);
        assert_eq!(r.expired_records, 1);
    }

    #[test]
    fn large_deltas_are_chunked_and_covers_come_last() {
        let mut d = Delta::default();
        for i in 0..(MAX_ENTRIES_PER_RECORD as u128 * 2 + 10) {
            d.record_emitted("c", 1, i, None);
        }
        d.cover("s", 0, 99);
        let mut r = Restored::default();
        let mut records = 0;
        while d.is_dirty() {
            let rec = d.take_record("t");
            assert!(rec.len() < 1_000_000, "record of {} bytes", rec.len());
            let before = r.covers.len();
            r.apply_changelog(&rec, false, 0).unwrap();
            records += 1;
            if d.pending() > 0 {
                assert_eq!(r.covers.len(), before, "covers only with the last chunk");
            }
        }
        assert_eq!(records, 3);
        assert_eq!(r.keys.len(), MAX_ENTRIES_PER_RECORD * 2 + 10);
        assert_eq!(r.covers[&("s".to_string(), 0)], 100);
    }

    #[test]
    fn garbage_is_an_error_without_quoting_it() {
        let mut r = Restored::default();
        let err = r
            .apply_changelog(b"secret@example.com", false, 0)
            .unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = r
            .apply_changelog(
                br#"{"v":2,"keys":"","emitted":[],"dead_letters":[],"covers":[]}"#,
                false,
                0,
            )
            .unwrap_err();
        assert!(matches!(err, StateError::Version(2)));
        assert!(r
            .apply_changelog(
                br#"{"v":1,"keys":"abc","emitted":[],"dead_letters":[],"covers":[]}"#,
                false,
                0
            )
            .is_err());
    }

    #[test]
    fn the_last_owner_mark_wins_and_old_records_have_none() {
        let mut r = Restored::default();
        r.apply_changelog(
            br#"{"v":1,"keys":"","emitted":[],"dead_letters":[],"covers":[]}"#,
            false,
            1,
        )
        .unwrap();
        assert_eq!(r.owner, None);
        let mut d = Delta::default();
        d.record_emitted("i", 5, 7, None);
        r.apply_changelog(&d.take_record("a"), false, 10).unwrap();
        assert_eq!(
            r.owner,
            Some(OwnerMark {
                id: "a".into(),
                released: false,
                at_ms: 10
            })
        );
        assert_eq!(r.keys, vec![7]);
        r.apply_changelog(&owner_record("a", true), false, 20)
            .unwrap();
        assert!(r
            .owner
            .as_ref()
            .is_some_and(|o| o.released && o.at_ms == 20));
        r.apply_changelog(&owner_record("b", false), false, 30)
            .unwrap();
        assert!(r.owner.as_ref().is_some_and(|o| o.id == "b" && !o.released));
        assert_eq!(r.changelog_records, 4);
    }

    /// Format 1 as the builds before the stage work wrote it (commit
    /// 2524e6a), frozen: this build writes the same bytes for the same
    /// state and restores them, so a changelog of the previous build needs
    /// no migration and no re-read.
    const PREVIOUS_BUILD_RECORD: &[u8] = br#"{"v":1,"keys":"0000000000000000000000000000000700000000000000000000000000000abc","emitted":[["conv-a",1700000000123]],"dead_letters":[[1,17,40]],"covers":[["cx.silver.events",3,10]],"owner":{"id":"host-1","released":false}}"#;

    #[test]
    fn a_changelog_of_the_previous_build_restores_and_the_format_is_unchanged() {
        let mut d = Delta::default();
        d.record_emitted("conv-a", 1_700_000_000_123, 7, Some(0xabc));
        d.record_dead_letter(DeadLetterPos {
            source: 1,
            offset: 17,
            unit: 40,
        });
        d.cover("cx.silver.events", 3, 9);
        assert_eq!(
            String::from_utf8_lossy(&d.take_record("host-1")),
            String::from_utf8_lossy(PREVIOUS_BUILD_RECORD),
            "format 1 changed: bump the version and restore the old one"
        );

        let mut r = Restored::default();
        r.apply_changelog(PREVIOUS_BUILD_RECORD, false, 5).unwrap();
        assert_eq!(r.keys, vec![7, 0xabc]);
        assert_eq!(r.emitted["conv-a"], 1_700_000_000_123);
        assert!(r.dead_letters.contains(&DeadLetterPos {
            source: 1,
            offset: 17,
            unit: 40
        }));
        assert_eq!(r.covers[&("cx.silver.events".to_string(), 3)], 10);
        assert_eq!(r.owner.as_ref().map(|o| o.id.as_str()), Some("host-1"));
    }
}
