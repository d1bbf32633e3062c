//! The checkpointed-state model (changelog format 2), without Kafka.
//!
//! A task's state is a set of **tables** (key → value). The task reports
//! each change ([`Change`]: a new value, or a tombstone); the runtime writes
//! them as changelog records of their own, one per key, keyed
//! `<table>/<key>` with the value as the record value (a tombstone is a
//! record without value). A broker that compacts the changelog therefore
//! keeps the last value of every key, and an erasure deletes one key with
//! a tombstone.
//!
//! The records of one checkpoint carry its **epoch** (header
//! `cx.state.epoch`) and are followed by one [`Checkpoint`] record (key
//! `cx.checkpoint`) that names the input offsets the state corresponds to
//! and the output offsets written before it. The runtime writes that
//! record only once every output of the records it covers is acknowledged,
//! and commits the offsets only once the checkpoint is. A restore applies
//! only confirmed epochs ([`TablesRestore`]): changes of a checkpoint that
//! was cut short by a crash are dropped, and the new owner writes the
//! confirmed values of those keys again ([`RestoredTables::repair`]).
//!
//! Every record says its format (header `cx.state.format`, field `v`);
//! this build writes and reads format 2. Format 1 (the emitted model's
//! deltas, [`super::Delta`]) is read by the emitted model.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::StateError;

/// The changelog format of this model.
pub const FORMAT: u32 = 2;

/// Record key of a [`Checkpoint`] record.
pub const CHECKPOINT_KEY: &str = "cx.checkpoint";

/// One change to a table: a new value, or a tombstone (`value: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub table: String,
    pub key: String,
    pub value: Option<Vec<u8>>,
}

impl Change {
    pub fn put(table: &str, key: &str, value: Vec<u8>) -> Self {
        Change {
            table: table.to_string(),
            key: key.to_string(),
            value: Some(value),
        }
    }

    pub fn delete(table: &str, key: &str) -> Self {
        Change {
            table: table.to_string(),
            key: key.to_string(),
            value: None,
        }
    }

    /// The changelog record key: `<table>/<key>`.
    pub fn record_key(&self) -> String {
        format!("{}/{}", self.table, self.key)
    }
}

/// A table name is the part of a record key before the first `/`.
pub fn valid_table_name(name: &str) -> bool {
    !name.is_empty()
        && name != CHECKPOINT_KEY
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// A task's tables.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tables {
    tables: BTreeMap<String, HashMap<String, Vec<u8>>>,
}

impl Tables {
    pub fn get(&self, table: &str, key: &str) -> Option<&[u8]> {
        self.tables.get(table)?.get(key).map(Vec::as_slice)
    }

    pub fn apply(&mut self, change: Change) {
        match change.value {
            Some(v) => {
                self.tables
                    .entry(change.table)
                    .or_default()
                    .insert(change.key, v);
            }
            None => {
                if let Some(t) = self.tables.get_mut(&change.table) {
                    t.remove(&change.key);
                }
            }
        }
    }

