//! # wactor-registry
//!
//! The host's control plane: which actors exist, which version of each
//! runs, and the consumers that run them. Every lifecycle operation the
//! admin API and the CLI offer goes through here.
//!
//! # Layout
//!
//! - [`registry`]: [`Registry`]: deploy (validate, store, activate), hot
//!   swap, rollback, pause/resume, remove, and the views of actors and
//!   versions; starting the actors found in the store when the host starts.
//! - [`shared`]: the registry shared by a cluster of hosts: changes
//!   written to the registry log and applied by every host in its order.
//! - `dead_letter_sharing`: the dead-letter set shared through each
//!   group's `<group>.dead-letters` topic: following, removals, publishing
//!   again.
//! - [`cluster`]: the cluster view: every host's heartbeat (what it runs,
//!   which partitions it owns, their lag) through `<registry topic>.hosts`.
//! - [`owner_requests`]: `retries list` and `retries now` for the whole
//!   cluster: requests to partition owners through `<registry
//!   topic>.requests`.
//! - [`dead_letters`]: listing, showing, re-driving and discarding dead
//!   letters, and listing this host's retries.
//! - [`schedules`]: an actor's schedules with their next and last firing,
//!   and backfills of a past range.
//! - [`replays`]: replays of a past range this host plans, feeds and
//!   cancels.
//! - [`versions`]: [`LoadedVersions`], the versions of one actor kept in
//!   memory (active, previous, pinned for a re-drive, finishing calls) and
//!   loaded on demand; everything else is unloaded.
//! - [`error`]: [`RegistryError`], one variant per case a caller (the API)
//!   maps to a status.
//!
//! What it does not do: speak HTTP (wactor-api), parse command lines
//! (wactor), poll Kafka or call actors (wactor-kafka), or open sled
//! (wactor-store).

pub mod cluster;
mod dead_letter_sharing;
pub mod dead_letters;
mod error;
pub mod owner_requests;
pub mod registry;
pub mod replays;
pub mod schedules;
pub mod shared;
pub mod versions;

pub use dead_letters::{RedriveReport, RedriveRequest, RedriveTarget};
pub use error::{RegistryError, Result};
pub use registry::{
    ActorSummary, Deployed, HostParts, PartitionSummary, Registry, Started, Upload, VersionSummary,
    LOADED_VERSIONS_METRIC,
};
pub use versions::{LoadedVersions, VersionLoader};
