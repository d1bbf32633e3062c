//! Operators: small units with no Kafka dependency, each unit-tested beside
//! its code. The chain order is fixed by [`crate::config`]:
//!
//! | operator | what it does | state |
//! |---|---|---|
//! | [`decode`] + [`upcast`] | split a record into events, parse, validate, bring to the canonical version | none |
//! | filter (in [`crate::pipeline`]) | keep the configured media types | none |
//! | [`dedup`] | drop re-deliveries by envelope id or content fingerprint | TTL cache per partition |
//! | [`reorder`] | event-time watermark; per-interaction order; late routing | buffer per partition |
//! | [`mask`] | keyed PII tokens, redaction, free-text scanning | none |
//! | [`lineage`] | lineage hop, silver/late encoding | none |
//! | [`plausibility`] (in decode) | reject event times that cannot be true | none |
//! | [`progress`] (in reorder) | greatest event time, guarded by a quorum | per partition |
//!
//! JSON reading (the tape, the fast scanner) and the canonical JSON text the
//! operators write live in [`crate::json`], which `model` uses too.

pub mod decode;
pub mod dedup;
pub mod lineage;
pub mod mask;
pub mod plausibility;
pub mod progress;
pub mod reorder;
pub mod upcast;
