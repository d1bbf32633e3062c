//! This process's CPU time and memory, from `/proc/self` (Linux): the
//! benchmark's per-variant figures, and `examples/dedup_rss`.

/// `utime + stime` of this process in seconds, from `/proc/self/stat`
/// (USER_HZ = 100 on Linux).
pub fn proc_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line, i.e. 12 and 13 after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((ut + st) as f64 / 100.0)
}

/// A `Vm*` field of `/proc/self/status` in KiB (e.g. `VmRSS`, `VmHWM`).
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_readers_parse_this_process() {
        assert!(proc_cpu_seconds().is_some());
        assert!(proc_status_kib("VmRSS").is_some_and(|k| k > 0));
    }
}
