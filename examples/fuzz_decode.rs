//! A mutation fuzzer for the decoder and the whole in-process chain (issue
//! 13: "millions of inputs, zero panics").
//!
//! `cargo run --release --example fuzz_decode -- [--inputs N] [--seed S] [--out DIR]`
//! (or `bash scripts/fuzz.sh [N]`).
//!
//! Seeds: every file in `tests/golden/input/` and records of
//! `cxstream::generate` (its full mix: envelopes, bare details, batches,
//! drift, malformed records). Each input is a seed with 1–4 mutations
//! stacked (mostly one or two: bit flips, byte insert/delete, splice of two seeds, truncation,
//! a repeated slice, numbers replaced with huge ones, deeper nesting, NUL
//! and invalid UTF-8, type confusion) — or, one in eight, a seed as is. Each
//! is fed to `decode_record` and then through the chain (`Pipeline::ingest`
//! on a task, `tick` and `flush` every 1,000 inputs, then a fresh task) under
//! `catch_unwind`, on a thread with a 2 MiB stack (a spawned thread's
//! default, like the runtime's workers).
//!
//! A panicking input is written to DIR (`panic-<index>.bin`, with the
//! message and backtrace in `panic-<index>.txt`; a panic in `tick`/`flush`
//! saves the 1,000 inputs since the last one as `batch-<index>/`), and the
//! run exits 1. Same seed, same inputs: `--dump I` writes input I to DIR and
//! exits (to recover the input of a crash that is not a panic, e.g. a stack
//! overflow, from the last progress line).
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use cxstream::config;
use cxstream::generate::{GenConfig, Generator};
use cxstream::metrics::Metrics;
use cxstream::model::SourceRef;
use cxstream::operators::decode::{decode_record, DecodeInput, Decoded};
use cxstream::pipeline::{Output, Pipeline, RecordIn, Role, Task};
use cxstream::secret::MaskingKey;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Inputs between two `tick` + `flush` of the chain's task.
const BATCH: u64 = 1_000;
/// 2026-01-01T10:00:00Z, the generator's start: the record timestamp.
const T0: i64 = 1_767_261_600_000;

struct Args {
    inputs: u64,
    seed: u64,
    out: PathBuf,
    dump: Option<u64>,
}

fn args() -> Args {
    let mut a = Args {
        inputs: 2_000_000,
        seed: 1,
        out: PathBuf::from("target/fuzz-decode"),
        dump: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--inputs" => a.inputs = parse_count(&val()),
            "--seed" => a.seed = val().parse().unwrap_or_else(|_| usage("bad --seed")),
            "--out" => a.out = PathBuf::from(val()),
            "--dump" => a.dump = Some(parse_count(&val())),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    a
}

fn parse_count(s: &str) -> u64 {
    s.replace(['_', ','], "")
        .parse()
        .unwrap_or_else(|_| usage(&format!("bad count {s}")))
}

fn usage(msg: &str) -> ! {
    eprintln!("{msg}\nusage: fuzz_decode [--inputs N] [--seed S] [--out DIR] [--dump I]");
    std::process::exit(2)
}

/// Golden inputs and generated records.
fn seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/input");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/golden/input")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    let mut seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("golden input"))
        .collect();
    let golden = seeds.len();
    seeds.extend(
        Generator::new(GenConfig {
            interactions: 300,
            seed: 9,
            malformed_pct: 5.0,
            batch_pct: 10.0,
            version_mix: cxstream::generate::VersionMix {
                iso_time_pct: 10.0,
                numeric_string_time_pct: 10.0,
                old_sdk_pct: 10.0,
                future_pct: 10.0,
            },
            collect_truth: false,
            ..GenConfig::default()
        })
        .map(|r| r.value),
    );
    eprintln!(
        "seeds: {golden} golden inputs, {} generated records",
        seeds.len() - golden
    );
    seeds
}

const HUGE_NUMBERS: &[&str] = &[
    "1e400",
    "-1e400",
    "1e308",
    "123456789012345678901234567890",
    "18446744073709551616",
    "-9223372036854775809",
    "9223372036854775807",
    "253402300800000",
    "253402300799999",
    "-62135596800000",
    "0.0000000000000000000001e-300",
    "-0",
    "1.5",
    "NaN",
];
const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x82",
    b"\\u0000",
    b"\\ud800",
    b"\\",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"{}",
    b"[]",
    b"\n",
];
const TYPES: &[&str] = &[
    "null",
    "true",
    "0",
    "-1",
    "{}",
    "[]",
    "\"\"",
    "[{}]",
    "{\"a\":null}",
];

