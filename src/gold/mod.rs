//! Gold: per-queue KPIs in event-time windows, with late corrections,
//! without Kafka.
//!
//! | file | role |
//! |---|---|
//! | `event.rs` | what gold reads from a silver record |
//! | `legs.rs` | queue legs of one interaction and the metric contributions they make, at the time each completes |
//! | `metrics.rs` | the stage's own metrics: invalid legs, late events, refused contributions, state sizes |
//! | `progress.rs` | a task's watermark: the slowest input partition that can still send it contributions |
//! | `kpi.rs` | the figures of one (queue, window) from its contributions: counts, waits, handle times, rates, service level |
//! | `record.rs` | the output record (JSON, `schemas/gold/`) and its key: an upsert per (queue, window) |
//! | `report.rs` | a per-queue table of the latest full hour (the demo) |
//! | `stage.rs` | the [`crate::stage::Stage`]: events to legs, contribution sets re-keyed by queue, results at each checkpoint |
//! | `task.rs` | one partition's state (interactions' legs, queue windows) and its checkpointed tables |
//! | `windows.rs` | tumbling windows per queue: first results after end + grace, revisions for corrections, the correction horizon |

pub mod event;
pub mod kpi;
pub mod legs;
pub mod metrics;
pub mod progress;
pub mod record;
pub mod report;
pub mod stage;
pub mod task;
pub mod windows;