    /// The entries of `table`.
    pub fn table(&self, table: &str) -> impl Iterator<Item = (&str, &[u8])> {
        self.tables
            .get(table)
            .into_iter()
            .flat_map(|t| t.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }

    /// Keys over every table.
    pub fn len(&self) -> usize {
        self.tables.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The record that confirms a checkpoint (JSON value of key
/// [`CHECKPOINT_KEY`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub v: u32,
    /// Confirms the state records of this epoch and of every earlier one.
    pub epoch: u64,
    /// (topic, next offset): the state holds every record of the task's
    /// partition of that input below the offset, and none above.
    pub offsets: Vec<(String, i64)>,
    /// (topic, partition, next offset): every output of the task below
    /// these offsets was written before the checkpoint (where the replay
    /// guard's scan of the outputs starts).
    pub covers: Vec<(String, i32, i64)>,
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(value: &[u8]) -> Result<Self, StateError> {
        let c: Checkpoint = serde_json::from_slice(value).map_err(|e| {
            StateError::BadDelta(format!(
                "checkpoint: {:?} error at column {}",
                e.classify(),
                e.column()
            ))
        })?;
        if c.v != FORMAT {
            return Err(StateError::Format(c.v));
        }
        Ok(c)
    }

    /// The next offset of `topic`, if the checkpoint names it.
    pub fn offset(&self, topic: &str) -> Option<i64> {
        self.offsets
            .iter()
            .find(|(t, _)| t == topic)
            .map(|(_, o)| *o)
    }
}

/// State rebuilt from a changelog partition of format 2.
#[derive(Debug, Default)]
pub struct RestoredTables {
    pub tables: Tables,
    /// The last confirmed checkpoint (`None`: the partition starts fresh).
    pub checkpoint: Option<Checkpoint>,
    /// The epoch the next checkpoint uses: above every epoch seen,
    /// confirmed or not, so that no later checkpoint confirms the records
    /// of one that was cut short.
    pub next_epoch: u64,
    /// Values to write again with the next checkpoint: the confirmed value
    /// (or a tombstone) of each key that an unconfirmed record changed, so
    /// that compaction cannot leave the unconfirmed value as the last one.
    pub repair: Vec<Change>,
    pub records: u64,
    /// State records dropped because no checkpoint confirmed them.
    pub unconfirmed: u64,
}

/// Folds a changelog partition, record by record.
#[derive(Debug, Default)]
pub struct TablesRestore {
    tables: Tables,
    pending: BTreeMap<u64, Vec<Change>>,
    checkpoint: Option<Checkpoint>,
    max_epoch: u64,
    records: u64,
}

impl TablesRestore {
    /// One changelog record: its key, its value (`None`: a tombstone) and
    /// its `cx.state.format` and `cx.state.epoch` headers.
    pub fn apply(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        format: Option<&str>,
        epoch: Option<&str>,
    ) -> Result<(), StateError> {
        let key = key
            .and_then(|k| std::str::from_utf8(k).ok())
            .ok_or(StateError::BadRecord("record key is missing or not UTF-8"))?;
        let format: u32 = format
            .and_then(|f| f.parse().ok())
            .ok_or(StateError::BadRecord("no readable format header"))?;
        if format != FORMAT {
            return Err(StateError::Format(format));
        }
        self.records += 1;
        if key == CHECKPOINT_KEY {
            let c = Checkpoint::decode(value.unwrap_or_default())?;
            self.max_epoch = self.max_epoch.max(c.epoch);
            let confirmed: Vec<u64> = self.pending.range(..=c.epoch).map(|(e, _)| *e).collect();
            for e in confirmed {
                for change in self.pending.remove(&e).unwrap_or_default() {
                    self.tables.apply(change);
                }
            }
            self.checkpoint = Some(c);
            return Ok(());
        }
        let epoch: u64 = epoch
            .and_then(|e| e.parse().ok())
            .ok_or(StateError::BadRecord(
                "state record without a readable epoch",
            ))?;
        let (table, k) = key.split_once('/').ok_or(StateError::BadRecord(
            "state record key is not <table>/<key>",
        ))?;
        self.max_epoch = self.max_epoch.max(epoch);
        let change = Change {
            table: table.to_string(),
            key: k.to_string(),
            value: value.map(<[u8]>::to_vec),
        };
        if self.checkpoint.as_ref().is_some_and(|c| c.epoch >= epoch) {
            // Written after a checkpoint that already confirmed its epoch:
            // only a repair write does that, and it repeats confirmed state.
            self.tables.apply(change);
        } else {
            self.pending.entry(epoch).or_default().push(change);
        }
        Ok(())
    }

    pub fn finish(self) -> RestoredTables {
        let mut seen = BTreeSet::new();
        let mut unconfirmed = 0;
        for change in self.pending.into_values().flatten() {
            unconfirmed += 1;
            seen.insert((change.table, change.key));
        }
        let repair = seen
            .into_iter()
            .map(|(table, key)| {
                let value = self.tables.get(&table, &key).map(<[u8]>::to_vec);
                Change { table, key, value }
            })
            .collect();
        RestoredTables {
            tables: self.tables,
            checkpoint: self.checkpoint,
            next_epoch: self.max_epoch + 1,
            repair,
            records: self.records,
            unconfirmed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Option<&str> = Some("2");

    fn state(r: &mut TablesRestore, c: &Change, epoch: u64) {
        let e = epoch.to_string();
        r.apply(
            Some(c.record_key().as_bytes()),
            c.value.as_deref(),
            F,
            Some(&e),
        )
        .unwrap();
    }

    fn checkpoint(r: &mut TablesRestore, epoch: u64, offset: i64) {
        let c = Checkpoint {
            v: FORMAT,
            epoch,
            offsets: vec![("in".into(), offset)],
            covers: vec![("out".into(), 0, 7)],
        };
        r.apply(Some(CHECKPOINT_KEY.as_bytes()), Some(&c.encode()), F, None)
            .unwrap();
    }

    #[test]
    fn confirmed_changes_restore_and_a_tombstone_removes_its_key() {
        let mut r = TablesRestore::default();
        state(&mut r, &Change::put("counts", "a", b"1".to_vec()), 1);
        state(&mut r, &Change::put("counts", "b", b"5".to_vec()), 1);
        checkpoint(&mut r, 1, 10);
        state(&mut r, &Change::put("counts", "a", b"2".to_vec()), 2);
        state(&mut r, &Change::delete("counts", "b"), 2);
        checkpoint(&mut r, 2, 20);
        let out = r.finish();
        assert_eq!(out.tables.get("counts", "a"), Some(&b"2"[..]));
        assert_eq!(out.tables.get("counts", "b"), None, "tombstoned");
        assert_eq!(out.tables.len(), 1);
        assert_eq!(
            out.checkpoint.as_ref().and_then(|c| c.offset("in")),
            Some(20)
        );
        assert_eq!(out.next_epoch, 3);
        assert!(out.repair.is_empty());
        assert_eq!(out.unconfirmed, 0);
    }

    #[test]
    fn changes_of_a_checkpoint_cut_short_are_dropped_and_repaired() {
        let mut r = TablesRestore::default();
        state(&mut r, &Change::put("counts", "a", b"1".to_vec()), 1);
        checkpoint(&mut r, 1, 10);
        // Epoch 2 was being written when the process died: no checkpoint.
        state(&mut r, &Change::put("counts", "a", b"9".to_vec()), 2);
        state(&mut r, &Change::put("counts", "new", b"1".to_vec()), 2);
        let out = r.finish();
        assert_eq!(out.tables.get("counts", "a"), Some(&b"1"[..]));
        assert_eq!(out.tables.get("counts", "new"), None);
        assert_eq!(
            out.checkpoint.as_ref().and_then(|c| c.offset("in")),
            Some(10)
        );
        assert_eq!(out.next_epoch, 3, "past the unconfirmed epoch");
        assert_eq!(out.unconfirmed, 2);
        assert_eq!(
            out.repair,
            vec![
                Change::put("counts", "a", b"1".to_vec()),
                Change::delete("counts", "new"),
            ]
        );
    }

    #[test]
    fn repair_writes_after_a_checkpoint_apply_at_once() {
        let mut r = TablesRestore::default();
        state(&mut r, &Change::put("t", "k", b"1".to_vec()), 4);
        checkpoint(&mut r, 4, 1);
        // The next owner restored epoch 4 and repairs with epoch 4's value
        // before its own first checkpoint (epoch 6, say).
        state(&mut r, &Change::put("t", "k", b"1".to_vec()), 4);
        state(&mut r, &Change::put("t", "k", b"2".to_vec()), 6);
        let out = r.finish();
        assert_eq!(out.tables.get("t", "k"), Some(&b"1"[..]));
        assert_eq!(out.next_epoch, 7);
    }

    #[test]
    fn a_fresh_partition_has_no_checkpoint() {
        let out = TablesRestore::default().finish();
        assert!(out.checkpoint.is_none());
        assert!(out.tables.is_empty());
        assert_eq!(out.next_epoch, 1);
    }

    #[test]
    fn records_of_another_format_or_shape_are_refused() {
        let mut r = TablesRestore::default();
        let c = Change::put("t", "k", b"1".to_vec());
        let key = c.record_key();
        let err = r
            .apply(Some(key.as_bytes()), Some(b"1"), Some("1"), Some("1"))
            .unwrap_err();
        assert!(matches!(err, StateError::Format(1)), "{err}");
        assert!(r
            .apply(Some(key.as_bytes()), Some(b"1"), None, Some("1"))
            .is_err());
        assert!(r
            .apply(Some(b"no-slash"), Some(b"1"), F, Some("1"))
            .is_err());
        assert!(r.apply(Some(key.as_bytes()), Some(b"1"), F, None).is_err());
        assert!(r.apply(None, Some(b"1"), F, Some("1")).is_err());
        let bad = r
            .apply(Some(CHECKPOINT_KEY.as_bytes()), Some(b"{"), F, None)
            .unwrap_err();
        assert!(bad.to_string().contains("checkpoint"), "{bad}");
    }

    #[test]
    fn table_names_cannot_collide_with_record_keys() {
        assert!(valid_table_name("counts"));
        assert!(valid_table_name("chain.heads"));
        assert!(!valid_table_name(""));
        assert!(!valid_table_name("a/b"));
        assert!(!valid_table_name(CHECKPOINT_KEY));
    }
}
