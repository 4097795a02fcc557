//! Ordering: which events of one partition may run at the same time.
//!
//! This module owns the per-partition [`LaneScheduler`]: events are grouped
//! into *lanes* (what must run in order, chosen by the actor's
//! [`OrderingMode`]); a lane runs at most one event at a time, in push order,
//! while different lanes run in parallel up to a `max_in_flight` bound. A lane
//! whose running event must wait for a retry leaves the scheduler:
//! [`complete_and_take`](LaneScheduler::complete_and_take) frees it and hands
//! its buffered events back, for the caller to hold in durable storage until
//! the retry is done.
//!
//! It deliberately does not own the events' timing (see [`crate::retry`]),
//! offsets (see [`crate::offsets`]), Kafka, or any synchronization: the
//! scheduler is a plain `&mut` structure owned by one partition worker.
//!
//! # Cost
//!
//! `push`, `next_ready` and `complete` are O(log r) (r = lanes ready to run)
//! and allocate nothing in the steady state: lane slots, their queues and
//! their key buffers are recycled through a free list, and the key -> lane
//! index stores only slot numbers (the key bytes live in the recycled slot).
//! Lanes with nothing buffered or running are freed at once, so thousands of
//! distinct keys cost only what is currently buffered.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

/// How an actor's events are ordered within a partition (`ordering` in the
/// actor manifest: `"key"`, `"partition"` or `"none"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderingMode {
    /// Events with the same key run one at a time, in offset order; other keys
    /// run in parallel. Events without a key (a null key, not an empty one)
    /// share one lane, so they are ordered by offset among themselves.
    #[default]
    Key,
    /// The whole partition is one lane: strict offset order, one at a time.
    Partition,
    /// No ordering: every event is its own lane.
    None,
}

/// The lane an event belongs to, as computed by [`lane_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane<'a> {
    /// The partition-wide lane: every event in [`OrderingMode::Partition`],
    /// and the events without a key in [`OrderingMode::Key`].
    Shared,
    /// The lane of one key, in [`OrderingMode::Key`]. An empty key is a key.
    Key(&'a [u8]),
    /// A lane of its own, in [`OrderingMode::None`].
    Own,
}

/// Which lane an event with this key belongs to under `mode`.
pub fn lane_for(mode: OrderingMode, key: Option<&[u8]>) -> Lane<'_> {
    match (mode, key) {
        (OrderingMode::Key, Some(key)) => Lane::Key(key),
        (OrderingMode::Key, None) | (OrderingMode::Partition, _) => Lane::Shared,
        (OrderingMode::None, _) => Lane::Own,
    }
}

/// A handle to one live lane of a [`LaneScheduler`].
///
/// Returned by [`LaneScheduler::push`] and [`LaneScheduler::next_ready`]; valid
/// while the lane has something buffered or running. Once a lane is
/// freed its id is stale forever (ids carry a generation), so a stale id is
/// refused with [`LaneError::UnknownLane`] instead of touching another lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LaneId {
    /// Slot of the lane in the scheduler.
    index: usize,
    /// Bumped each time the slot is freed, so stale ids do not alias.
    generation: u64,
}

impl fmt::Display for LaneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lane {}.{}", self.index, self.generation)
    }
}

/// What a live lane is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LaneState {
    /// Nothing running; its head item is ready to run.
    Idle,
    /// One item was handed out by `next_ready` and is not finished yet.
    Running,
}

impl fmt::Display for LaneState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LaneState::Idle => "idle",
            LaneState::Running => "running",
        })
    }
}

/// A call that does not fit the lane's state: a bug in the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LaneError {
    /// The lane was freed (or never existed); the id is stale.
    #[error("{0} is unknown or was already freed")]
    UnknownLane(LaneId),
    /// The lane exists but is not in the state the call needs.
    #[error("{lane} is {actual}, expected {expected}")]
    WrongState {
        /// The lane.
        lane: LaneId,
        /// The state the call needs.
        expected: LaneState,
        /// The state the lane is in.
        actual: LaneState,
    },
}

