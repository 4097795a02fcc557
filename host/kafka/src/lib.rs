//! # wactor-kafka
//!
//! Everything that touches Kafka, and the delivery engine built on it: the
//! only crate that uses rdkafka.
//!
//! # Layout
//!
//! - [`settings`]: the `[kafka]` host settings and the client configs built
//!   from them (delivery-critical properties always win).
//! - [`actor`]: what a consumer runs: [`ActiveVersion`]s behind a
//!   [`VersionSource`] (hot swap is a pointer swap), and the
//!   [`ActorContext`] an actor's consumer and workers share.
//! - [`consumer`]: [`ActorConsumer`]: the poll thread, rebalances,
//!   backpressure, offset storing.
//! - [`worker`]: the partition worker: intake and calls, retry decisions,
//!   held lanes and restore, durability and drain. Public so that its
//!   state machine can be driven through its inbox (tests).
//! - `held_lanes`: the in-memory index of a partition's held lanes.
//! - [`call`]: one attempt: invoke, then produce emits, write the state
//!   changelog and apply state.
//! - [`changelog`]: held events mirrored to a compacted topic, restored on
//!   assignment.
//! - [`state_changelog`]: actor state mirrored to a compacted topic per
//!   group, restored with its partition; the scoped state reader.
//! - [`dead_letter`]: dead-letter records and their Kafka mirror.
//! - [`dead_letter_log`]: the cluster's dead-letter set, one compacted
//!   topic per group that every host reads into its store.
//! - [`producer`]: the host's producer.
//! - [`admin`]: creating topics, partition counts.
//! - [`event`]: messages to events and back.
//! - [`clock`]: wall-clock time for retries ([`ManualClock`] in tests).
//! - [`dev_cluster`]: the in-process mock broker of `wactor dev`.
//! - [`registry_log`]: the shared registry's topic: component chunks and
//!   change records, written by one host and read by all.
//! - [`delayed`]: emits delivered later, held in `<group>.delayed` until
//!   due.
//! - [`schedule`]: firing the actor's `[[schedules]]` as records of
//!   `<group>.schedule`, from the owner of its partition 0.
//! - [`replay`]: past records of an actor's topics copied to
//!   `<group>.replay` and presented to the actor as the originals.
//! - [`recovery`]: partition workers that end unexpectedly (restarted with
//!   backoff, shown as failed) and offset resets (never silent).
//!
//! What it does not do: decide which version is active (the registry),
//! parse manifests (wactor-manifest), or touch wasmtime or sled directly
//! (wactor-runtime, wactor-store).

pub mod actor;
pub mod actor_logs;
pub mod admin;
pub mod call;
pub mod changelog;
pub mod clock;
pub mod consumer;
pub mod dead_letter;
pub mod dead_letter_log;
pub mod delayed;
pub mod dev_cluster;
mod error;
pub mod event;
mod fence;
mod held_lanes;
pub mod producer;
pub mod recovery;
pub mod redrive;
pub mod registry_log;
pub mod replay;
pub mod schedule;
pub mod settings;
pub mod state_changelog;
pub mod worker;

pub use actor::{ActiveVersion, ActorContext, VersionSlot, VersionSource};
pub use call::HandleSpans;
pub use clock::{Clock, ManualClock, SystemClock};
pub use consumer::{ActorConsumer, ConsumerStatus, RetryHandle};
pub use dev_cluster::DevCluster;
pub use error::{KafkaError, Result};
pub use producer::{OutRecord, Producer};
pub use settings::KafkaSettings;
