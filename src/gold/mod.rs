//! Gold: per-queue KPIs in event-time windows, with late corrections,
//! without Kafka.
//!
//! | file | role |
//! |---|---|
//! | `event.rs` | what gold reads from a silver record |
//! | `legs.rs` | queue legs of one interaction and the metric contributions they make, at the time each completes |
//! | `kpi.rs` | the figures of one (queue, window) from its contributions: counts, waits, handle times, rates, service level |
//! | `record.rs` | the output record (JSON, `schemas/gold/`) and its key: an upsert per (queue, window) |
//! | `windows.rs` | tumbling windows per queue: first results after end + grace, revisions for corrections, the correction horizon |

pub mod event;
pub mod kpi;
pub mod legs;
pub mod record;
pub mod windows;