/// The next input: a mutated (or, one in eight, intact) seed.
fn make_input(rng: &mut SmallRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.gen_range(0..seeds.len())].clone();
    if rng.gen_ratio(1, 8) {
        return v;
    }
    let n = match rng.gen_range(0..10) {
        0..=4 => 1,
        5..=7 => 2,
        _ => rng.gen_range(3..=4),
    };
    for _ in 0..n {
        mutate(rng, &mut v, seeds);
    }
    v
}

fn mutate(rng: &mut SmallRng, v: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let len = v.len();
    let pos = |rng: &mut SmallRng| if len == 0 { 0 } else { rng.gen_range(0..=len) };
    match rng.gen_range(0..12) {
        // Bit flips.
        0 => {
            for _ in 0..rng.gen_range(1..=8) {
                if !v.is_empty() {
                    let i = rng.gen_range(0..v.len());
                    v[i] ^= 1 << rng.gen_range(0..8);
                }
            }
        }
        // Insert a random or an interesting byte sequence.
        1 => {
            let at = pos(rng);
            if rng.gen_bool(0.5) {
                let b: u8 = rng.gen();
                v.insert(at, b);
            } else {
                let s = INTERESTING[rng.gen_range(0..INTERESTING.len())];
                v.splice(at..at, s.iter().copied());
            }
        }
        // Delete a range.
        2 => {
            if len > 0 {
                let a = rng.gen_range(0..len);
                let b = (a + rng.gen_range(1..=16.min(len - a))).min(len);
                v.drain(a..b);
            }
        }
        // Splice: a prefix of this, the suffix of another seed.
        3 => {
            let other = &seeds[rng.gen_range(0..seeds.len())];
            let a = pos(rng);
            let b = if other.is_empty() {
                0
            } else {
                rng.gen_range(0..other.len())
            };
            v.truncate(a);
            v.extend_from_slice(&other[b..]);
        }
        // Truncate.
        4 => {
            let at = pos(rng);
            v.truncate(at);
        }
        // Repeat a slice (up to 4 KiB in all; 64 KiB one time in 20).
        5 => {
            if len > 0 {
                let a = rng.gen_range(0..len);
                let b = (a + rng.gen_range(1..=64.min(len - a))).min(len);
                let slice = v[a..b].to_vec();
                let total = if rng.gen_ratio(1, 20) { 65_536 } else { 4_096 };
                let times = rng.gen_range(2..=(total / slice.len()).clamp(2, 1000));
                let rep: Vec<u8> = slice
                    .iter()
                    .copied()
                    .cycle()
                    .take(slice.len() * times)
                    .collect();
                v.splice(b..b, rep);
            }
        }
        // Replace a number with a huge (or odd) one.
        6 => {
            let digits: Vec<usize> = (0..len).filter(|&i| v[i].is_ascii_digit()).collect();
            if !digits.is_empty() {
                let start = digits[rng.gen_range(0..digits.len())];
                let mut end = start;
                while end < len && (v[end].is_ascii_digit() || b".eE+-".contains(&v[end])) {
                    end += 1;
                }
                let n = HUGE_NUMBERS[rng.gen_range(0..HUGE_NUMBERS.len())];
                v.splice(start..end, n.bytes());
            }
        }
        // Nest deeper: wrap the whole input or one object in it.
        7 => {
            let depth = match rng.gen_range(0..40) {
                0 => rng.gen_range(10_000..=100_000),
                1..=10 => rng.gen_range(100..=200),
                _ => rng.gen_range(1..=130),
            };
            let (open, close): (&[u8], &[u8]) = if rng.gen_bool(0.5) {
                (b"[", b"]")
            } else {
                (b"{\"a\":", b"}")
            };
            let objects: Vec<usize> = (0..len).filter(|&i| v[i] == b'{').collect();
            let at = if objects.is_empty() || rng.gen_bool(0.3) {
                0
            } else {
                objects[rng.gen_range(0..objects.len())]
            };
            // Closed at the end of the input when wrapping everything, else
            // at a random later position (often unbalanced, on purpose).
            let end = if at == 0 {
                len
            } else {
                rng.gen_range(at..=len)
            };
            let closing: Vec<u8> = close.repeat(depth);
            v.splice(end..end, closing);
            v.splice(at..at, open.repeat(depth));
        }
        // NUL and invalid UTF-8 inside a string.
        8 => {
            let quotes: Vec<usize> = (0..len).filter(|&i| v[i] == b'"').collect();
            let at = if quotes.is_empty() {
                pos(rng)
            } else {
                quotes[rng.gen_range(0..quotes.len())] + 1
            };
            let s: &[u8] = [
                &b"\0"[..],
                b"\xc3\x28",
                b"\xed\xa0\x80",
                b"\xff\xfe",
                b"\xf0\x9f\x98",
            ][rng.gen_range(0..5)];
            v.splice(at..at, s.iter().copied());
        }
        // Type confusion: the value after a colon becomes another type.
        9 => {
            let colons: Vec<usize> = (0..len).filter(|&i| v[i] == b':').collect();
            if !colons.is_empty() {
                let at = colons[rng.gen_range(0..colons.len())] + 1;
                let end = value_end(v, at);
                let t = TYPES[rng.gen_range(0..TYPES.len())];
                v.splice(at..end, t.bytes());
            }
        }
        // Duplicate a member: copy `"name":value` and insert it again.
        10 => {
            let colons: Vec<usize> = (0..len).filter(|&i| v[i] == b':').collect();
            if !colons.is_empty() {
                let c = colons[rng.gen_range(0..colons.len())];
                let start = v[..c].iter().rposition(|b| *b == b',' || *b == b'{');
                if let Some(s) = start {
                    let end = value_end(v, c + 1);
                    let mut member = vec![b','];
                    member.extend_from_slice(&v[s + 1..end]);
                    v.splice(end..end, member);
                }
            }
        }
        // A long string value.
        _ => {
            let quotes: Vec<usize> = (0..len).filter(|&i| v[i] == b'"').collect();
            if !quotes.is_empty() {
                let at = quotes[rng.gen_range(0..quotes.len())] + 1;
                let n = if rng.gen_ratio(1, 20) {
                    rng.gen_range(100_000..=2_000_000)
                } else {
                    rng.gen_range(100..=10_000)
                };
                let c = [b'x', b' ', b'9', b'@'][rng.gen_range(0..4)];
                v.splice(at..at, std::iter::repeat_n(c, n));
            }
        }
    }
}