/// Per-partition scheduler of events over lanes.
///
/// `T` is whatever the caller runs (typically an owned event plus its
/// offset). Protocol:
///
/// 1. [`push`](Self::push) every event read from the partition;
/// 2. start what [`next_ready`](Self::next_ready) hands out, until it returns
///    `None`;
/// 3. when an item is finished (done, or dead-lettered), call
///    [`complete`](Self::complete); when it must wait for a retry, call
///    [`complete_and_take`](Self::complete_and_take) instead: the lane is
///    freed and its buffered items are handed back, for the caller to keep
///    (with the failed item in front) outside the scheduler, together with
///    the lane's later events, until the retry is done.
///
/// Items are handed out oldest first among the lanes that may run, so an old
/// event is never starved by newer events of other lanes.
#[derive(Debug)]
pub struct LaneScheduler<T> {
    /// How events map to lanes; fixed for the scheduler's life.
    mode: OrderingMode,
    /// Bound on items handed out and not yet completed (>= 1).
    max_in_flight: usize,
    /// Lane slots, live or free; indexed by `LaneId::index`.
    slots: Vec<Slot<T>>,
    /// Free slots, reused before the vector grows.
    free: Vec<usize>,
    /// Key -> slot of the key's lane (Key mode). Stores slot numbers only;
    /// keys are compared against the slot's own key buffer.
    keyed: HashTable<usize>,
    /// Hashes keys for `keyed`; randomly seeded, as keys come from outside.
    hasher: RandomState,
    /// Slot of the shared lane (Partition mode; key-less events in Key mode).
    shared: Option<usize>,
    /// Lanes that may run now (idle with a buffered head), by their head
    /// item's arrival number: the min-heap is what makes service oldest-first.
    /// Invariant: a lane is here exactly once iff it is idle and non-empty.
    ready: BinaryHeap<Reverse<(u64, usize)>>,
    /// Arrival number of the next pushed item.
    next_seq: u64,
    /// Items buffered in lanes (not running).
    buffered: usize,
    /// Lanes in `Running`.
    in_flight: usize,
    /// Slots not free.
    live: usize,
}

/// One buffered item and its arrival number.
#[derive(Debug)]
struct Entry<T> {
    /// Arrival order across the whole partition; orders the ready heap.
    seq: u64,
    item: T,
}

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// Not a lane; on the free list.
    Free,
    /// A live lane.
    Live(LaneState),
}

/// Which index (if any) points at a slot, so freeing it can unlink it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LaneKind {
    Shared,
    Keyed,
    Own,
}

#[derive(Debug)]
struct Slot<T> {
    /// Bumped on free; part of every `LaneId` for this slot.
    generation: u64,
    state: SlotState,
    kind: LaneKind,
    /// Hash of `key` (Keyed lanes), to unlink the slot from `keyed`.
    hash: u64,
    /// The lane's key (Keyed lanes). Kept allocated across reuse.
    key: Vec<u8>,
    /// Items waiting, in push order. Kept allocated across reuse.
    queue: VecDeque<Entry<T>>,
}

impl<T> LaneScheduler<T> {
    /// A scheduler for one partition. `max_in_flight` bounds the items
    /// running at once; 0 is treated as 1.
    pub fn new(mode: OrderingMode, max_in_flight: usize) -> Self {
        LaneScheduler {
            mode,
            max_in_flight: max_in_flight.max(1),
            slots: Vec::new(),
            free: Vec::new(),
            keyed: HashTable::new(),
            hasher: RandomState::new(),
            shared: None,
            ready: BinaryHeap::new(),
            next_seq: 0,
            buffered: 0,
            in_flight: 0,
            live: 0,
        }
    }

    /// The ordering mode.
    pub fn mode(&self) -> OrderingMode {
        self.mode
    }

    /// The in-flight bound.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Changes the in-flight bound (0 is treated as 1). Lowering it below
    /// [`in_flight`](Self::in_flight) stops `next_ready` until enough
    /// items complete; nothing running is affected.
    pub fn set_max_in_flight(&mut self, max_in_flight: usize) {
        self.max_in_flight = max_in_flight.max(1);
    }

