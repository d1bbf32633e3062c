//! State restore for one partition of a stage with checkpointed state
//! (see [`crate::state::tables`]): fold its changelog partition up to the
//! last confirmed checkpoint, then read what the task wrote after that
//! checkpoint to the repartition topic and the dead-letter topic, so that a
//! record read again is neither forwarded nor dead-lettered twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::topic_partition_list::Offset;

use super::restore::{dead_letter_pos, read_to_end, restore_consumer, RestoreOutcome, RestoreSpec};
use super::RuntimeError;
use crate::headers;
use crate::stage::Role;
use crate::state::tables::{RestoredTables, TablesRestore};
use crate::state::{DeadLetterPos, Restored};

/// A checkpointed partition's restored state.
#[derive(Debug, Default)]
pub struct TablesOutcome {
    pub restored: RestoredTables,
    /// (Repartition partition, input role code) → the last (input offset,
    /// unit) the task forwarded there from that input.
    pub forwarded: HashMap<(i32, u8), (i64, u32)>,
    /// Dead letters the task wrote after its checkpoint.
    pub dead_letters: HashSet<DeadLetterPos>,
    /// (topic, partition) → offset after what was read: where the next
    /// checkpoint's scan starts.
    pub covers: BTreeMap<(String, i32), i64>,
    /// The records (port, key, value) written to a tail port after the
    /// checkpoint, by any task (the task keeps the keys it owns), in the
    /// order read (per partition, the order written).
    pub tails: Vec<(usize, Vec<u8>, Vec<u8>)>,
}

fn header<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The `cx.src` header of a record a checkpointed task forwards:
/// `<input partition>;<offset>;<unit>`, then `;<role code>` for a record of
/// a co-input (see [`headers::SOURCE_POSITION`], [`Role::code`]).
pub(crate) fn source_position(partition: i32, role: Role, offset: i64, unit: u32) -> String {
    match role.code() {
        0 => format!("{partition};{offset};{unit}"),
        code => format!("{partition};{offset};{unit};{code}"),
    }
}

/// Parses a [`source_position`]: (partition, role code, offset, unit).
fn parse_source_position(h: &str) -> Option<(i32, u8, i64, u32)> {
    let mut it = h.split(';');
    let p = it.next()?.parse().ok()?;
    let o = it.next()?.parse().ok()?;
    let u = it.next()?.parse().ok()?;
    let code = match it.next() {
        None => 0,
        Some(c) => c.parse().ok()?,
    };
    it.next().is_none().then_some((p, code, o, u))
}

/// Rebuilds partition `spec.partition`'s tables.
pub fn restore_tables(spec: &RestoreSpec) -> Result<RestoreOutcome, RuntimeError> {
    let started = Instant::now();
    let deadline = started + spec.timeout;
    let p = spec.partition;
    let consumer = &restore_consumer(spec)?;

    // 1. The changelog, from its beginning.
    let mut fold = TablesRestore::default();
    read_to_end(
        consumer,
        &spec.changelog_topic,
        &[(p, Offset::Beginning)],
        deadline,
        |m| {
            let r = fold.apply(
                m.key(),
                m.payload(),
                header(m, headers::STATE_FORMAT),
                header(m, headers::STATE_EPOCH),
            );
            if let Err(e) = r {
                tracing::warn!(partition = p, offset = m.offset(), error = %e, "Skipping an unreadable changelog record.");
            }
        },
    )?;
    let restored = fold.finish();
    let mut covers: BTreeMap<(String, i32), i64> = restored
        .checkpoint
        .iter()
        .flat_map(|c| c.covers.iter().map(|(t, q, o)| ((t.clone(), *q), *o)))
        .collect();
    let start = |topic: &str, q: i32| match covers.get(&(topic.to_string(), q)) {
        Some(o) => Offset::Offset(*o),
        None => Offset::Beginning,
    };

    // 2. What the task forwarded after its checkpoint: any repartition
    // partition can be a key's home.
    let parts: Vec<(i32, Offset)> = (0..spec.partitions)
        .map(|q| (q, start(&spec.repartition_topic, q)))
        .collect();
    let mut forwarded: HashMap<(i32, u8), (i64, u32)> = HashMap::new();
    let reached_rep = read_to_end(consumer, &spec.repartition_topic, &parts, deadline, |m| {
        let Some((from, role, offset, unit)) =
            header(m, headers::SOURCE_POSITION).and_then(parse_source_position)
        else {
            return;
        };
        if from == p {
            let e = forwarded
                .entry((m.partition(), role))
                .or_insert((offset, unit));
            *e = (*e).max((offset, unit));
        }
    })?;

    // 3. Its dead letters after the checkpoint.
    let dlq_q = p % spec.dead_letter.1.max(1);
    let mut dead_letters = HashSet::new();
    let reached_dlq = read_to_end(
        consumer,
        &spec.dead_letter.0,
        &[(dlq_q, start(&spec.dead_letter.0, dlq_q))],
        deadline,
        |m| {
            if let Some(pos) = dead_letter_pos(m, spec, p) {
                dead_letters.insert(pos);
            }
        },
    )?;
    // 4. The tail ports after the checkpoint: what may have been written
    // after it (a result the task makes again must not go backwards).
    let mut tails = Vec::new();
    let mut reached_tails = Vec::new();
    for &port in &spec.tail_ports {
        let Some((topic, n)) = spec.outputs.get(port) else {
            continue;
        };
        let parts: Vec<(i32, Offset)> = (0..*n).map(|q| (q, start(topic, q))).collect();
        let reached = read_to_end(consumer, topic, &parts, deadline, |m| {
            if let (Some(k), Some(v)) = (m.key(), m.payload()) {
                tails.push((port, k.to_vec(), v.to_vec()));
            }
        })?;
        reached_tails.push((topic, reached));
    }
    for (topic, reached) in [
        (&spec.repartition_topic, reached_rep),
        (&spec.dead_letter.0, reached_dlq),
    ]
    .into_iter()
    .chain(reached_tails)
    {
        for (q, o) in reached {
            let e = covers.entry((topic.clone(), q)).or_insert(o);
            *e = (*e).max(o);
        }
    }
    tracing::debug!(
        partition = p,
        keys = restored.tables.len(),
        epoch = restored.next_epoch,
        unconfirmed = restored.unconfirmed,
        "Checkpointed state read."
    );
    Ok(RestoreOutcome {
        partition: p,
        state: Restored::default(),
        tables: Some(TablesOutcome {
            restored,
            forwarded,
            dead_letters,
            covers,
            tails,
        }),
        took: started.elapsed(),
        waited: std::time::Duration::ZERO,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_positions_round_trip() {
        let h = source_position(3, Role::Input, 1_234, 17);
        assert_eq!(h, "3;1234;17", "the input's form is the previous build's");
        assert_eq!(parse_source_position(&h), Some((3, 0, 1_234, 17)));
        let co = source_position(3, Role::CoInput(0), 1_234, 17);
        assert_eq!(co, "3;1234;17;2");
        assert_eq!(parse_source_position(&co), Some((3, 2, 1_234, 17)));
        for bad in ["", "1;2", "1;2;3;4;5", "a;2;3", "1;-;3", "1;2;3;x"] {
            assert_eq!(parse_source_position(bad), None, "{bad:?}");
        }
    }
}
