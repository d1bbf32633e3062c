//! Recoverable per-partition state, without Kafka. A stage keeps its state
//! in one of two models (see [`crate::stage::StateModel`]):
//!
//! | file | model |
//! |---|---|
//! | `emitted.rs` | **emitted**: state is what the task already emitted (silver: dedup fingerprints, last emitted times, dead-letter positions), rebuilt from changelog deltas (format 1) plus the `cx.state` headers of the outputs' tail |
//! | `tables.rs` | **checkpointed**: state is a set of tables (key → value) that outputs do not imply (open windows, counts, chain heads); per-key changelog records and tombstones (format 2), confirmed by a checkpoint record that carries the input offsets the state corresponds to |

mod emitted;
pub mod tables;

pub use emitted::*;
