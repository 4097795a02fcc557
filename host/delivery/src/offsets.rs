//! Offsets: how far a partition may be committed.
//!
//! This module owns [`OffsetTracker`], which turns "event N was read" and
//! "event N's outcome is final" into the offset to commit, in Kafka's sense
//! (the *next* offset to read). The commit never passes an event that is not
//! finished, however out of order events finish: that is the at-least-once
//! promise.
//!
//! It does not commit anything (the Kafka layer does) and does not decide
//! when an outcome is final: the caller calls [`OffsetTracker::finish`] only
//! once the event is done, or dead-lettered with its record durably stored.
//!
//! Offsets within a partition arrive in increasing order but may have gaps
//! (compacted topics, transaction markers), so the tracker keeps the read
//! offsets themselves in arrival order, not a bitmap over a range.

use std::collections::VecDeque;

/// A call that breaks the tracker's input rules: a bug in the caller (or a
/// partition that was rewound without a new tracker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffsetError {
    /// Offsets must be tracked in strictly increasing order.
    #[error("offset {offset} tracked after {last}: offsets must increase")]
    NotIncreasing {
        /// The refused offset.
        offset: i64,
        /// The last offset tracked.
        last: i64,
    },
    /// Kafka offsets are never negative.
    #[error("offset {0} is negative")]
    Negative(i64),
}

/// Tracks the read and finished offsets of one partition and computes the
/// offset to commit.
///
/// Cost: `track` is O(1) amortized, `finish` is O(1) when the window holds
/// consecutive offsets up to the finished one (the usual case: a topic
/// without transaction markers or compaction gaps) and O(log w) otherwise
/// (w = offsets read and not yet committable), `committable` is O(1).
/// Memory is O(w).
#[derive(Debug, Clone, Default)]
pub struct OffsetTracker {
    /// Offsets read and not yet passed by the commit position, ascending.
    /// Invariant: the front, if any, is unfinished.
    window: VecDeque<Tracked>,
    /// Entries of `window` not finished.
    unfinished: usize,
    /// The highest offset tracked, for the all-finished position and to
    /// check that offsets increase.
    last_tracked: Option<i64>,
    /// The position last returned by `take_commit` (or given at creation),
    /// so that `take_commit` reports only advances.
    committed: Option<i64>,
}

/// One offset read.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    offset: i64,
    finished: bool,
}

impl OffsetTracker {
    /// A tracker with nothing tracked or committed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker for a partition whose committed offset is already
    /// `committed`: [`take_commit`](Self::take_commit) will not report that
    /// same position again.
    pub fn with_committed(committed: i64) -> Self {
        OffsetTracker {
            committed: Some(committed),
            ..Self::default()
        }
    }

    /// Records that the event at `offset` was read. Offsets must increase
    /// (gaps are fine).
    pub fn track(&mut self, offset: i64) -> Result<(), OffsetError> {
        if offset < 0 {
            return Err(OffsetError::Negative(offset));
        }
        if let Some(last) = self.last_tracked {
            if offset <= last {
                return Err(OffsetError::NotIncreasing { offset, last });
            }
        }
        self.window.push_back(Tracked {
            offset,
            finished: false,
        });
        self.unfinished += 1;
        self.last_tracked = Some(offset);
        Ok(())
    }

    /// Records that the event at `offset` has its final outcome. Returns
    /// `false`, changing nothing, if the offset is not tracked and
    /// unfinished (unknown, or finished already).
    pub fn finish(&mut self, offset: i64) -> bool {
        let Some(position) = self.position(offset) else {
            return false;
        };
        let Some(tracked) = self.window.get_mut(position) else {
            return false;
        };
        if tracked.finished {
            return false;
        }
        tracked.finished = true;
        self.unfinished -= 1;
        if position == 0 {
            while self.window.front().is_some_and(|tracked| tracked.finished) {
                self.window.pop_front();
            }
        }
        true
    }

