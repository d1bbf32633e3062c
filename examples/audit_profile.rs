//! The audit trail's costs in process, one thread (BENCHMARKS.md section
//! 12): chaining (state machine, RFC 8785 canonical JSON, SHA-256, the
//! Merkle frontier) per event, verifying per record, and signing a
//! checkpoint.
//!
//!   cargo run --release --example audit_profile [interactions]
//!
//! Events are synthetic calls of 9 events each (customer.start … acw,
//! customer.end), interleaved 64 at a time as a partition would hold them.
//! CPU time is this thread's (`/proc/thread-self/schedstat`).

use cxstream::audit::chain::{ChainRules, Chains};
use cxstream::audit::note::NoteSigner;
use cxstream::audit::verify::PartitionVerifier;
use cxstream::process::event::ProcessEvent;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn call(i: usize, t: i64) -> Vec<ProcessEvent> {
    let id = format!("3f2a9c1e-{i:08x}-4b7d-9a8e-5c6d7e8f9a0b");
    let ev = |n: u32, kind: &str, dt: i64| ProcessEvent {
        event_id: format!("{id}-{n}"),
        interaction_id: id.clone(),
        event_type: kind.into(),
        event_time_ms: t + dt,
        queue_id: Some("a623d83c-96d7-4baa-af1f-d46ad6700d8b".into()),
        user_id: Some("9d2b4b1a-7c3e-4f5a-8b6c-1d2e3f4a5b6c".into()),
        acd_outcome: (kind == "acd.end").then(|| "ANSWERED".into()),
        answered_user_id: (kind == "acd.end")
            .then(|| "9d2b4b1a-7c3e-4f5a-8b6c-1d2e3f4a5b6c".into()),
        disconnect_type: (kind == "user.end").then(|| "CLIENT".into()),
        interacting_duration_ms: (kind == "user.end").then_some(120_000),
        lineage_token: Some(format!("tok-{i}-{n}")),
        ..ProcessEvent::default()
    };
    vec![
        ev(1, "customer.start", 0),
        ev(2, "flow.start", 1_000),
        ev(3, "flow.end", 20_000),
        ev(4, "acd.start", 20_001),
        ev(5, "user.start", 40_000),
        ev(6, "acd.end", 45_000),
        ev(7, "user.end", 165_000),
        ev(8, "acw", 195_000),
        ev(9, "customer.end", 196_000),
    ]
}

fn main() {
    let interactions: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let mut events = Vec::with_capacity(interactions * 9);
    for chunk in (0..interactions).collect::<Vec<_>>().chunks(64) {
        let calls: Vec<Vec<ProcessEvent>> =
            chunk.iter().map(|i| call(*i, *i as i64 * 300)).collect();
        for k in 0..9 {
            for c in &calls {
                events.push(c[k].clone());
            }
        }
    }
    let origin = "cxstream.audit/cx.audit.events/0";
    let signer = NoteSigner::generate("cxstream-audit");
    let mut chains = Chains::new(
        ChainRules {
            every_records: 10_000,
            every_ms: 10_000,
            ended_retention_ms: 48 * 3_600_000,
            origin: origin.into(),
        },
        0,
    );
    let mut records = Vec::with_capacity(events.len());
    let mut notes = Vec::new();
    let t0 = thread_cpu_ns();
    for e in &events {
        chains.apply(e, &mut records);
        if chains.checkpoint_due(0) {
            let cp = chains.take_checkpoint();
            notes.push(signer.sign(&cp));
        }
    }
    let chain_ns = thread_cpu_ns() - t0;
    if chains.checkpoint_due(u64::MAX) {
        let cp = chains.take_checkpoint();
        notes.push(signer.sign(&cp));
    }
    let cp = chains.take_checkpoint();
    // Signing alone, as a block (the thread clock's resolution is coarser
    // than one signature).
    let signs = 5_000;
    let t2 = thread_cpu_ns();
    for _ in 0..signs {
        std::hint::black_box(signer.sign(std::hint::black_box(&cp)));
    }
    let sign_ns = thread_cpu_ns() - t2;
    let bytes: usize = records.iter().map(|r| r.encode().len()).sum();
    let t1 = thread_cpu_ns();
    let mut v = PartitionVerifier::new(0, origin, &notes, &signer.verifier(), 10);
    for r in &records {
        v.push(r);
    }
    let (report, findings, _) = v.finish();
    let verify_ns = thread_cpu_ns() - t1;
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(report.roots_matched as usize, notes.len());
    let per_s = |n: usize, ns: u64| n as f64 / (ns as f64 / 1e9);
    println!(
        "{} events of {interactions} interactions -> {} records ({:.0} bytes each), {} checkpoints",
        events.len(),
        records.len(),
        bytes as f64 / records.len() as f64,
        notes.len()
    );
    println!(
        "chain (states, JCS, SHA-256, Merkle; signing included): {:.0} events per CPU-s, {:.2} CPU-s per million events",
        per_s(events.len(), chain_ns),
        chain_ns as f64 / 1e3 / events.len() as f64
    );
    println!(
        "signing: {:.1} µs per checkpoint note ({signs} signed)",
        sign_ns as f64 / 1e3 / signs as f64
    );
    println!(
        "verify (hash, chain, leaves, roots, signatures): {:.0} records per CPU-s",
        per_s(records.len(), verify_ns)
    );
}
