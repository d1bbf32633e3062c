//! The audit trail's parts without Kafka: the interaction state machine
//! ([`states`]), the hash-chained record ([`record`]), the RFC 6962 tree of
//! a partition's records ([`merkle`]), signed checkpoints ([`note`]), one
//! partition's writer state ([`chain`]), the verifier of one partition
//! ([`verify`]), an interaction's state replayed from its chain
//! ([`replay`]), the signing key's files ([`keys`]), and the stage that runs
//! them on the runtime ([`stage`], [`task`]). See
//! `../shared/reference/compliance-design.md` §1–2.

pub mod chain;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod record;
pub mod replay;
pub mod stage;
pub mod states;
pub mod task;
pub mod verify;