    /// Where `offset` is in the window, if it is tracked: at its distance
    /// from the front when the offsets before it are consecutive (checked),
    /// else by binary search.
    fn position(&self, offset: i64) -> Option<usize> {
        let front = self.window.front()?.offset;
        let guess = offset
            .checked_sub(front)
            .and_then(|distance| usize::try_from(distance).ok());
        if let Some(index) = guess {
            if self.window.get(index).is_some_and(|t| t.offset == offset) {
                return Some(index);
            }
        }
        self.window
            .binary_search_by_key(&offset, |tracked| tracked.offset)
            .ok()
    }

    /// The offset to commit now (the next offset to read): the smallest
    /// tracked unfinished offset, or one past the last tracked offset when
    /// all are finished; `None` if nothing was ever tracked. Does not change
    /// the tracker; after a failed commit, commit this value again.
    pub fn committable(&self) -> Option<i64> {
        match self.window.front() {
            Some(front) => Some(front.offset),
            None => self.last_tracked.map(|last| last.saturating_add(1)),
        }
    }

    /// [`committable`](Self::committable), but only if it advanced since the
    /// last `take_commit` (or the offset given to
    /// [`with_committed`](Self::with_committed)); it is then remembered as
    /// committed. Call it on the commit timer and commit what it returns.
    pub fn take_commit(&mut self) -> Option<i64> {
        let position = self.committable()?;
        if self
            .committed
            .is_some_and(|committed| committed >= position)
        {
            return None;
        }
        self.committed = Some(position);
        Some(position)
    }

    /// The position last returned by `take_commit` (or given at creation).
    pub fn committed(&self) -> Option<i64> {
        self.committed
    }

    /// The highest offset tracked.
    pub fn last_tracked(&self) -> Option<i64> {
        self.last_tracked
    }

    /// Offsets tracked and not finished.
    pub fn unfinished(&self) -> usize {
        self.unfinished
    }

    /// Offsets held in memory: the unfinished ones and the finished ones
    /// behind the oldest unfinished.
    pub fn window(&self) -> usize {
        self.window.len()
    }

