//! Dedup state cost: resident memory per fingerprint.
//!
//! `cargo run --release --example dedup_rss -- 1000000 10000000`
//!
//! For each key count (each in a fresh child process, so one measurement
//! does not inherit the other's heap), fills a `Dedup` with that capacity
//! with distinct 128-bit fingerprints and prints `VmRSS` before and after,
//! and the difference per key. Linux only (reads `/proc/self/status`).

use std::time::{Duration, Instant};

// The allocator the cxstream binary uses, so RSS per key is what it pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cxstream::operators::dedup::{Dedup, DedupSettings};
use cxstream::procfs::proc_status_kib;

fn fingerprint(i: u64) -> u128 {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (u128::from(mix(i.wrapping_mul(2) + 1)) << 64) | u128::from(mix(i.wrapping_mul(2) + 2))
}

fn measure(keys: u64) {
    let before = proc_status_kib("VmRSS").unwrap_or(0);
    let t = Instant::now();
    let dedup = Dedup::new(&DedupSettings {
        ttl: Duration::from_secs(24 * 3600),
        max_keys: keys,
    });
    for i in 0..keys {
        dedup.insert_known(fingerprint(i));
    }
    let held = dedup.entry_count();
    let fill = t.elapsed();
    let after = proc_status_kib("VmRSS").unwrap_or(0);
    let per_key = (after.saturating_sub(before) as f64 * 1024.0) / held.max(1) as f64;
    println!(
        "{{\"keys\":{keys},\"held\":{held},\"rss_before_kib\":{before},\"rss_after_kib\":{after},\"bytes_per_key\":{per_key:.1},\"fill_seconds\":{:.2}}}",
        fill.as_secs_f64()
    );
    drop(dedup);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let counts: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if counts.len() == 1 {
        measure(counts[0]);
        return;
    }
    let counts = if counts.is_empty() {
        vec![1_000_000, 10_000_000]
    } else {
        counts
    };
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("cannot find this executable");
        std::process::exit(1);
    };
    for k in counts {
        match std::process::Command::new(&exe).arg(k.to_string()).status() {
            Ok(s) if s.success() => {}
            Ok(s) => eprintln!("measurement for {k} keys exited with {s}"),
            Err(e) => eprintln!("cannot run the measurement for {k} keys: {e}"),
        }
    }
}
