//! Process mining: an activity log per interaction (case), without Kafka
//! but for the stage's runtime adapter.
//!
//! | file | role |
//! |---|---|
//! | `event.rs` | what the log reads from a silver record (ids, kinds, codes; never PII) |
//! | `vocabulary.rs` | the activities, their default names, the mapping from events, renames and drops |
//! | `cases.rs` | per-case numbering, late marking, closing (customer.end or time), replay after a restart |
//! | `record.rs` | the activity record (`schemas/gold/cx.gold.process_event.v1.json`) |
//! | `task.rs` | one partition's cases and progress as checkpointed tables |
//! | `stage.rs` | the [`crate::stage::Stage`]: events to activity records, cases closed by time at checkpoints |

pub mod cases;
pub mod event;
pub mod record;
pub mod stage;
pub mod task;
pub mod vocabulary;
