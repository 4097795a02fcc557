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
//!   service across keys, and parking of a lane while its event waits for a
//!   retry.
//! - [`offsets`]: the [`OffsetTracker`]: the offset to commit, which never
//!   passes an unfinished event, however out of order events finish.
//! - [`retry`]: the [`RetryPolicy`] and its [`decide`](RetryPolicy::decide):
//!   exponential backoff with a cap and jitter, the actor's own delay, and
//!   the dead-letter reasons (attempts, age, the actor's `dead`).
//! - [`duration_str`]: the `"500ms"` / `"10s"` / `"5m"` text form of
//!   durations in configuration, with serde helpers.
//!
//! # One event's path
//!
//! ```text
//! read      offsets.track(offset); scheduler.push(key, event)
//! start     while let Some((lane, event)) = scheduler.next_ready() { run }
//! done      scheduler.complete(lane); offsets.finish(offset)
//! failed    match policy.decide(attempt, first_at, now, failure, rng) {
//!             RetryAfter(d)  => scheduler.park(lane); (store the retry); after d:
//!                               scheduler.resume(lane, event)
//!             DeadLetter(_)  => (store the dead letter, flushed);
//!                               scheduler.complete(lane); offsets.finish(offset)
//!           }
//! commit    if let Some(next) = offsets.take_commit() { commit next }
//! revoke    scheduler.drain_pending(); finish or abandon what runs; commit
//! ```

#![warn(missing_docs)]

pub mod duration_str;
pub mod offsets;
pub mod ordering;
pub mod retry;

pub use offsets::{OffsetError, OffsetTracker};
pub use ordering::{
    lane_for, Lane, LaneError, LaneId, LaneScheduler, LaneState, OrderingMode, ResumeError,
};
pub use retry::{DeadReason, Decision, Failure, Jitter, PolicyError, RetryPolicy};