    /// Every tracked offset is finished.
    pub fn all_finished(&self) -> bool {
        self.unfinished == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;

    fn tracking(offsets: &[i64]) -> OffsetTracker {
        let mut t = OffsetTracker::new();
        for &offset in offsets {
            t.track(offset).unwrap();
        }
        t
    }

    #[test]
    fn nothing_tracked_means_nothing_to_commit() {
        let mut t = OffsetTracker::new();
        assert_eq!(t.committable(), None);
        assert_eq!(t.take_commit(), None);
        assert!(t.all_finished());
    }

    #[test]
    fn the_commit_is_the_first_unfinished_offset() {
        let t = tracking(&[10, 11, 12]);
        assert_eq!(t.committable(), Some(10));
        assert_eq!(t.unfinished(), 3);
    }

    #[test]
    fn commit_moves_only_over_contiguous_finished_prefix() {
        let mut t = tracking(&[10, 11, 12, 13]);
        assert!(t.finish(12));
        assert!(t.finish(11));
        assert_eq!(t.committable(), Some(10));
        assert!(t.finish(10));
        assert_eq!(t.committable(), Some(13));
        assert_eq!(t.window(), 1);
        assert!(t.finish(13));
        assert_eq!(t.committable(), Some(14));
        assert_eq!(t.window(), 0);
    }

    #[test]
    fn all_finished_commits_one_past_the_last_tracked() {
        let mut t = tracking(&[0, 1]);
        t.finish(0);
        t.finish(1);
        assert!(t.all_finished());
        assert_eq!(t.committable(), Some(2));
    }

    #[test]
    fn offsets_with_gaps_commit_past_the_gap() {
        let mut t = tracking(&[5, 9, 20]);
        t.finish(5);
        assert_eq!(t.committable(), Some(9));
        t.finish(20);
        assert_eq!(t.committable(), Some(9));
        t.finish(9);
        assert_eq!(t.committable(), Some(21));
    }

    #[test]
    fn a_gap_sends_finish_past_its_direct_lookup_to_the_right_offset() {
        // `finish` looks an offset up at its distance from the front; after
        // a gap that index holds another offset (or none), which must not
        // be taken for it.
        let mut t = tracking(&[0, 1, 2, 10, 11, 12]);
        assert!(!t.finish(3), "index 3 holds offset 10");
        assert!(!t.finish(5), "index 5 holds offset 12");
        assert!(t.finish(11));
        assert!(!t.finish(11), "finished already");
        assert!(t.finish(1));
        assert!(t.finish(0));
        assert_eq!(t.committable(), Some(2));
        // Now the front is 2: offset 10 sits at index 1.
        assert!(!t.finish(3));
        assert!(t.finish(10));
        assert!(t.finish(2));
        assert_eq!(t.committable(), Some(12));
        assert_eq!(t.unfinished(), 1);
    }

    #[test]
    fn finishing_an_unknown_offset_is_a_noop() {
        let mut t = tracking(&[5, 9]);
        assert!(!t.finish(7), "inside a gap");
        assert!(!t.finish(4), "before the window");
        assert!(!t.finish(10), "after the last tracked");
        assert_eq!(t.committable(), Some(5));
        assert_eq!(t.unfinished(), 2);
    }

    #[test]
    fn finishing_twice_is_a_noop() {
        let mut t = tracking(&[1, 2, 3]);
        assert!(t.finish(2));
        assert!(!t.finish(2), "finished, still in the window");
        assert!(t.finish(1));
        assert!(!t.finish(1), "finished, left the window");
        assert_eq!(t.unfinished(), 1);
        assert_eq!(t.committable(), Some(3));
    }

    #[test]
    fn take_commit_reports_only_advances() {
        let mut t = tracking(&[1, 2]);
        assert_eq!(t.take_commit(), Some(1));
        assert_eq!(t.take_commit(), None);
        t.finish(2);
        assert_eq!(t.take_commit(), None, "1 still holds the commit");
        t.finish(1);
        assert_eq!(t.take_commit(), Some(3));
        assert_eq!(t.committed(), Some(3));
        assert_eq!(t.take_commit(), None);
        assert_eq!(t.committable(), Some(3), "still answers after taking");
        t.track(7).unwrap();
        assert_eq!(t.take_commit(), Some(7), "the gap 3..7 is passed");
    }

    #[test]
    fn with_committed_does_not_report_the_starting_position_again() {
        let mut t = OffsetTracker::with_committed(100);
        t.track(100).unwrap();
        assert_eq!(t.take_commit(), None);
        t.finish(100);
        assert_eq!(t.take_commit(), Some(101));
    }

    #[test]
    fn tracking_a_non_increasing_offset_is_refused() {
        let mut t = tracking(&[3]);
        assert_eq!(
            t.track(3),
            Err(OffsetError::NotIncreasing { offset: 3, last: 3 })
        );
        assert_eq!(
            t.track(2),
            Err(OffsetError::NotIncreasing { offset: 2, last: 3 })
        );
        assert_eq!(t.track(-1), Err(OffsetError::Negative(-1)));
        assert_eq!(t.last_tracked(), Some(3));
        assert_eq!(t.window(), 1);
    }

    #[test]
    fn random_finish_orders_commit_the_smallest_unfinished_offset() {
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut offsets: Vec<i64> = Vec::new();
            let mut next = 0i64;
            for _ in 0..200 {
                next += rand::Rng::gen_range(&mut rng, 1..4);
                offsets.push(next);
            }
            let mut t = tracking(&offsets);
            let mut order = offsets.clone();
            order.shuffle(&mut rng);
            let mut unfinished: std::collections::BTreeSet<i64> = offsets.iter().copied().collect();
            let mut last_commit = 0;
            for offset in order {
                assert!(t.finish(offset));
                unfinished.remove(&offset);
                let expected = unfinished.first().copied().unwrap_or(next + 1);
                assert_eq!(t.committable(), Some(expected));
                assert!(expected >= last_commit, "the commit never goes back");
                last_commit = expected;
            }
            assert_eq!(t.committable(), Some(next + 1));
        }
    }
}
