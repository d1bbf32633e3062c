//! Reading the activity log (`cx.gold.process_events`) as process-mining
//! tools do, without Kafka: cases assembled per partition ([`trace`]), the
//! range a command asks for ([`Selection`]), XES ([`xes`]) and OCEL 2.0
//! ([`ocel`]) writers, the directly-follows graph ([`dfg`]) and variants
//! ([`variants`]). The `export` and `mine` commands ([`crate::export`])
//! feed them from the topic.

pub mod dfg;
pub mod ocel;
pub mod trace;
pub mod variants;
pub mod xes;

pub use trace::{Assembler, Step, Trace, Unreadable};

/// Which cases a command takes: those whose first activity is in
/// `[from, to)` (event time), at most `cases` of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub cases: Option<u64>,
}

impl Selection {
    /// Whether `trace` is in the time range.
    pub fn in_range(&self, trace: &Trace) -> bool {
        let Some(first) = trace.first_ms() else {
            return false;
        };
        self.from_ms.is_none_or(|f| first >= f) && self.to_ms.is_none_or(|t| first < t)
    }

    /// Whether `taken` cases are all that were asked for.
    pub fn full(&self, taken: u64) -> bool {
        self.cases.is_some_and(|n| taken >= n)
    }
}

#[cfg(test)]
mod tests {
    use super::trace::tests::step;
    use super::*;

    #[test]
    fn a_case_is_in_range_by_its_first_activity() {
        let t = Trace {
            case_id: "c".into(),
            steps: vec![
                step("c", "Call Started", 1_000, 1),
                step("c", "Queued", 5_000, 2),
            ],
            closed: None,
            continuation: false,
        };
        let sel = |f, t| Selection {
            from_ms: f,
            to_ms: t,
            cases: None,
        };
        assert!(sel(None, None).in_range(&t));
        assert!(sel(Some(1_000), Some(1_001)).in_range(&t));
        assert!(!sel(Some(1_001), None).in_range(&t));
        assert!(!sel(None, Some(1_000)).in_range(&t));
        let empty = Trace {
            steps: vec![],
            ..t.clone()
        };
        assert!(!sel(None, None).in_range(&empty));
        let two = Selection {
            cases: Some(2),
            ..Selection::default()
        };
        assert!(!two.full(1));
        assert!(two.full(2));
        assert!(!Selection::default().full(u64::MAX));
    }
}
