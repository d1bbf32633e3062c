//! Per-queue tumbling event-time windows with late corrections.
//!
//! The store keeps, per (queue, interaction), that interaction's current
//! contributions to the queue; an update *replaces* them, so a leg that an
//! event completes or corrects is counted once, and a repeated update
//! changes nothing. A window's figures are recomputed from the
//! contributions that complete in it:
//!
//! - its first result is due when the watermark passes its end + `grace`;
//! - after that, every change of its figures is due as a new result with
//!   `revision` + 1 and the complete values (never a delta);
//! - it is kept until the watermark passes its end + `correction_horizon`;
//!   a contribution to a window past that is returned as too late (for the
//!   stage to count and write to its late topic), never dropped silently.

use std::collections::{BTreeMap, BTreeSet};

use super::kpi::{KpiRules, Kpis};
use super::legs::Contribution;

/// The window settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRules {
    /// Window sizes, each emitted (default 15 minutes and 1 hour).
    pub sizes_ms: Vec<i64>,
    pub grace_ms: i64,
    pub horizon_ms: i64,
    pub kpi: KpiRules,
}

impl Default for WindowRules {
    fn default() -> Self {
        WindowRules {
            sizes_ms: vec![15 * 60_000, 60 * 60_000],
            grace_ms: 5_000,
            horizon_ms: 48 * 3_600_000,
            kpi: KpiRules::default(),
        }
    }
}

/// One window of one queue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowKey {
    pub queue: String,
    pub size_ms: i64,
    pub start_ms: i64,
}

impl WindowKey {
    pub fn end_ms(&self) -> i64 {
        self.start_ms.saturating_add(self.size_ms)
    }
}

/// The start of the window of `size` that holds `at`.
pub fn window_start(at_ms: i64, size_ms: i64) -> i64 {
    at_ms.div_euclid(size_ms) * size_ms
}

/// A window's result: its complete figures at `revision` (1 for the first).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowResult {
    pub key: WindowKey,
    pub revision: u32,
    pub kpis: Kpis,
}

/// A contribution whose window is past the correction horizon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLate {
    pub key: WindowKey,
    pub contribution: Contribution,
}

/// What the store keeps of a window between results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowState {
    pub revision: u32,
    /// The figures of the last result (`None`: none written yet).
    pub emitted: Option<Kpis>,
    members: BTreeSet<String>,
}

/// Windows of the queues one task aggregates.
#[derive(Debug)]
pub struct QueueWindows {
    rules: WindowRules,
    watermark: i64,
    /// (queue, interaction) → its contributions to the queue.
    contributions: BTreeMap<(String, String), Vec<Contribution>>,
    windows: BTreeMap<WindowKey, WindowState>,
    /// Windows whose figures may have changed, or have no result yet, by end.
    due: BTreeSet<(i64, WindowKey)>,
    /// Every window by end, to drop it past the horizon.
    by_end: BTreeSet<(i64, WindowKey)>,
    /// (queue, interaction) by the last window end it contributes to.
    expiry: BTreeSet<(i64, String, String)>,
    changed_contributions: BTreeSet<(String, String)>,
    changed_windows: BTreeSet<WindowKey>,
}

impl QueueWindows {
    pub fn new(rules: WindowRules) -> Self {
        QueueWindows {
            rules,
            watermark: i64::MIN,
            contributions: BTreeMap::new(),
            windows: BTreeMap::new(),
            due: BTreeSet::new(),
            by_end: BTreeSet::new(),
            expiry: BTreeSet::new(),
            changed_contributions: BTreeSet::new(),
            changed_windows: BTreeSet::new(),
        }
    }

    pub fn rules(&self) -> &WindowRules {
        &self.rules
    }

    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Open or closed windows kept, and (queue, interaction) entries.
    pub fn sizes(&self) -> (usize, usize) {
        (self.windows.len(), self.contributions.len())
    }