/// End of the (scalar or bracketed) JSON value starting at `at`, roughly:
/// mutations need not be exact.
fn value_end(v: &[u8], at: usize) -> usize {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut i = at;
    while i < v.len() {
        let b = v[i];
        if in_str {
            match b {
                b'\\' => i += 1,
                b'"' => {
                    in_str = false;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
        } else {
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return i,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                b',' if depth == 0 => return i,
                _ => {}
            }
        }
        i += 1;
    }
    v.len()
}

/// The last panic's message and backtrace (set by the hook).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

#[derive(Default)]
struct Stats {
    inputs: u64,
    bytes: u64,
    units: u64,
    decoded_events: u64,
    dead_letters: BTreeMap<String, u64>,
    silver: u64,
    late: u64,
    forwards: u64,
    done: u64,
    panics: u64,
}

fn count(stats: &mut Stats, out: &mut Vec<Output>) {
    for o in out.drain(..) {
        match o {
            Output::Silver(_) => stats.silver += 1,
            Output::Late(_) => stats.late += 1,
            Output::DeadLetter(d) => {
                *stats
                    .dead_letters
                    .entry(format!("{}/{}", d.stage, d.class))
                    .or_default() += 1
            }
            Output::Forward(_) => stats.forwards += 1,
            Output::Done { .. } => stats.done += 1,
        }
    }
}

fn save_panic(dir: &Path, name: &str, inputs: &[(u64, Vec<u8>)], what: &str) {
    std::fs::create_dir_all(dir).expect("out dir");
    let detail = LAST_PANIC.lock().unwrap().take().unwrap_or_default();
    let text = format!("{what}\n{detail}");
    eprintln!(
        "PANIC ({what}) — saved as {}/{name}*\n{text}",
        dir.display()
    );
    if let [(i, v)] = inputs {
        std::fs::write(dir.join(format!("{name}.bin")), v).expect("save input");
        std::fs::write(
            dir.join(format!("{name}.txt")),
            format!("input {i}\n{text}"),
        )
        .expect("save");
    } else {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("batch dir");
        for (i, v) in inputs {
            std::fs::write(d.join(format!("{i}.bin")), v).expect("save input");
        }
        std::fs::write(d.join("panic.txt"), text).expect("save");
    }
}

fn run(a: Args) -> Stats {
    let seeds = seeds();
    // Inputs come from `rng` alone (so `--dump` reproduces them); record
    // timestamps from their own stream.
    let mut rng = SmallRng::seed_from_u64(a.seed);
    let mut ts_rng = SmallRng::seed_from_u64(a.seed ^ 0x7473_7473);
    if let Some(target) = a.dump {
        for i in 0..=target {
            let v = make_input(&mut rng, &seeds);
            if i == target {
                std::fs::create_dir_all(&a.out).expect("out dir");
                let path = a.out.join(format!("input-{i}.bin"));
                std::fs::write(&path, v).expect("dump");
                eprintln!("wrote {}", path.display());
            }
        }
        std::process::exit(0);
    }
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/genesys-silver.toml"
    ))
    .expect("shipped topology");
    let plan = Arc::new(
        config::parse(&text, "genesys-silver.toml")
            .expect("valid topology")
            .into_silver()
            .expect("a silver stage"),
    );
    let key = MaskingKey::from_bytes("fuzz-key").expect("key");
    let p = Pipeline::new(plan, &key, Arc::new(Metrics::new()));
    let topic: Arc<str> = Arc::from("genesys.bronze.events");
    let new_task = || -> Task { p.new_task(0, 1) };
    let mut task = new_task();
    let mut stats = Stats::default();
    let mut batch: Vec<(u64, Vec<u8>)> = Vec::with_capacity(BATCH as usize);
    let mut decoded: Vec<Decoded> = Vec::new();
    let mut out: Vec<Output> = Vec::new();
    let started = Instant::now();
    let mut next_report = 100_000;
    for i in 0..a.inputs {
        let value = make_input(&mut rng, &seeds);
        stats.inputs += 1;
        stats.bytes += value.len() as u64;
        // Mostly a plausible record timestamp; sometimes none, or odd ones.
        let record_ts = match ts_rng.gen_range(0..16) {
            0 => None,
            1 => Some(0),
            2 => Some(i64::MAX),
            3 => Some(i64::MIN),
            _ => Some(T0 + (i as i64) * 10),
        };
        let source = SourceRef {
            topic: topic.clone(),
            partition: 0,
            offset: i as i64,
        };
        // The decoder alone.
        decoded.clear();
        let r = catch_unwind(AssertUnwindSafe(|| {
            decode_record(
                &DecodeInput {
                    value: &value,
                    source: source.clone(),
                    header_lineage_token: None,
                    record_timestamp_ms: record_ts,
                    ticket: i,
                },
                &mut decoded,
            );
        }));
        match r {
            Ok(()) => {
                stats.units += decoded.len() as u64;
                stats.decoded_events +=
                    decoded.iter().filter(|d| d.as_event().is_some()).count() as u64;
            }
            Err(_) => {
                stats.panics += 1;
                save_panic(
                    &a.out,
                    &format!("panic-{i}"),
                    &[(i, value.clone())],
                    "decode_record",
                );
            }
        }
        // The whole chain.
        let rec = RecordIn {
            value: &value,
            source,
            role: Role::Input,
            header_token: None,
            header_hops: None,
            record_timestamp_ms: record_ts,
            ticket: i,
        };
        let r = catch_unwind(AssertUnwindSafe(|| {
            p.ingest(&rec, &mut task, Instant::now(), &mut out);
        }));
        if r.is_err() {
            stats.panics += 1;
            save_panic(
                &a.out,
                &format!("panic-{i}"),
                &[(i, value.clone())],
                "Pipeline::ingest",
            );
            out.clear();
            task = new_task();
        }
        count(&mut stats, &mut out);
        batch.push((i, value));
        if batch.len() as u64 == BATCH || i + 1 == a.inputs {
            let r = catch_unwind(AssertUnwindSafe(|| {
                p.tick(&mut task, Instant::now(), &mut out);
                p.flush(&mut task, &mut out);
            }));
            if r.is_err() {
                stats.panics += 1;
                save_panic(
                    &a.out,
                    &format!("batch-{i}"),
                    &batch,
                    "Pipeline::tick/flush",
                );
                out.clear();
            }
            count(&mut stats, &mut out);
            batch.clear();
            // A fresh task per batch: seeds repeat, and one long-lived dedup
            // cache would drop nearly every event as a duplicate.
            task = new_task();
        }
        if i + 1 == next_report {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "{} inputs, {} panics, {:.0} inputs/s",
                i + 1,
                stats.panics,
                (i + 1) as f64 / secs
            );
            next_report += 100_000;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz_decode: {} inputs ({:.1} MB, seed {}), {} panics, {:.1} s, {:.0} inputs/s",
        stats.inputs,
        stats.bytes as f64 / 1e6,
        a.seed,
        stats.panics,
        secs,
        stats.inputs as f64 / secs
    );
    println!(
        "  decoder: {} units, {} events; chain: {} silver, {} late, {} forwarded, {} dropped (duplicate/filtered)",
        stats.units, stats.decoded_events, stats.silver, stats.late, stats.forwards, stats.done
    );
    println!(
        "  dead letters: {}",
        stats
            .dead_letters
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    stats
}

fn main() {
    let a = args();
    std::panic::set_hook(Box::new(|info| {
        let bt = std::backtrace::Backtrace::force_capture();
        *LAST_PANIC.lock().unwrap() = Some(format!("{info}\n{bt}"));
    }));
    let handle = std::thread::Builder::new()
        .name("fuzz".into())
        .stack_size(2 << 20)
        .spawn(move || run(a))
        .expect("fuzz thread");
    let stats = handle.join().expect("fuzz thread");
    if stats.panics > 0 {
        eprintln!("{} panics", stats.panics);
        std::process::exit(1);
    }
}
