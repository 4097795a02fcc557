//! # wactor-delivery
//!
//! The delivery logic of one partition: which events may run now, how far
//! the partition may be committed, and when a failed event runs again. Pure
//! logic: no Kafka, no Wasm, no store, no clock, no locks. The Kafka layer
//! owns one [`LaneScheduler`] and one [`OffsetTracker`] per assigned
//! partition and calls them from that partition's task; [`RetryPolicy`] is
//! per actor and shared read-only.
//!
//! # Layout
//!
//! - [`ordering`]: [`OrderingMode`] and the [`LaneScheduler`]: per-key (or
//!   per-partition, or no) ordering with bounded parallelism, oldest-first
//!   service across keys, and handing a lane's queue back
//!   ([`complete_and_take`](LaneScheduler::complete_and_take)) when its
//!   event must wait for a retry.
//! - [`offsets`]: the [`OffsetTracker`]: the offset to commit, which never
//!   passes an unfinished event, however out of order events finish.
//! - [`retry`]: the [`RetryPolicy`] and its [`decide`](RetryPolicy::decide):
//!   exponential backoff with a cap and jitter, the actor's own delay, and
//!   the dead-letter reasons (attempts, age, the actor's `dead`).
//! - [`schedule`]: [`Schedule`](schedule::Schedule): cron expressions in
//!   a time zone, their occurrences, the catch-up policy for missed ones
//!   and the event each firing delivers.
//! - [`duration_str`]: the `"500ms"` / `"10s"` / `"5m"` text form of
//!   durations in configuration, with serde helpers.
//!
//! # One event's path
//!
//! A failed event that must wait for a retry leaves the scheduler: the
//! Kafka layer holds it in the store, in a *held lane* (its key, the whole
//! partition, or just the event, by ordering mode), and later events of that
//! lane wait behind it there, not here (in `partition` mode the consumer also
//! pauses the partition). Parenthesized steps are the Kafka layer's own.
//!
//! ```text
//! read      offsets.track(offset)
//!           if its lane is held: (store it at the back of the held lane)
//!           else scheduler.push(key, event)
//! start     while let Some((lane, event)) = scheduler.next_ready() { run }
//! done      scheduler.complete(lane); offsets.finish(offset)
//! failed    match policy.decide(attempt, first_at, now, failure, rng) {
//!             RetryAfter(d)  => queued = scheduler.complete_and_take(lane);
//!                               (store the event, due in d, then queued:
//!                               its lane is held); once that is durable:
//!                               offsets.finish(each stored offset)
//!             DeadLetter(_)  => (store the dead letter, flushed);
//!                               scheduler.complete(lane); offsets.finish(offset)
//!           }
//! held      (when the held head is due, run it; failed: decide again; done
//!           or dead: the lane's next held event runs; none left: the lane
//!           is no longer held and its new events go to the scheduler)
//! commit    if let Some(next) = offsets.take_commit() { commit next }
//! revoke    scheduler.drain_pending(); finish or abandon what runs; commit
//! ```

#![warn(missing_docs)]

pub mod duration_str;
pub mod offsets;
pub mod ordering;
pub mod retry;
pub mod schedule;

pub use offsets::{OffsetError, OffsetTracker};
pub use ordering::{lane_for, Lane, LaneError, LaneId, LaneScheduler, LaneState, OrderingMode};
pub use retry::{DeadReason, Decision, Failure, Jitter, PolicyError, RetryPolicy};