    /// Buffers an event with this key at the back of its lane, and returns
    /// the lane. The item becomes ready when the lane is idle and it is at
    /// the lane's head.
    pub fn push(&mut self, key: Option<&[u8]>, item: T) -> LaneId {
        let seq = self.next_seq;
        self.next_seq += 1;
        let index = match lane_for(self.mode, key) {
            Lane::Shared => match self.shared {
                Some(index) => index,
                None => {
                    let index = self.alloc(LaneKind::Shared, 0, &[]);
                    self.shared = Some(index);
                    index
                }
            },
            Lane::Key(key) => self.keyed_lane(key),
            Lane::Own => self.alloc(LaneKind::Own, 0, &[]),
        };
        let slot = &mut self.slots[index];
        let was_empty = slot.queue.is_empty();
        slot.queue.push_back(Entry { seq, item });
        self.buffered += 1;
        if was_empty && slot.state == SlotState::Live(LaneState::Idle) {
            self.ready.push(Reverse((seq, index)));
        }
        LaneId {
            index,
            generation: slot.generation,
        }
    }

    /// Hands out the oldest item whose lane is idle, marking the lane
    /// running; `None` when the in-flight bound is reached or nothing is
    /// ready. Call it again after each `push`, `complete`,
    /// `complete_and_take` and `set_max_in_flight`: those are what make items
    /// ready or free in-flight room.
    pub fn next_ready(&mut self) -> Option<(LaneId, T)> {
        if self.in_flight >= self.max_in_flight {
            return None;
        }
        let Reverse((_, index)) = self.ready.pop()?;
        let slot = &mut self.slots[index];
        debug_assert_eq!(slot.state, SlotState::Live(LaneState::Idle));
        let entry = slot.queue.pop_front()?;
        slot.state = SlotState::Live(LaneState::Running);
        self.buffered -= 1;
        self.in_flight += 1;
        Some((
            LaneId {
                index,
                generation: slot.generation,
            },
            entry.item,
        ))
    }

    /// The item running in `lane` is finished (done or dead-lettered): the
    /// lane's next item becomes ready, or the lane is freed if it has none.
    pub fn complete(&mut self, lane: LaneId) -> Result<(), LaneError> {
        let index = self.check(lane, LaneState::Running)?;
        self.in_flight -= 1;
        self.become_idle(index);
        Ok(())
    }

    /// The item running in `lane` is finished and the lane's buffered items
    /// are taken out with it, in order: the lane is freed. This is how a lane
    /// moves into durable storage when its running item must wait for a
    /// retry: the caller stores the item and the returned ones behind it, and
    /// later events of the key go there too until the stored ones are done.
    pub fn complete_and_take(&mut self, lane: LaneId) -> Result<Vec<T>, LaneError> {
        let index = self.check(lane, LaneState::Running)?;
        self.in_flight -= 1;
        let slot = &mut self.slots[index];
        let taken: Vec<T> = slot.queue.drain(..).map(|entry| entry.item).collect();
        self.buffered -= taken.len();
        slot.state = SlotState::Live(LaneState::Idle);
        self.free_slot(index);
        Ok(taken)
    }

    /// What `lane` is doing, or `None` if the id is stale.
    pub fn lane_state(&self, lane: LaneId) -> Option<LaneState> {
        match self.slots.get(lane.index) {
            Some(slot) if slot.generation == lane.generation => match slot.state {
                SlotState::Live(state) => Some(state),
                SlotState::Free => None,
            },
            _ => None,
        }
    }

    /// Items buffered and not started. The caller pauses the partition while
    /// this is above its bound.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Items handed out and not completed yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Live lanes (something buffered or running).
    pub fn lanes(&self) -> usize {
        self.live
    }

    /// Nothing buffered or running.
    pub fn is_idle(&self) -> bool {
        self.buffered == 0 && self.in_flight == 0
    }