    fn keys_of<'a>(
        &'a self,
        queue: &'a str,
        c: &'a Contribution,
    ) -> impl Iterator<Item = WindowKey> + 'a {
        self.rules.sizes_ms.iter().map(move |&size_ms| WindowKey {
            queue: queue.to_string(),
            size_ms,
            start_ms: window_start(c.at_ms, size_ms),
        })
    }

    fn past_horizon(&self, key: &WindowKey) -> bool {
        key.end_ms().saturating_add(self.rules.horizon_ms) <= self.watermark
    }

    fn last_end(&self, queue: &str, cs: &[Contribution]) -> i64 {
        cs.iter()
            .flat_map(|c| self.keys_of(queue, c).map(|k| k.end_ms()))
            .max()
            .unwrap_or(i64::MIN)
    }

    fn touch(&mut self, key: &WindowKey) {
        self.due.insert((key.end_ms(), key.clone()));
    }

    /// Replaces the contributions of `interaction` to `queue` with `new`.
    /// Returns those of `new` that were not there before and whose window
    /// is past the correction horizon.
    pub fn replace(
        &mut self,
        queue: &str,
        interaction: &str,
        mut new: Vec<Contribution>,
    ) -> Vec<TooLate> {
        new.sort();
        let id = (queue.to_string(), interaction.to_string());
        let old = self.contributions.get(&id).cloned().unwrap_or_default();
        if old == new {
            return Vec::new();
        }
        self.changed_contributions.insert(id.clone());
        let mut too_late = Vec::new();
        let old_keys: BTreeSet<WindowKey> =
            old.iter().flat_map(|c| self.keys_of(queue, c)).collect();
        let mut new_keys = BTreeSet::new();
        for c in &new {
            for key in self.keys_of(queue, c).collect::<Vec<_>>() {
                if self.past_horizon(&key) {
                    if !old.contains(c) {
                        too_late.push(TooLate {
                            key,
                            contribution: c.clone(),
                        });
                    }
                } else {
                    new_keys.insert(key);
                }
            }
        }
        for key in old_keys.iter().chain(&new_keys) {
            if self.past_horizon(key) {
                continue;
            }
            let w = self.windows.entry(key.clone()).or_default();
            if new_keys.contains(key) {
                w.members.insert(interaction.to_string());
            } else {
                w.members.remove(interaction);
            }
            self.by_end.insert((key.end_ms(), key.clone()));
            self.changed_windows.insert(key.clone());
            self.touch(key);
        }
        let before = self.last_end(queue, &old);
        self.expiry.remove(&(before, id.0.clone(), id.1.clone()));
        if new.is_empty() {
            self.contributions.remove(&id);
        } else {
            let after = self.last_end(queue, &new);
            self.expiry.insert((after, id.0.clone(), id.1.clone()));
            self.contributions.insert(id, new);
        }
        too_late
    }

    fn figures(&self, key: &WindowKey, members: &BTreeSet<String>) -> Kpis {
        let cs = members.iter().flat_map(|i| {
            self.contributions
                .get(&(key.queue.clone(), i.clone()))
                .into_iter()
                .flatten()
                .filter(|c| window_start(c.at_ms, key.size_ms) == key.start_ms)
        });
        Kpis::compute(&self.rules.kpi, cs)
    }

    /// Moves the watermark (never back) and returns the results due: first
    /// results of windows it closed, and new revisions of closed windows
    /// whose figures changed. Then drops windows past the horizon.
    pub fn advance(&mut self, watermark: i64) -> Vec<WindowResult> {
        self.watermark = self.watermark.max(watermark);
        let mut out = Vec::new();
        while let Some((end, key)) = self.due.first().cloned() {
            if end.saturating_add(self.rules.grace_ms) > self.watermark {
                break;
            }
            self.due.pop_first();
            let Some(w) = self.windows.get(&key) else {
                continue;
            };
            let kpis = self.figures(&key, &w.members);
            if w.emitted.as_ref() == Some(&kpis) {
                continue;
            }
            if let Some(w) = self.windows.get_mut(&key) {
                w.revision += 1;
                w.emitted = Some(kpis.clone());
                out.push(WindowResult {
                    key: key.clone(),
                    revision: w.revision,
                    kpis,
                });
                self.changed_windows.insert(key);
            }
        }
        while let Some((end, key)) = self.by_end.first().cloned() {
            if end.saturating_add(self.rules.horizon_ms) > self.watermark {
                break;
            }
            self.by_end.pop_first();
            self.due.remove(&(end, key.clone()));
            self.windows.remove(&key);
            self.changed_windows.insert(key);
        }
        while let Some((end, q, i)) = self.expiry.first().cloned() {
            if end.saturating_add(self.rules.horizon_ms) > self.watermark {
                break;
            }
            self.expiry.pop_first();
            let id = (q, i);
            self.contributions.remove(&id);
            self.changed_contributions.insert(id);
        }
        out
    }

    /// The (queue, interaction) entries and windows changed since the last
    /// call, with their current state (`None`: gone), for a checkpoint.
    #[allow(clippy::type_complexity)]
    pub fn take_changes(
        &mut self,
    ) -> (
        Vec<((String, String), Option<Vec<Contribution>>)>,
        Vec<(WindowKey, Option<(u32, Option<Kpis>)>)>,
    ) {
        let cs = std::mem::take(&mut self.changed_contributions)
            .into_iter()
            .map(|id| {
                let v = self.contributions.get(&id).cloned();
                (id, v)
            })
            .collect();
        let ws = std::mem::take(&mut self.changed_windows)
            .into_iter()
            .map(|k| {
                let v = self
                    .windows
                    .get(&k)
                    .map(|w| (w.revision, w.emitted.clone()));
                (k, v)
            })
            .collect();
        (cs, ws)
    }

    /// Restores one (queue, interaction) entry of a checkpoint.
    pub fn restore_contributions(&mut self, queue: &str, interaction: &str, cs: Vec<Contribution>) {
        self.replace(queue, interaction, cs);
    }

    /// Restores one window's revision and last figures of a checkpoint
    /// (after its contributions).
    pub fn restore_window(&mut self, key: WindowKey, revision: u32, emitted: Option<Kpis>) {
        let w = self.windows.entry(key.clone()).or_default();
        w.revision = revision;
        w.emitted = emitted;
        self.by_end.insert((key.end_ms(), key.clone()));
        self.touch(&key);
    }

    /// A result of `key` written after the restored checkpoint (read back
    /// from the output topic): later results continue from its revision,
    /// and figures equal to it are not written again.
    pub fn restore_written(&mut self, key: WindowKey, revision: u32, kpis: Kpis) {
        if self.past_horizon(&key) {
            return;
        }
        let w = self.windows.entry(key.clone()).or_default();
        if revision >= w.revision {
            w.revision = revision;
            w.emitted = Some(kpis);
        }
        self.by_end.insert((key.end_ms(), key.clone()));
        self.changed_windows.insert(key.clone());
        self.touch(&key);
    }

    /// The greatest window size.
    pub fn max_size_ms(&self) -> i64 {
        self.rules.sizes_ms.iter().copied().max().unwrap_or(0)
    }

    /// Sets the watermark of a restored checkpoint (no results).
    pub fn restore_watermark(&mut self, watermark: i64) {
        self.watermark = self.watermark.max(watermark);
    }

    /// Forgets the changes a restore made (they are the checkpoint's).
    pub fn clear_changes(&mut self) {
        self.changed_contributions.clear();
        self.changed_windows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gold::legs::{ContributionKind, Outcome};
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn rules() -> WindowRules {
        WindowRules {
            sizes_ms: vec![15 * MIN],
            grace_ms: 5_000,
            horizon_ms: 60 * MIN,
            kpi: KpiRules::default(),
        }
    }

    fn offered(at: i64, ev: u64) -> Contribution {
        Contribution {
            at_ms: at,
            kind: ContributionKind::Offered,
            events: vec![ev],
        }
    }

    fn answered(at: i64, wait: i64, ev: u64) -> Contribution {
        Contribution {
            at_ms: at,
            kind: ContributionKind::Outcome {
                outcome: Outcome::Answered,
                wait_ms: wait,
            },
            events: vec![ev],
        }
    }

    #[test]
    fn first_result_after_end_plus_grace_then_revisions_with_complete_values() {
        let mut w = QueueWindows::new(rules());
        assert!(w.replace("q1", "i1", vec![offered(MIN, 1)]).is_empty());
        assert!(w.advance(15 * MIN).is_empty(), "inside the grace");
        let r = w.advance(15 * MIN + 5_000);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].key.start_ms, 0);
        assert_eq!((r[0].revision, r[0].kpis.offered), (1, 1));
        assert_eq!(r[0].kpis.answered, 0);
        // A late answer corrects the window: revision 2, every figure.
        w.replace(
            "q1",
            "i1",
            vec![offered(MIN, 1), answered(2 * MIN, 3_000, 2)],
        );
        let r = w.advance(15 * MIN + 6_000);
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].revision, r[0].kpis.offered, r[0].kpis.answered),
            (2, 1, 1)
        );
        assert_eq!(r[0].kpis.asa_ms, Some(3_000.0));
        // The same update again changes nothing: no new revision.
        w.replace(
            "q1",
            "i1",
            vec![answered(2 * MIN, 3_000, 2), offered(MIN, 1)],
        );
        assert!(w.advance(16 * MIN).is_empty());
    }

    #[test]
    fn a_moved_contribution_leaves_its_old_window() {
        let mut w = QueueWindows::new(rules());
        w.replace("q1", "i1", vec![answered(14 * MIN, 1_000, 1)]);
        let r = w.advance(31 * MIN);
        assert_eq!((r[0].key.start_ms, r[0].kpis.answered), (0, 1));
        // A correction puts the answer in the next window.
        w.replace("q1", "i1", vec![answered(16 * MIN, 1_000, 1)]);
        let mut r = w.advance(31 * MIN);
        r.sort_by_key(|r| r.key.start_ms);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].key.start_ms, r[0].revision, r[0].kpis.answered),
            (0, 2, 0)
        );
        assert_eq!(
            (r[1].key.start_ms, r[1].revision, r[1].kpis.answered),
            (15 * MIN, 1, 1)
        );
    }

    #[test]
    fn past_the_horizon_is_too_late_once_and_windows_are_dropped() {
        let mut w = QueueWindows::new(rules());
        w.replace("q1", "i1", vec![offered(MIN, 1)]);
        w.advance(15 * MIN + 60 * MIN);
        assert_eq!(
            w.sizes(),
            (0, 0),
            "window and entry dropped at end + horizon"
        );
        let late = w.replace("q1", "i2", vec![offered(2 * MIN, 2), offered(80 * MIN, 3)]);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].key.start_ms, 0);
        assert_eq!(late[0].contribution, offered(2 * MIN, 2));
        // Replaced again with an addition: the old late one is not repeated.
        let late = w.replace(
            "q1",
            "i2",
            vec![
                offered(2 * MIN, 2),
                offered(80 * MIN, 3),
                offered(81 * MIN, 4),
            ],
        );
        assert!(late.is_empty());
        let r = w.advance(96 * MIN);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].kpis.offered, 2, "only the window within the horizon");
    }

    #[test]
    fn changes_name_what_a_checkpoint_writes_and_restore_continues_revisions() {
        let mut w = QueueWindows::new(rules());
        w.replace("q1", "i1", vec![offered(MIN, 1)]);
        w.advance(16 * MIN);
        let (cs, ws) = w.take_changes();
        assert_eq!(
            cs,
            vec![(("q1".into(), "i1".into()), Some(vec![offered(MIN, 1)]))]
        );
        assert_eq!(ws.len(), 1);
        let (key, state) = ws[0].clone();
        let (revision, emitted) = state.unwrap();
        assert_eq!(revision, 1);

        let mut restored = QueueWindows::new(rules());
        restored.restore_contributions("q1", "i1", vec![offered(MIN, 1)]);
        restored.restore_window(key, revision, emitted);
        restored.restore_watermark(16 * MIN);
        restored.clear_changes();
        assert!(restored.advance(16 * MIN).is_empty(), "nothing new to say");
        restored.replace("q1", "i2", vec![offered(2 * MIN, 2)]);
        let r = restored.advance(16 * MIN);
        assert_eq!((r[0].revision, r[0].kpis.offered), (2, 2));
    }

    proptest! {
        /// Feeding the same final contributions in any order, with
        /// intermediate corrections, gives the same final figures as feeding
        /// them in order, with the watermark moving along.
        #[test]
        fn order_and_corrections_do_not_change_the_final_figures(
            legs in proptest::collection::vec((0..4usize, 0i64..(60 * MIN), 0i64..60_000, any::<bool>()), 1..40),
            order in any::<proptest::sample::Index>(),
            steps in proptest::collection::vec(0i64..(20 * MIN), 0..10),
        ) {
            let per: Vec<(String, String, Vec<Contribution>)> = legs.iter().enumerate().map(|(n, (q, at, wait, ans))| {
                let mut cs = vec![offered(*at, n as u64)];
                if *ans { cs.push(answered(at + wait, *wait, 1000 + n as u64)); }
                (format!("q{q}"), format!("i{n}"), cs)
            }).collect();
            let final_figures = |w: &mut QueueWindows| {
                w.advance(i64::MAX / 4);
                w.windows.iter().map(|(k, s)| (k.clone(), s.emitted.clone())).collect::<Vec<_>>()
            };
            let mut a = QueueWindows::new(WindowRules { horizon_ms: i64::MAX / 2, ..rules() });
            for (q, i, cs) in &per { a.replace(q, i, cs.clone()); }
            let want = final_figures(&mut a);

            let mut b = QueueWindows::new(WindowRules { horizon_ms: i64::MAX / 2, ..rules() });
            let mut shuffled = per.clone();
            let k = order.index(shuffled.len());
            shuffled.rotate_left(k);
            shuffled.reverse();
            let mut wm = 0;
            for (n, (q, i, cs)) in shuffled.iter().enumerate() {
                // First a partial or wrong version, then the right one.
                b.replace(q, i, cs[..1].to_vec());
                if let Some(s) = steps.get(n) { wm += s; b.advance(wm); }
                b.replace(q, i, cs.clone());
            }
            prop_assert_eq!(final_figures(&mut b), want);
        }
    }
}
