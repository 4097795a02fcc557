//! Errors of control-plane operations, one variant per case a caller
//! handles differently (the API turns each into a status code).

use wactor_kafka::KafkaError;
use wactor_manifest::ManifestError;
use wactor_runtime::RuntimeError;
use wactor_store::StoreError;

/// What can go wrong in a control-plane operation.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The manifest is not valid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The component is not a valid actor (not Wasm, not a component,
    /// wrong world, missing export, too large).
    #[error(transparent)]
    Component(#[from] RuntimeError),
    /// No actor of that name.
    #[error("no actor named {0:?}")]
    UnknownActor(String),
    /// The actor has no such version.
    #[error("actor {actor:?} has no version {version}")]
    UnknownVersion {
        /// The actor.
        actor: String,
        /// The version asked for.
        version: u64,
    },
    /// No dead letter (or held event) with that id.
    #[error("no {what} with id {id:?}")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// The id.
        id: String,
    },
    /// The request names one actor and the manifest another.
    #[error("the manifest is for actor {manifest:?}, not {requested:?}")]
    NameMismatch {
        /// The name the request used.
        requested: String,
        /// The name in the manifest.
        manifest: String,
    },
    /// A rollback with no earlier version to go back to.
    #[error("actor {0:?} has no earlier version to roll back to")]
    NothingToRollBack(String),
    /// A change based on a state of the registry that another change has
    /// replaced since (a roll back that would undo a deploy its sender
    /// never saw).
    #[error("{0}")]
    Stale(String),
    /// The request is not valid (a bad filter, a bad rate).
    #[error("{0}")]
    BadRequest(String),
    /// Hosts of the cluster that had to answer did not, in time (a
    /// request to a partition's owner through Kafka).
    #[error("{0}")]
    NoAnswer(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Kafka failed.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// Something that should not happen (a task that died).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias of this crate.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