    /// Removes every item that has not started (for a revoke), oldest first.
    /// Running items are untouched: the caller still completes them, and
    /// their lanes have nothing left behind them.
    pub fn drain_pending(&mut self) -> Vec<T> {
        let mut drained: Vec<(u64, T)> = Vec::with_capacity(self.buffered);
        self.ready.clear();
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            drained.extend(slot.queue.drain(..).map(|entry| (entry.seq, entry.item)));
            if slot.state == SlotState::Live(LaneState::Idle) {
                self.free_slot(index);
            }
        }
        self.buffered = 0;
        drained.sort_unstable_by_key(|(seq, _)| *seq);
        drained.into_iter().map(|(_, item)| item).collect()
    }

    /// The slot of `lane` if it is live and in `expected` state.
    fn check(&self, lane: LaneId, expected: LaneState) -> Result<usize, LaneError> {
        match self.lane_state(lane) {
            None => Err(LaneError::UnknownLane(lane)),
            Some(actual) if actual == expected => Ok(lane.index),
            Some(actual) => Err(LaneError::WrongState {
                lane,
                expected,
                actual,
            }),
        }
    }

    /// The slot of `key`'s lane, created if needed.
    fn keyed_lane(&mut self, key: &[u8]) -> usize {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        if let Some(&index) = self
            .keyed
            .find(hash, |&index| slots[index].key.as_slice() == key)
        {
            return index;
        }
        let index = self.alloc(LaneKind::Keyed, hash, key);
        let slots = &self.slots;
        self.keyed
            .insert_unique(hash, index, |&index| slots[index].hash);
        index
    }

    /// Takes a free slot (or grows) for a new idle, empty lane.
    fn alloc(&mut self, kind: LaneKind, hash: u64, key: &[u8]) -> usize {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    state: SlotState::Free,
                    kind,
                    hash: 0,
                    key: Vec::new(),
                    queue: VecDeque::new(),
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        debug_assert_eq!(slot.state, SlotState::Free);
        slot.state = SlotState::Live(LaneState::Idle);
        slot.kind = kind;
        slot.hash = hash;
        slot.key.clear();
        slot.key.extend_from_slice(key);
        self.live += 1;
        index
    }

    /// A running lane became idle: make its head ready, or free it.
    fn become_idle(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.state = SlotState::Live(LaneState::Idle);
        match slot.queue.front() {
            Some(head) => self.ready.push(Reverse((head.seq, index))),
            None => self.free_slot(index),
        }
    }

    /// Frees an idle, empty lane: unlink it and recycle its slot.
    fn free_slot(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        debug_assert!(slot.queue.is_empty());
        slot.state = SlotState::Free;
        slot.generation = slot.generation.wrapping_add(1);
        match slot.kind {
            LaneKind::Shared => self.shared = None,
            LaneKind::Keyed => {
                if let Ok(entry) = self.keyed.find_entry(slot.hash, |&i| i == index) {
                    entry.remove();
                }
            }
            LaneKind::Own => {}
        }
        self.free.push(index);
        self.live -= 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::{HashMap, HashSet};

    /// Hands out everything ready now.
    fn drain_ready<T>(s: &mut LaneScheduler<T>) -> Vec<(LaneId, T)> {
        std::iter::from_fn(|| s.next_ready()).collect()
    }

    fn items<T: Copy>(started: &[(LaneId, T)]) -> Vec<T> {
        started.iter().map(|(_, item)| *item).collect()
    }

    #[test]
    fn lane_for_follows_the_ordering_mode() {
        assert_eq!(lane_for(OrderingMode::Key, Some(b"a")), Lane::Key(b"a"));
        assert_eq!(lane_for(OrderingMode::Key, None), Lane::Shared);
        assert_eq!(lane_for(OrderingMode::Partition, Some(b"a")), Lane::Shared);
        assert_eq!(lane_for(OrderingMode::Partition, None), Lane::Shared);
        assert_eq!(lane_for(OrderingMode::None, Some(b"a")), Lane::Own);
        assert_eq!(lane_for(OrderingMode::None, None), Lane::Own);
    }

    #[test]
    fn ordering_mode_is_lowercase_in_config_and_defaults_to_key() {
        assert_eq!(OrderingMode::default(), OrderingMode::Key);
        let parsed: Vec<OrderingMode> =
            serde_json::from_str(r#"["key", "partition", "none"]"#).unwrap();
        assert_eq!(
            parsed,
            [
                OrderingMode::Key,
                OrderingMode::Partition,
                OrderingMode::None
            ]
        );
        assert_eq!(
            serde_json::to_string(&OrderingMode::Partition).unwrap(),
            r#""partition""#
        );
        assert!(serde_json::from_str::<OrderingMode>(r#""Key""#).is_err());
    }

    #[test]
    fn same_key_events_never_run_concurrently() {
        let mut s = LaneScheduler::new(OrderingMode::Key, 10);
        s.push(Some(b"k"), 1);
        s.push(Some(b"k"), 2);
        let started = drain_ready(&mut s);
        assert_eq!(items(&started), [1]);
        s.complete(started[0].0).unwrap();
        let started = drain_ready(&mut s);
        assert_eq!(items(&started), [2]);
        s.complete(started[0].0).unwrap();
        assert!(s.is_idle());
    }

    #[test]
    fn different_keys_run_in_parallel() {
        let mut s = LaneScheduler::new(OrderingMode::Key, 10);
        s.push(Some(b"a"), 1);
        s.push(Some(b"b"), 2);
        s.push(Some(b"a"), 3);
        s.push(Some(b"c"), 4);
        assert_eq!(items(&drain_ready(&mut s)), [1, 2, 4]);
        assert_eq!(s.in_flight(), 3);
        assert_eq!(s.buffered(), 1);
        assert_eq!(s.lanes(), 3);
    }

    #[test]
    fn keyless_events_share_one_lane_in_key_mode() {
        let mut s = LaneScheduler::new(OrderingMode::Key, 10);
        s.push(None, 1);
        s.push(Some(b"a"), 2);
        s.push(None, 3);
        let started = drain_ready(&mut s);
        assert_eq!(items(&started), [1, 2]);
        s.complete(started[0].0).unwrap();
        assert_eq!(items(&drain_ready(&mut s)), [3]);
    }

    #[test]
    fn an_empty_key_is_a_key_of_its_own_not_the_keyless_lane() {
        let mut s = LaneScheduler::new(OrderingMode::Key, 10);
        s.push(None, 1);
        s.push(Some(b""), 2);
        assert_eq!(items(&drain_ready(&mut s)), [1, 2]);
    }

    #[test]
    fn partition_mode_runs_one_event_at_a_time_in_push_order() {
        let mut s = LaneScheduler::new(OrderingMode::Partition, 10);
        s.push(Some(b"a"), 1);
        s.push(Some(b"b"), 2);
        s.push(None, 3);
        let mut order = Vec::new();
        while let Some((lane, item)) = s.next_ready() {
            assert!(s.next_ready().is_none());
            order.push(item);
            s.complete(lane).unwrap();
        }
        assert_eq!(order, [1, 2, 3]);
        assert!(s.is_idle());
        assert_eq!(s.lanes(), 0);
    }

    #[test]
    fn none_mode_runs_every_event_in_parallel_even_with_one_key() {
        let mut s = LaneScheduler::new(OrderingMode::None, 10);
        for i in 0..5 {
            s.push(Some(b"same"), i);
        }
        assert_eq!(items(&drain_ready(&mut s)), [0, 1, 2, 3, 4]);
        assert_eq!(s.lanes(), 5);
    }

    #[test]
    fn in_flight_limit_is_respected() {
        let mut s = LaneScheduler::new(OrderingMode::None, 2);
        for i in 0..5 {
            s.push(None, i);
        }
        let first = drain_ready(&mut s);
        assert_eq!(items(&first), [0, 1]);
        assert_eq!(s.in_flight(), 2);
        assert_eq!(s.buffered(), 3);
        s.complete(first[1].0).unwrap();
        let next = drain_ready(&mut s);
        assert_eq!(items(&next), [2]);
        assert_eq!(s.in_flight(), 2);
    }

    #[test]
    fn zero_max_in_flight_means_one() {
        let mut s = LaneScheduler::new(OrderingMode::None, 0);
        assert_eq!(s.max_in_flight(), 1);
        s.push(None, 1);
        s.push(None, 2);
        assert_eq!(items(&drain_ready(&mut s)), [1]);
    }

    #[test]
    fn raising_max_in_flight_lets_more_items_start() {
        let mut s = LaneScheduler::new(OrderingMode::None, 1);
        for i in 0..3 {
            s.push(None, i);
        }
        assert_eq!(items(&drain_ready(&mut s)), [0]);
        s.set_max_in_flight(3);
        assert_eq!(items(&drain_ready(&mut s)), [1, 2]);
    }

    #[test]
    fn ready_items_are_served_oldest_first_across_lanes() {
        let mut s = LaneScheduler::new(OrderingMode::Key, 2);
        let a = s.push(Some(b"a"), "a1");
        s.push(Some(b"a"), "a2");
        let b = s.push(Some(b"b"), "b1");
        s.push(Some(b"b"), "b2");
        s.push(Some(b"c"), "c1");
        assert_eq!(items(&drain_ready(&mut s)), ["a1", "b1"]);
        s.complete(b).unwrap();
        // b2 and c1 are ready but the slots are full; a2 (older) becomes
        // ready when a1 completes and must not wait behind them.
        s.complete(a).unwrap();
        assert_eq!(items(&drain_ready(&mut s)), ["a2", "b2"]);
    }

    #[test]
    fn complete_on_a_lane_that_is_not_running_is_refused() {
        let mut s = LaneScheduler::new(OrderingMode::Key, 1);
        s.push(Some(b"a"), 1);
        let b = s.push(Some(b"b"), 2);
        let (a, _) = s.next_ready().unwrap();
        assert_eq!(
            s.complete(b),
            Err(LaneError::WrongState {
                lane: b,
                expected: LaneState::Running,
                actual: LaneState::Idle
            })
        );
        s.complete(a).unwrap();
        assert_eq!(s.complete(a), Err(LaneError::UnknownLane(a)));
    }

    #[test]
    fn a_stale_lane_id_does_not_touch_the_lane_that_reuses_its_slot() {
        let mut s = LaneScheduler::new(OrderingMode::Key, 4);
        s.push(Some(b"a"), 1);
        let (old, _) = s.next_ready().unwrap();
        s.complete(old).unwrap();
        s.push(Some(b"b"), 2);
        let (new, _) = s.next_ready().unwrap();
        assert_eq!(new.index, old.index, "the slot is recycled");
        assert_eq!(s.complete(old), Err(LaneError::UnknownLane(old)));
        assert_eq!(s.lane_state(old), None);
        assert_eq!(s.lane_state(new), Some(LaneState::Running));
    }

    #[test]
    fn lanes_are_freed_when_empty_and_slots_are_reused() {
        let mut s = LaneScheduler::new(OrderingMode::Key, 8);
        for round in 0..100u32 {
            for k in 0..8u32 {
                s.push(Some(&(round * 8 + k).to_be_bytes()), k);
            }
            for (lane, _) in drain_ready(&mut s) {
                s.complete(lane).unwrap();
            }
            assert_eq!(s.lanes(), 0);
            assert!(s.is_idle());
        }
        assert_eq!(s.slots.len(), 8);
        assert!(s.keyed.is_empty());
    }

    #[test]
    fn complete_and_take_frees_the_lane_and_hands_back_its_queue_in_order() {
        let mut s = LaneScheduler::new(OrderingMode::Key, 4);
        s.push(Some(b"a"), "a1");
        s.push(Some(b"b"), "b1");
        s.push(Some(b"a"), "a2");
        s.push(Some(b"a"), "a3");
        let started = drain_ready(&mut s);
        assert_eq!(items(&started), ["a1", "b1"]);
        let (a, _) = started[0];
        assert_eq!(s.complete_and_take(a).unwrap(), ["a2", "a3"]);
        assert_eq!(s.lane_state(a), None);
        assert_eq!((s.buffered(), s.in_flight(), s.lanes()), (0, 1, 1));
        // A new event of the key starts a fresh lane.
        s.push(Some(b"a"), "a4");
        assert_eq!(items(&drain_ready(&mut s)), ["a4"]);
        assert_eq!(
            s.complete_and_take(a),
            Err(LaneError::UnknownLane(a)),
            "a stale id is refused"
        );
    }

    #[test]
    fn drain_pending_returns_unstarted_items_oldest_first_and_keeps_running_ones() {
        let mut s = LaneScheduler::new(OrderingMode::Key, 2);
        s.push(Some(b"a"), "a1");
        s.push(Some(b"b"), "b1");
        s.push(Some(b"a"), "a2");
        s.push(Some(b"c"), "c1");
        s.push(Some(b"b"), "b2");
        s.push(None, "n1");
        let started = drain_ready(&mut s);
        assert_eq!(items(&started), ["a1", "b1"]);
        assert_eq!(s.drain_pending(), ["a2", "c1", "b2", "n1"]);
        assert_eq!(s.buffered(), 0);
        assert_eq!(s.in_flight(), 2);
        assert_eq!(s.lanes(), 2, "the running lanes stay");
        assert!(s.next_ready().is_none());
        s.complete(started[0].0).unwrap();
        assert_eq!(
            s.complete_and_take(started[1].0).unwrap(),
            Vec::<&str>::new(),
            "nothing is left behind a running item"
        );
        assert!(s.is_idle());
        assert_eq!(s.lanes(), 0);
        // The scheduler is usable after a drain: the keyless lane was freed.
        s.push(None, "n2");
        assert_eq!(items(&drain_ready(&mut s)), ["n2"]);
    }

    #[test]
    fn counts_follow_every_transition() {
        let mut s = LaneScheduler::new(OrderingMode::Key, 8);
        assert!(s.is_idle());
        s.push(Some(b"a"), 1);
        s.push(Some(b"a"), 2);
        s.push(Some(b"b"), 3);
        assert_eq!((s.buffered(), s.in_flight(), s.lanes()), (3, 0, 2));
        let (a, _) = s.next_ready().unwrap();
        assert_eq!((s.buffered(), s.in_flight(), s.lanes()), (2, 1, 2));
        s.complete(a).unwrap();
        assert_eq!((s.buffered(), s.in_flight(), s.lanes()), (2, 0, 2));
        let started = drain_ready(&mut s);
        assert_eq!(items(&started), [2, 3]);
        assert_eq!((s.buffered(), s.in_flight(), s.lanes()), (0, 2, 2));
        s.complete(started[0].0).unwrap();
        assert_eq!((s.buffered(), s.in_flight(), s.lanes()), (0, 1, 1));
        assert!(!s.is_idle());
        assert_eq!(
            s.complete_and_take(started[1].0).unwrap(),
            Vec::<i32>::new()
        );
        assert_eq!((s.buffered(), s.in_flight(), s.lanes()), (0, 0, 0));
        assert!(s.is_idle());
    }

    #[test]
    fn thousands_of_keys_are_served_in_arrival_order() {
        let mut s = LaneScheduler::new(OrderingMode::Key, 64);
        for i in 0..10_000u32 {
            s.push(Some(&(i % 3000).to_le_bytes()), i);
        }
        let mut seen = Vec::new();
        while !s.is_idle() {
            let started = drain_ready(&mut s);
            for (lane, item) in started {
                seen.push(item);
                s.complete(lane).unwrap();
            }
        }
        assert_eq!(seen.len(), 10_000);
        // Each key's items are strictly increasing.
        let mut last: HashMap<u32, u32> = HashMap::new();
        for item in seen {
            if let Some(prev) = last.insert(item % 3000, item) {
                assert!(prev < item);
            }
        }
    }

    /// Reference model of one lane, for the randomized test.
    #[derive(Default)]
    struct ModelLane {
        /// Buffered item ids in order.
        queue: VecDeque<u64>,
        /// The item running, if any.
        busy: Option<u64>,
    }

    /// The model's lane name: what must run in order under `mode`.
    fn model_lane(mode: OrderingMode, key: Option<u8>, id: u64) -> (u8, u64) {
        match (mode, key) {
            (OrderingMode::Key, Some(k)) => (1, u64::from(k)),
            (OrderingMode::Key, None) | (OrderingMode::Partition, _) => (0, 0),
            (OrderingMode::None, _) => (2, id),
        }
    }

    fn random_interleavings(mode: OrderingMode, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let max = rng.gen_range(1..6);
        let mut s: LaneScheduler<(Option<u8>, u64)> = LaneScheduler::new(mode, max);
        let mut model: HashMap<(u8, u64), ModelLane> = HashMap::new();
        let mut running: Vec<(LaneId, (Option<u8>, u64))> = Vec::new();
        let mut next_id = 0u64;
        let mut finished: HashSet<u64> = HashSet::new();
        let mut pushed = 0u64;

        for step in 0..3000 {
            let draining = step >= 2000;
            match rng.gen_range(0..8) {
                0..=2 if !draining => {
                    let key = if rng.gen_bool(0.2) {
                        None
                    } else {
                        Some(rng.gen_range(0..6u8))
                    };
                    let id = next_id;
                    next_id += 1;
                    pushed += 1;
                    s.push(key.map(|k| [k]).as_ref().map(|k| &k[..]), (key, id));
                    model
                        .entry(model_lane(mode, key, id))
                        .or_default()
                        .queue
                        .push_back(id);
                }
                3..=4 => {
                    // The model's expectation: the oldest head of an idle lane.
                    let expected = if running.len() >= max {
                        None
                    } else {
                        model
                            .values()
                            .filter(|lane| lane.busy.is_none())
                            .filter_map(|lane| lane.queue.front().copied())
                            .min()
                    };
                    let got = s.next_ready();
                    assert_eq!(got.map(|(_, (_, id))| id), expected, "step {step}");
                    if let Some((lane, (key, id))) = got {
                        let m = model.get_mut(&model_lane(mode, key, id)).unwrap();
                        assert_eq!(m.queue.pop_front(), Some(id));
                        assert!(m.busy.is_none(), "two items of one lane at once");
                        m.busy = Some(id);
                        running.push((lane, (key, id)));
                    }
                }
                5..=6 if !running.is_empty() => {
                    let (lane, (key, id)) = running.swap_remove(rng.gen_range(0..running.len()));
                    s.complete(lane).unwrap();
                    let m = model.get_mut(&model_lane(mode, key, id)).unwrap();
                    assert_eq!(m.busy, Some(id));
                    m.busy = None;
                    assert!(finished.insert(id));
                }
                7 if !running.is_empty() => {
                    // The item must wait for a retry: it and its lane's
                    // queue leave the scheduler (the caller holds them).
                    let (lane, (key, id)) = running.swap_remove(rng.gen_range(0..running.len()));
                    let taken = s.complete_and_take(lane).unwrap();
                    let m = model.get_mut(&model_lane(mode, key, id)).unwrap();
                    assert_eq!(m.busy, Some(id));
                    m.busy = None;
                    let expected: Vec<u64> = m.queue.drain(..).collect();
                    assert_eq!(
                        taken.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
                        expected,
                        "step {step}"
                    );
                    assert!(finished.insert(id));
                    for id in expected {
                        assert!(finished.insert(id));
                    }
                }
                _ => {}
            }
            model.retain(|_, lane| lane.busy.is_some() || !lane.queue.is_empty());
            assert!(s.in_flight() <= max);
            assert_eq!(s.in_flight(), running.len());
            assert_eq!(
                s.buffered(),
                model.values().map(|lane| lane.queue.len()).sum::<usize>()
            );
            assert_eq!(s.lanes(), model.len());
        }

        // Finish everything: every pushed item ends exactly once.
        for (lane, (_, id)) in running.drain(..) {
            s.complete(lane).unwrap();
            assert!(finished.insert(id));
        }
        while let Some((lane, (_, id))) = s.next_ready() {
            s.complete(lane).unwrap();
            assert!(finished.insert(id));
        }
        assert_eq!(finished.len() as u64, pushed);
        assert!(s.is_idle());
        assert_eq!(s.lanes(), 0);
    }

    #[test]
    fn random_interleavings_keep_per_key_order_and_oldest_first_service() {
        for seed in 0..40 {
            random_interleavings(OrderingMode::Key, seed);
        }
    }

    #[test]
    fn random_interleavings_keep_partition_order() {
        for seed in 100..110 {
            random_interleavings(OrderingMode::Partition, seed);
        }
    }

    #[test]
    fn random_interleavings_without_ordering_respect_the_in_flight_bound() {
        for seed in 200..210 {
            random_interleavings(OrderingMode::None, seed);
        }
    }
}
