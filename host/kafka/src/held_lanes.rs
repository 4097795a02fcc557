//! The in-memory index of a partition's held lanes: the lanes (keys, or the
//! whole partition) whose events are in the store because the first of
//! them waits for a retry.
//!
//! The store holds the events themselves; this index holds, per lane, how
//! many are held, the highest held offset (an event of the lane at or below
//! it was already handled or is already held, so a re-read copy is
//! skipped), and the state of the lane's head: due at a time, running, or
//! blocked by its dead letter (`on_dead = "block"`). Timers are a min-heap with lazy deletion.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use wactor_delivery::OrderingMode;
use wactor_runtime::Event;
use wactor_store::LaneKey;

/// The lane of an event under `mode`, in the store's terms.
pub fn lane_key(mode: OrderingMode, event: &Event) -> LaneKey {
    match (mode, &event.key) {
        (OrderingMode::Key, Some(key)) => LaneKey::Key(key.clone()),
        (OrderingMode::Key, None) | (OrderingMode::Partition, _) => LaneKey::Shared,
        (OrderingMode::None, _) => LaneKey::Own(event.offset),
    }
}

/// What a held lane's first event is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Waits until this time (ms since the epoch), then runs.
    Due(i64),
    /// Is being run.
    Running,
    /// Is dead and blocks the lane (`on_dead = "block"`): never due; an
    /// operator's re-drive or discard of its dead letter releases it.
    Blocked,
}

/// One held lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLane {
    /// Events of the lane in the store.
    pub len: usize,
    /// The highest offset held (or handled) in the lane.
    pub max_offset: i64,
    /// Its first event's state.
    pub head: Head,
}

/// The held lanes of one partition.
#[derive(Debug, Default)]
pub struct HeldLanes {
    lanes: HashMap<LaneKey, HeldLane>,
    /// (due, lane): an entry is live only if the lane's head is still
    /// `Due(due)`.
    timers: BinaryHeap<Reverse<(i64, LaneKey)>>,
}

impl HeldLanes {
    /// No lane is held.
    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// The lane, if held.
    pub fn get(&self, lane: &LaneKey) -> Option<&HeldLane> {
        self.lanes.get(lane)
    }

    /// The lane, if held.
    pub fn get_mut(&mut self, lane: &LaneKey) -> Option<&mut HeldLane> {
        self.lanes.get_mut(lane)
    }

    /// Starts holding `lane` (or replaces it).
    pub fn insert(&mut self, lane: LaneKey, held: HeldLane) {
        if let Head::Due(at) = held.head {
            self.timers.push(Reverse((at, lane.clone())));
        }
        self.lanes.insert(lane, held);
    }

    /// Stops holding `lane`.
    pub fn remove(&mut self, lane: &LaneKey) -> Option<HeldLane> {
        self.lanes.remove(lane)
    }

    /// Sets the head of a held lane; a `Due` head gets a timer.
    pub fn set_head(&mut self, lane: &LaneKey, head: Head) {
        if let Some(held) = self.lanes.get_mut(lane) {
            held.head = head;
            if let Head::Due(at) = head {
                self.timers.push(Reverse((at, lane.clone())));
            }
        }
    }

    /// The earliest time a head is due, dropping stale timers.
    pub fn next_due(&mut self) -> Option<i64> {
        while let Some(Reverse((at, lane))) = self.timers.peek() {
            if self
                .lanes
                .get(lane)
                .is_some_and(|h| h.head == Head::Due(*at))
            {
                return Some(*at);
            }
            self.timers.pop();
        }
        None
    }

    /// The lanes whose head is due at `now`, marked running, earliest
    /// first.
    pub fn take_due(&mut self, now: i64) -> Vec<LaneKey> {
        let mut due = Vec::new();
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, lane))) = self.timers.pop() else {
                break;
            };
            if let Some(held) = self.lanes.get_mut(&lane) {
                if held.head == Head::Due(at) {
                    held.head = Head::Running;
                    due.push(lane);
                }
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(k: &str) -> LaneKey {
        LaneKey::Key(k.as_bytes().to_vec())
    }

    fn held(head: Head) -> HeldLane {
        HeldLane {
            len: 1,
            max_offset: 0,
            head,
        }
    }

    #[test]
    fn due_heads_come_out_earliest_first_and_only_once() {
        let mut lanes = HeldLanes::default();
        lanes.insert(lane("b"), held(Head::Due(200)));
        lanes.insert(lane("a"), held(Head::Due(100)));
        lanes.insert(lane("c"), held(Head::Due(300)));
        assert_eq!(lanes.next_due(), Some(100));
        assert_eq!(lanes.take_due(250), vec![lane("a"), lane("b")]);
        assert_eq!(lanes.get(&lane("a")).map(|h| h.head), Some(Head::Running));
        assert_eq!(lanes.take_due(250), Vec::<LaneKey>::new());
        assert_eq!(lanes.next_due(), Some(300));
    }

    #[test]
    fn a_rescheduled_head_forgets_its_old_timer() {
        let mut lanes = HeldLanes::default();
        lanes.insert(lane("a"), held(Head::Due(100)));
        lanes.set_head(&lane("a"), Head::Due(500));
        assert_eq!(lanes.next_due(), Some(500));
        assert!(lanes.take_due(100).is_empty());
        lanes.set_head(&lane("a"), Head::Due(50));
        assert_eq!(lanes.take_due(60), vec![lane("a")]);
    }

    #[test]
    fn removed_and_running_lanes_never_fire() {
        let mut lanes = HeldLanes::default();
        lanes.insert(lane("a"), held(Head::Due(100)));
        lanes.insert(lane("b"), held(Head::Due(100)));
        lanes.remove(&lane("a"));
        lanes.set_head(&lane("b"), Head::Running);
        assert_eq!(lanes.next_due(), None);
        assert!(lanes.take_due(1_000).is_empty());
    }

    #[test]
    fn a_blocked_head_never_fires_until_it_is_made_due() {
        let mut lanes = HeldLanes::default();
        lanes.insert(lane("a"), held(Head::Blocked));
        lanes.insert(lane("b"), held(Head::Due(100)));
        lanes.set_head(&lane("b"), Head::Blocked);
        assert_eq!(lanes.next_due(), None);
        assert!(lanes.take_due(i64::MAX).is_empty());
        lanes.set_head(&lane("a"), Head::Due(5));
        assert_eq!(lanes.take_due(5), vec![lane("a")]);
        assert_eq!(lanes.get(&lane("b")).map(|h| h.head), Some(Head::Blocked));
    }

    #[test]
    fn lanes_follow_the_ordering_mode() {
        let mut event = Event {
            topic: "t".into(),
            partition: 0,
            offset: 9,
            timestamp_ms: None,
            key: Some(b"k".to_vec()),
            payload: Some(Vec::new()),
            headers: Vec::new(),
            attempt: 1,
        };
        assert_eq!(lane_key(OrderingMode::Key, &event), lane("k"));
        assert_eq!(lane_key(OrderingMode::Partition, &event), LaneKey::Shared);
        assert_eq!(lane_key(OrderingMode::None, &event), LaneKey::Own(9));
        event.key = None;
        assert_eq!(lane_key(OrderingMode::Key, &event), LaneKey::Shared);
    }
}
