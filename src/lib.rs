//! cxstream: a stream processor for Genesys Cloud CX interaction events on
//! Apache Kafka. It turns the raw (bronze) conversation events into a clean
//! silver stream: decoded and upcast, de-duplicated, reordered per
//! interaction by event time, PII-masked with keyed tokens, each record with
//! a lineage token and its hops; rejected records go to a dead-letter topic
//! with their reason, late ones to a late topic. Behind silver, the gold
//! stage writes per-queue KPIs in event-time windows and the process stage
//! an activity log per interaction.
//!
//! # Layout
//!
//! | module | role | knows Kafka? |
//! |---|---|---|
//! | [`json`] | borrowed JSON tape, fast scanner, canonical JSON text (the stored format of silver records and fingerprints) | no |
//! | [`model`] | the canonical event, lineage, time formatting | no |
//! | [`config`] | topology TOML → validated [`config::Topology`]: its stages ([`config::StagePlan`]), each with the [`config::RuntimePlan`] the runtime reads and its kind's own plan ([`config::SilverPlan`], [`config::GoldPlan`], [`config::ProcessPlan`]) | no |
//! | [`operators`] | decode, upcast, dedup, reorder, mask, lineage | no |
//! | [`stage`] | what a stage and the runtime exchange: records in, output ports, outputs | no |
//! | [`headers`] | header names of the lineage, dead-letter and state contract | no |
//! | [`pipeline`] | silver's operator chain and per-partition [`pipeline::Task`] state | no |
//! | [`gold`] | the gold stage: queue legs per interaction, per-queue KPI windows with revisions and the correction horizon, results at each checkpoint | no |
//! | [`process`] | the process-mining stage: the activity vocabulary, per-case numbering, closing and late marking, the activity record | no |
//! | [`silver`] | the silver stage: the chain as a [`stage::Stage`] of the runtime | no |
//! | [`state`] | recoverable state in two models: what was emitted (changelog deltas, `cx.state` headers; silver) and checkpointed keyed tables (per-key records, tombstones, checkpoints) | no |
//! | [`mining`] | the activity log read as process-mining tools do: cases per partition, XES and OCEL 2.0 writers, the directly-follows graph, variants | no |
//! | [`audit`] | the audit trail's parts: interaction states, hash-chained records (RFC 8785 canonical JSON), the RFC 6962 tree per partition, Ed25519-signed C2SP checkpoints, a partition's writer state, the verifier | no |
//! | [`partition`] | Java-compatible murmur2 partitioning by interaction id | no |
//! | [`secret`] | the masking key | no |
//! | [`generate`] | synthetic Genesys traffic with ground truth (`generate/`: config, lifecycles, records, faults, truth) | no |
//! | [`metrics`], [`http`] | Prometheus metrics, `/metrics` `/healthz` `/readyz` | no |
//! | [`runtime`] | consumer group, repartitioning, produce/ack, commits, rebalance, state restore, transactions, generic over a [`stage::Stage`]; [`runtime::client`] also has the producer helpers for test traffic | yes |
//! | [`run`] | builds a topology's stage and runs it on the runtime | yes |
//! | [`signal`], [`logging`], [`procfs`] | SIGINT/SIGTERM, the binaries' log subscriber, this process's CPU and memory from `/proc` | no |
//! | [`audit_read`] | `audit verify` over Kafka: checkpoint notes by origin, each audit partition through its verifier | yes |
//! | [`topic_read`] | a whole topic read partition by partition to its end (export, mine, audit verify) | yes |
//! | [`export`] | `export` and `mine`: the activity topic read into [`mining`]'s writers | yes |
//! | [`cli`] → [`demo`] | the `cxstream` command and the embedded demo (demo does not import cli) | yes |
//!
//! The end-to-end benchmark is a binary of its own, `cxstream-bench`
//! (`src/bin/cxstream-bench/`, built with `--features bench`; see
//! BENCHMARKS.md): pass-through vs pipeline on a broker, per-variant child
//! processes (itself, `cxstream-bench bench-run`). It uses this library; the
//! `cxstream` binary does not contain it.

pub mod audit;
pub mod audit_read;
pub mod cli;
pub mod config;
pub mod demo;
pub mod export;
pub mod generate;
pub mod gold;
pub mod headers;
pub mod http;
pub mod json;
pub mod logging;
pub mod metrics;
pub mod mining;
pub mod model;
pub mod operators;
pub mod partition;
pub mod pipeline;
pub mod process;
pub mod procfs;
pub mod run;
pub mod runtime;
pub mod secret;
pub mod signal;
pub mod silver;
pub mod stage;
pub mod state;
pub mod topic_read;
