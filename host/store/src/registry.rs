//! The registry: actors, their immutable numbered versions, the
//! content-addressed component bytes those versions run, and each actor's
//! activation history. Cluster-wide (other crates replicate it between
//! hosts).
//!
//! Trees:
//! - `registry/actors`: actor name -> [`ActorRecord`];
//! - `registry/versions`: (actor, version BE) -> [`VersionRecord`];
//! - `registry/components`: sha256 (lowercase hex) -> component bytes,
//!   shared by every version with the same bytes;
//! - `registry/activations`: (actor, seq BE) -> [`ActivationRecord`];
//! - `registry/chunks`: (sha256, chunk index BE) -> bytes: pieces of a
//!   component arriving from the shared registry log, until all are here
//!   and [`Registry::add_chunk`] assembles them;
//! - `registry/meta`: `applied` -> the offset of the last record of the
//!   shared registry log applied here (i64 BE; -1: attached, nothing
//!   applied yet). Absent: this registry was never built from the log.
//!
//! Version numbers and activation sequence numbers are derived from the
//! last key of the actor's versions / activations (inside the transaction
//! that writes the next one), and those trees are append-only: removing an
//! actor keeps them, so numbering continues and a re-deployed actor can
//! still roll back.
//!
//! # Not here
//!
//! Validating a component against the WIT world, parsing manifests,
//! compiling, and the hot swap itself: runtime, manifest and delivery do
//! those. Manifests are stored as the TOML text they were uploaded with.
//! The caller computes the sha256; the store checks its shape and that it
//! never names two different byte strings.

use serde::{Deserialize, Serialize};
use sled::Transactional;

use crate::codec;
use crate::{abort, from_tx, validate_actor_name, Result, StoreError};

/// An actor as the registry knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorRecord {
    /// Unique name (the key).
    pub name: String,
    /// Manifest of the active version (of the first upload until a version
    /// is activated).
    pub manifest_toml: String,
    /// The version that handles new events; `None` until one is activated.
    pub active_version: Option<u64>,
    /// Paused actors consume nothing.
    pub paused: bool,
    /// When the record was created (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// Last activation or pause change (ms since the Unix epoch).
    pub updated_at_ms: i64,
}

/// One immutable uploaded version of an actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// The actor.
    pub actor: String,
    /// 1-based, never reused for this actor.
    pub version: u64,
    /// sha256 of the component bytes (lowercase hex): their key in
    /// `registry/components`.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// When it was uploaded (ms since the Unix epoch).
    pub uploaded_at_ms: i64,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// Free text from the uploader.
    pub notes: String,
    /// The manifest uploaded with it.
    pub manifest_toml: String,
}

/// One entry of an actor's activation history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationRecord {
    /// The actor.
    pub actor: String,
    /// 1-based position in the actor's history.
    pub seq: u64,
    /// The version activated.
    pub version: u64,
    /// The version active before (`None`: nothing was).
    pub previous: Option<u64>,
    /// When (ms since the Unix epoch).
    pub at_ms: i64,
    /// Who.
    pub by: String,
    /// `deploy`, `activate` or `rollback`.
    pub reason: String,
}

/// An upload, as [`Registry::add_version`] takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion<'a> {
    /// The actor (created if unknown).
    pub actor: &'a str,
    /// The manifest uploaded with it.
    pub manifest_toml: &'a str,
    /// The component bytes, stored under `sha256` when given. `None`: the
    /// version record only (the shared registry log applies deploys this
    /// way: the bytes arrive as chunks, or are here already).
    pub component: Option<&'a [u8]>,
    /// Size of the component in bytes.
    pub size: u64,
    /// sha256 of the component, hex (computed by the caller).
    pub sha256: &'a str,
    /// Who uploads.
    pub uploaded_by: &'a str,
    /// Free text.
    pub notes: &'a str,
    /// Now (ms since the Unix epoch).
    pub now_ms: i64,
}

/// The registry. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    /// `registry/actors`.
    actors: sled::Tree,
    /// `registry/versions`.
    versions: sled::Tree,
    /// `registry/components`.
    components: sled::Tree,
    /// `registry/activations`.
    activations: sled::Tree,
    /// `registry/chunks`.
    chunks: sled::Tree,
    /// `registry/meta`.
    meta: sled::Tree,
}

/// Key of the applied offset in `registry/meta`.
const APPLIED_KEY: &[u8] = b"applied";

/// Key of the last applied change (offset BE, id) in `registry/meta`.
const LAST_OP_KEY: &[u8] = b"last_op";

/// How often a write that derives the next number retries after losing a
/// race before giving up with [`StoreError::Conflict`] (each lost race
/// means another writer made progress, so this is never reached in
/// practice).
const MAX_RACES: usize = 64;

fn actor_what(name: &str) -> String {
    format!("actor {name:?}")
}

fn version_what(name: &str, version: u64) -> String {
    format!("version {version} of actor {name:?}")
}

/// Lowercase `sha256` after checking it is 64 hex digits.
fn normalize_sha256(sha256: &str) -> Result<String> {
    if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(sha256.to_ascii_lowercase())
    } else {
        Err(StoreError::Invalid {
            what: format!("sha256 {sha256:?}: expected 64 hex digits"),
        })
    }
}

impl Registry {
    pub(crate) fn open(db: &sled::Db) -> Result<Self> {
        Ok(Registry {
            actors: db.open_tree("registry/actors")?,
            versions: db.open_tree("registry/versions")?,
            components: db.open_tree("registry/components")?,
            activations: db.open_tree("registry/activations")?,
            chunks: db.open_tree("registry/chunks")?,
            meta: db.open_tree("registry/meta")?,
        })
    }

    /// Records an upload. If the actor already has a version with the same
    /// sha256 and the same manifest, returns it with `false` and adds
    /// nothing. Otherwise stores the component bytes under their sha256
    /// (once, shared between versions), gives the version the actor's next
    /// number (1-based, never reused) and returns it with `true`. Either
    /// way the actor's record is created if missing (inactive, not paused),
    /// which is how a removed actor comes back. One transaction.
    ///
    /// Errors: [`StoreError::InvalidActorName`], [`StoreError::Invalid`]
    /// for a sha256 that is not 64 hex digits, [`StoreError::Conflict`]
    /// when the sha256 already names different bytes.
    pub fn add_version(&self, new: &NewVersion<'_>) -> Result<(VersionRecord, bool)> {
        validate_actor_name(new.actor)?;
        let sha256 = normalize_sha256(new.sha256)?;
        let name = new.actor;
        let actor_value = codec::to_json(
            "actor record",
            &ActorRecord {
                name: name.to_string(),
                manifest_toml: new.manifest_toml.to_string(),
                active_version: None,
                paused: false,
                created_at_ms: new.now_ms,
                updated_at_ms: new.now_ms,
            },
        )?;
        for _ in 0..MAX_RACES {
            let existing = self
                .versions(name)?
                .into_iter()
                .find(|v| v.sha256 == sha256 && v.manifest_toml == new.manifest_toml);
            let (record, created) = match existing {
                Some(record) => (record, false),
                None => {
                    let record = VersionRecord {
                        actor: name.to_string(),
                        version: self.last_number(&self.versions, name)? + 1,
                        sha256: sha256.clone(),
                        size: new.size,
                        uploaded_at_ms: new.now_ms,
                        uploaded_by: new.uploaded_by.to_string(),
                        notes: new.notes.to_string(),
                        manifest_toml: new.manifest_toml.to_string(),
                    };
                    (record, true)
                }
            };
            let version_key = codec::actor_numbered_key(name, record.version)?;
            let version_value = codec::to_json("version record", &record)?;
            let written = (&self.actors, &self.versions, &self.components)
                .transaction(|(actors, versions, components)| {
                    if created {
                        if versions.get(version_key.as_slice())?.is_some() {
                            // Another upload took this number: look again.
                            return Ok(false);
                        }
                        if let Some(component) = new.component {
                            match components.get(sha256.as_bytes())? {
                                Some(stored) if stored.as_ref() != component => {
                                    return Err(abort(StoreError::Conflict {
                                        what: format!(
                                        "sha256 {sha256} already names different component bytes"
                                    ),
                                    }));
                                }
                                Some(_) => {}
                                None => {
                                    components.insert(sha256.as_bytes(), component)?;
                                }
                            }
                        }
                        versions.insert(version_key.as_slice(), version_value.as_slice())?;
                    }
                    if actors.get(name.as_bytes())?.is_none() {
                        actors.insert(name.as_bytes(), actor_value.as_slice())?;
                    }
                    Ok(true)
                })
                .map_err(from_tx)?;
            if written {
                return Ok((record, created));
            }
        }
        Err(StoreError::Conflict {
            what: format!("{}: too many concurrent uploads", actor_what(name)),
        })
    }

    /// One actor's record.
    pub fn actor(&self, name: &str) -> Result<Option<ActorRecord>> {
        self.actors
            .get(name.as_bytes())?
            .map(|v| codec::from_json("actor record", &v))
            .transpose()
    }

    /// Every actor, sorted by name.
    pub fn actors(&self) -> Result<Vec<ActorRecord>> {
        self.actors
            .iter()
            .values()
            .map(|v| codec::from_json("actor record", &v?))
            .collect()
    }

    /// Every version of an actor, oldest first (including versions
    /// uploaded before the actor was removed).
    pub fn versions(&self, name: &str) -> Result<Vec<VersionRecord>> {
        self.versions
            .scan_prefix(codec::actor_prefix(name)?)
            .values()
            .map(|v| codec::from_json("version record", &v?))
            .collect()
    }

    /// One version of an actor.
    pub fn version(&self, name: &str, version: u64) -> Result<Option<VersionRecord>> {
        self.versions
            .get(codec::actor_numbered_key(name, version)?)?
            .map(|v| codec::from_json("version record", &v))
            .transpose()
    }

    /// Component bytes by sha256 (hex, either case);
    /// [`StoreError::Invalid`] if `sha256` is not 64 hex digits.
    pub fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        let sha256 = normalize_sha256(sha256)?;
        Ok(self.components.get(sha256.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Makes `version` the actor's active version, atomically: sets
    /// `active_version`, copies the version's manifest into the actor
    /// record and appends an [`ActivationRecord`] whose `previous` is the
    /// version that was active. [`StoreError::NotFound`] for an unknown
    /// actor or version (nothing changes then).
    pub fn activate(
        &self,
        name: &str,
        version: u64,
        by: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<ActivationRecord> {
        let version_key = codec::actor_numbered_key(name, version)?;
        for _ in 0..MAX_RACES {
            let seq = self.last_number(&self.activations, name)? + 1;
            let activation_key = codec::actor_numbered_key(name, seq)?;
            let done = (&self.actors, &self.versions, &self.activations)
                .transaction(|(actors, versions, activations)| {
                    if activations.get(activation_key.as_slice())?.is_some() {
                        // Another activation took this number: look again.
                        return Ok(None);
                    }
                    let Some(actor) = actors.get(name.as_bytes())? else {
                        return Err(abort(StoreError::NotFound {
                            what: actor_what(name),
                        }));
                    };
                    let mut actor: ActorRecord =
                        codec::from_json("actor record", &actor).map_err(abort)?;
                    let Some(target) = versions.get(version_key.as_slice())? else {
                        return Err(abort(StoreError::NotFound {
                            what: version_what(name, version),
                        }));
                    };
                    let target: VersionRecord =
                        codec::from_json("version record", &target).map_err(abort)?;
                    let record = ActivationRecord {
                        actor: name.to_string(),
                        seq,
                        version,
                        previous: actor.active_version,
                        at_ms: now_ms,
                        by: by.to_string(),
                        reason: reason.to_string(),
                    };
                    actor.active_version = Some(version);
                    actor.manifest_toml = target.manifest_toml;
                    actor.updated_at_ms = now_ms;
                    let actor_value = codec::to_json("actor record", &actor).map_err(abort)?;
                    let record_value =
                        codec::to_json("activation record", &record).map_err(abort)?;
                    actors.insert(name.as_bytes(), actor_value)?;
                    activations.insert(activation_key.as_slice(), record_value)?;
                    Ok(Some(record))
                })
                .map_err(from_tx)?;
            if let Some(record) = done {
                return Ok(record);
            }
        }
        Err(StoreError::Conflict {
            what: format!("{}: too many concurrent activations", actor_what(name)),
        })
    }

    /// An actor's activation history, oldest first (kept across
    /// [`Registry::remove_actor`]).
    pub fn history(&self, name: &str) -> Result<Vec<ActivationRecord>> {
        self.activations
            .scan_prefix(codec::actor_prefix(name)?)
            .values()
            .map(|v| codec::from_json("activation record", &v?))
            .collect()
    }

    /// The version to roll back to: the most recently activated version
    /// other than the active one. When nothing is active (the actor was
    /// removed, or re-created and not activated yet), the most recently
    /// activated version. `None` when history offers no other version.
    pub fn previous_active(&self, name: &str) -> Result<Option<u64>> {
        let current = self.actor(name)?.and_then(|a| a.active_version);
        let history = self.history(name)?;
        Ok(history
            .iter()
            .rev()
            .map(|a| a.version)
            .find(|v| Some(*v) != current))
    }

    /// Pauses or resumes an actor. [`StoreError::NotFound`] for an unknown
    /// actor.
    pub fn set_paused(&self, name: &str, paused: bool, now_ms: i64) -> Result<ActorRecord> {
        self.actors
            .transaction(|actors| {
                let Some(actor) = actors.get(name.as_bytes())? else {
                    return Err(abort(StoreError::NotFound {
                        what: actor_what(name),
                    }));
                };
                let mut actor: ActorRecord =
                    codec::from_json("actor record", &actor).map_err(abort)?;
                actor.paused = paused;
                actor.updated_at_ms = now_ms;
                let value = codec::to_json("actor record", &actor).map_err(abort)?;
                actors.insert(name.as_bytes(), value)?;
                Ok(actor)
            })
            .map_err(from_tx)
    }

    /// Removes an actor's record, returning it. Its versions, components
    /// and history stay, so numbering continues and a re-deploy can roll
    /// back.
    pub fn remove_actor(&self, name: &str) -> Result<Option<ActorRecord>> {
        self.actors
            .remove(name.as_bytes())?
            .map(|v| codec::from_json("actor record", &v))
            .transpose()
    }

    /// Stores component bytes under their sha256 (hex, either case), once.
    /// The caller has checked that `sha256` is the bytes' hash.
    ///
    /// Errors: [`StoreError::Invalid`] for a malformed sha256,
    /// [`StoreError::Conflict`] when it already names different bytes.
    pub fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<()> {
        let sha256 = normalize_sha256(sha256)?;
        let previous = self.components.compare_and_swap(
            sha256.as_bytes(),
            None as Option<&[u8]>,
            Some(bytes),
        )?;
        match previous {
            Ok(()) => Ok(()),
            Err(current) if current.current.as_deref() == Some(bytes) => Ok(()),
            Err(_) => Err(StoreError::Conflict {
                what: format!("sha256 {sha256} already names different component bytes"),
            }),
        }
    }

    /// Keeps piece `index` (0-based) of the `count` pieces of the component
    /// `sha256`; when every piece of that count is here, removes every
    /// piece of the component and returns the bytes, joined in order (the
    /// caller checks their hash and stores them with
    /// [`put_component`](Self::put_component)). A piece that arrives twice
    /// replaces itself; pieces of another count (a stray or forged piece,
    /// another chunk size) never mix in. `None` while pieces are missing.
    ///
    /// Errors: [`StoreError::Invalid`] for a malformed sha256 or an index
    /// not below `count`.
    pub fn add_chunk(
        &self,
        sha256: &str,
        index: u32,
        count: u32,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let sha256 = normalize_sha256(sha256)?;
        if index >= count {
            return Err(StoreError::Invalid {
                what: format!("chunk {index} of {count} of component {sha256}"),
            });
        }
        // Pieces of one cutting (count) are kept apart from pieces of
        // another, so a stray piece never blocks the assembly.
        let mut prefix = sha256.as_bytes().to_vec();
        prefix.extend_from_slice(&count.to_be_bytes());
        let mut key = prefix.clone();
        key.extend_from_slice(&index.to_be_bytes());
        self.chunks.insert(key, bytes)?;
        let mut pieces = Vec::new();
        for (position, entry) in self.chunks.scan_prefix(&prefix).enumerate() {
            let (key, value) = entry?;
            let expected = u32::try_from(position).unwrap_or(u32::MAX).to_be_bytes();
            if key.get(68..) != Some(&expected[..]) {
                // A gap: an earlier piece is still missing.
                return Ok(None);
            }
            pieces.push(value);
        }
        if pieces.len() != count as usize {
            return Ok(None);
        }
        let mut joined = Vec::with_capacity(pieces.iter().map(|p| p.len()).sum());
        for piece in &pieces {
            joined.extend_from_slice(piece);
        }
        self.clear_chunks(&sha256)?;
        Ok(Some(joined))
    }

    fn clear_chunks(&self, sha256: &str) -> Result<()> {
        let keys: Vec<sled::IVec> = self
            .chunks
            .scan_prefix(sha256.as_bytes())
            .keys()
            .collect::<std::result::Result<_, _>>()?;
        for key in keys {
            self.chunks.remove(key)?;
        }
        Ok(())
    }

    /// The offset of the last shared-registry-log record applied here
    /// (-1: attached, nothing applied yet); `None` when this registry was
    /// never built from the log.
    pub fn applied_offset(&self) -> Result<Option<i64>> {
        self.meta
            .get(APPLIED_KEY)?
            .map(|v| codec::i64_value("applied offset", &v))
            .transpose()
    }

    /// Records that the log record at `offset` is applied.
    pub fn set_applied_offset(&self, offset: i64) -> Result<()> {
        self.meta.insert(APPLIED_KEY, &offset.to_be_bytes())?;
        Ok(())
    }

    /// Records that the change `id` at `offset` is applied: the applied
    /// offset, and the last change applied, which identifies the log (a
    /// log that no longer has `op/<id>` at `offset` was recreated).
    pub fn set_applied_op(&self, offset: i64, id: &str) -> Result<()> {
        let mut value = offset.to_be_bytes().to_vec();
        value.extend_from_slice(id.as_bytes());
        self.meta.insert(LAST_OP_KEY, value)?;
        self.set_applied_offset(offset)
    }

    /// The last change applied from the log: (offset, id).
    pub fn last_op(&self) -> Result<Option<(i64, String)>> {
        let Some(value) = self.meta.get(LAST_OP_KEY)? else {
            return Ok(None);
        };
        let offset = codec::i64_value("last applied change", value.get(..8).unwrap_or(&[]))?;
        let id = String::from_utf8_lossy(value.get(8..).unwrap_or(&[])).into_owned();
        Ok(Some((offset, id)))
    }

    /// Records that the registry log holds the chunks of component
    /// `sha256` (read from it, or written to it and acknowledged), so that
    /// later deploys of the same bytes do not send them again.
    pub fn mark_logged(&self, sha256: &str) -> Result<()> {
        let sha256 = normalize_sha256(sha256)?;
        self.meta
            .insert(format!("logged/{sha256}").as_bytes(), &[][..])?;
        Ok(())
    }

    /// Whether [`mark_logged`](Self::mark_logged) was called for `sha256`.
    pub fn is_logged(&self, sha256: &str) -> Result<bool> {
        let sha256 = normalize_sha256(sha256)?;
        Ok(self
            .meta
            .contains_key(format!("logged/{sha256}").as_bytes())?)
    }

    /// Empties the actors, versions and history (component bytes stay: they
    /// are content-addressed) and marks the registry as built from the
    /// shared log with nothing applied yet: the log is the truth from here
    /// on, replayed from its start.
    pub fn reset_for_log(&self) -> Result<()> {
        self.actors.clear()?;
        self.versions.clear()?;
        self.activations.clear()?;
        self.chunks.clear()?;
        self.meta.remove(LAST_OP_KEY)?;
        self.set_applied_offset(-1)
    }

    /// The highest number used in an actor's part of a numbered tree
    /// (versions, activations); 0 when none.
    fn last_number(&self, tree: &sled::Tree, name: &str) -> Result<u64> {
        let prefix = codec::actor_prefix(name)?;
        let Some(last) = tree.scan_prefix(&prefix).keys().next_back() else {
            return Ok(0);
        };
        let last = last?;
        codec::u64_value("registry key number", &last[prefix.len()..])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Store;

    /// A fake sha256 standing for `bytes` (the store does not hash).
    fn sha(bytes: &[u8]) -> String {
        let mut out = codec::hex(bytes);
        out.truncate(64);
        format!("{out:0<64}")
    }

    fn upload<'a>(
        actor: &'a str,
        component: &'a [u8],
        sha256: &'a str,
        manifest: &'a str,
        now: i64,
    ) -> NewVersion<'a> {
        NewVersion {
            actor,
            manifest_toml: manifest,
            component: Some(component),
            size: component.len() as u64,
            sha256,
            uploaded_by: "ci",
            notes: "",
            now_ms: now,
        }
    }

    fn add(
        registry: &Registry,
        actor: &str,
        component: &[u8],
        manifest: &str,
        now: i64,
    ) -> (u64, bool) {
        let sha256 = sha(component);
        let (record, created) = registry
            .add_version(&upload(actor, component, &sha256, manifest, now))
            .unwrap();
        (record.version, created)
    }

    #[test]
    fn versions_are_numbered_from_one_and_the_actor_is_created_inactive() {
        let registry = Store::temporary().unwrap().registry();
        assert_eq!(add(&registry, "billing", b"v1", "m1", 10), (1, true));
        assert_eq!(add(&registry, "billing", b"v2", "m1", 20), (2, true));
        assert_eq!(add(&registry, "search", b"v1", "m1", 30), (1, true));

        let actor = registry.actor("billing").unwrap().unwrap();
        assert_eq!(actor.active_version, None);
        assert!(!actor.paused);
        assert_eq!(actor.created_at_ms, 10);
        assert_eq!(actor.manifest_toml, "m1");

        let versions = registry.versions("billing").unwrap();
        assert_eq!(
            versions.iter().map(|v| v.version).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(versions[1].size, 2);
        assert_eq!(versions[1].uploaded_at_ms, 20);
        assert_eq!(
            registry.version("billing", 2).unwrap(),
            Some(versions[1].clone())
        );
        assert_eq!(registry.version("billing", 3).unwrap(), None);
        let names: Vec<_> = registry
            .actors()
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, vec!["billing", "search"]);
    }

    #[test]
    fn the_same_bytes_and_manifest_are_one_version() {
        let registry = Store::temporary().unwrap().registry();
        assert_eq!(add(&registry, "billing", b"v1", "m1", 10), (1, true));
        assert_eq!(add(&registry, "billing", b"v1", "m1", 20), (1, false));
        assert_eq!(
            registry
                .version("billing", 1)
                .unwrap()
                .unwrap()
                .uploaded_at_ms,
            10
        );
        // Same bytes, new manifest: a new version sharing the component.
        assert_eq!(add(&registry, "billing", b"v1", "m2", 30), (2, true));
        assert_eq!(registry.versions("billing").unwrap().len(), 2);
        assert_eq!(
            registry.component(&sha(b"v1")).unwrap(),
            Some(b"v1".to_vec())
        );
    }

    #[test]
    fn component_bytes_are_content_addressed_and_shared() {
        let registry = Store::temporary().unwrap().registry();
        add(&registry, "a", b"shared", "m", 1);
        add(&registry, "b", b"shared", "m", 2);
        assert_eq!(registry.components.len(), 1);
        let upper = sha(b"shared").to_ascii_uppercase();
        assert_eq!(
            registry.component(&upper).unwrap(),
            Some(b"shared".to_vec())
        );
        assert_eq!(registry.component(&sha(b"other")).unwrap(), None);
    }

    #[test]
    fn a_sha256_that_names_other_bytes_is_a_conflict_and_changes_nothing() {
        let registry = Store::temporary().unwrap().registry();
        add(&registry, "a", b"one", "m", 1);
        let lie = sha(b"one");
        let result = registry.add_version(&upload("b", b"two", &lie, "m", 2));
        assert!(matches!(result, Err(StoreError::Conflict { .. })));
        assert_eq!(registry.actor("b").unwrap(), None);
        assert!(registry.versions("b").unwrap().is_empty());
        assert_eq!(registry.component(&lie).unwrap(), Some(b"one".to_vec()));
    }

    #[test]
    fn malformed_sha256_and_actor_names_are_refused() {
        let registry = Store::temporary().unwrap().registry();
        let short = registry.add_version(&upload("a", b"x", "abc", "m", 1));
        assert!(matches!(short, Err(StoreError::Invalid { .. })));
        let not_hex = "g".repeat(64);
        assert!(matches!(
            registry.add_version(&upload("a", b"x", &not_hex, "m", 1)),
            Err(StoreError::Invalid { .. })
        ));
        let sha256 = sha(b"x");
        assert!(matches!(
            registry.add_version(&upload("", b"x", &sha256, "m", 1)),
            Err(StoreError::InvalidActorName(_))
        ));
        assert!(registry.actors().unwrap().is_empty());
    }

    #[test]
    fn activation_sets_the_active_version_and_its_manifest_and_records_history() {
        let registry = Store::temporary().unwrap().registry();
        add(&registry, "billing", b"v1", "m1", 10);
        add(&registry, "billing", b"v2", "m2", 20);

        let first = registry
            .activate("billing", 1, "alice", "deploy", 30)
            .unwrap();
        assert_eq!((first.seq, first.version, first.previous), (1, 1, None));
        let second = registry
            .activate("billing", 2, "bob", "deploy", 40)
            .unwrap();
        assert_eq!(
            (second.seq, second.version, second.previous),
            (2, 2, Some(1))
        );

        let actor = registry.actor("billing").unwrap().unwrap();
        assert_eq!(actor.active_version, Some(2));
        assert_eq!(actor.manifest_toml, "m2");
        assert_eq!(actor.updated_at_ms, 40);
        assert_eq!(registry.history("billing").unwrap(), vec![first, second]);
    }

    #[test]
    fn activating_an_unknown_actor_or_version_is_not_found_and_changes_nothing() {
        let registry = Store::temporary().unwrap().registry();
        assert!(matches!(
            registry.activate("ghost", 1, "a", "activate", 1),
            Err(StoreError::NotFound { .. })
        ));
        add(&registry, "billing", b"v1", "m1", 10);
        assert!(matches!(
            registry.activate("billing", 2, "a", "activate", 1),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(
            registry.actor("billing").unwrap().unwrap().active_version,
            None
        );
        assert!(registry.history("billing").unwrap().is_empty());
    }

    #[test]
    fn the_rollback_target_is_the_previously_active_version() {
        let registry = Store::temporary().unwrap().registry();
        for (i, bytes) in [b"v1", b"v2", b"v3"].iter().enumerate() {
            add(&registry, "billing", *bytes, "m", i as i64);
        }
        assert_eq!(registry.previous_active("billing").unwrap(), None);
        registry.activate("billing", 1, "a", "deploy", 1).unwrap();
        assert_eq!(registry.previous_active("billing").unwrap(), None);
        registry.activate("billing", 2, "a", "deploy", 2).unwrap();
        registry.activate("billing", 3, "a", "deploy", 3).unwrap();
        assert_eq!(registry.previous_active("billing").unwrap(), Some(2));

        let rollback = registry.activate("billing", 2, "a", "rollback", 4).unwrap();
        assert_eq!(rollback.previous, Some(3));
        // Rolling back again toggles to the version just left.
        assert_eq!(registry.previous_active("billing").unwrap(), Some(3));
        // Re-activating the active version does not hide the real previous one.
        registry.activate("billing", 2, "a", "activate", 5).unwrap();
        assert_eq!(registry.previous_active("billing").unwrap(), Some(3));
    }

    #[test]
    fn pausing_and_resuming_updates_the_actor() {
        let registry = Store::temporary().unwrap().registry();
        assert!(matches!(
            registry.set_paused("ghost", true, 1),
            Err(StoreError::NotFound { .. })
        ));
        add(&registry, "billing", b"v1", "m1", 10);
        let paused = registry.set_paused("billing", true, 20).unwrap();
        assert!(paused.paused);
        assert_eq!(paused.updated_at_ms, 20);
        assert_eq!(registry.actor("billing").unwrap(), Some(paused));
        assert!(!registry.set_paused("billing", false, 30).unwrap().paused);
    }

    #[test]
    fn a_removed_then_redeployed_actor_continues_numbering_and_can_roll_back() {
        let registry = Store::temporary().unwrap().registry();
        add(&registry, "billing", b"v1", "m", 1);
        add(&registry, "billing", b"v2", "m", 2);
        registry.activate("billing", 1, "a", "deploy", 3).unwrap();
        registry.activate("billing", 2, "a", "deploy", 4).unwrap();

        let removed = registry.remove_actor("billing").unwrap().unwrap();
        assert_eq!(removed.active_version, Some(2));
        assert_eq!(registry.actor("billing").unwrap(), None);
        assert_eq!(registry.remove_actor("billing").unwrap(), None);
        assert_eq!(registry.previous_active("billing").unwrap(), Some(2));

        // New bytes: the next number, and a fresh, inactive actor record.
        assert_eq!(add(&registry, "billing", b"v3", "m", 5), (3, true));
        let actor = registry.actor("billing").unwrap().unwrap();
        assert_eq!((actor.active_version, actor.created_at_ms), (None, 5));
        let deploy = registry.activate("billing", 3, "a", "deploy", 6).unwrap();
        assert_eq!((deploy.seq, deploy.previous), (3, None));
        assert_eq!(registry.previous_active("billing").unwrap(), Some(2));
        assert_eq!(registry.versions("billing").unwrap().len(), 3);
    }

    #[test]
    fn re_uploading_known_bytes_after_removal_brings_the_actor_back() {
        let registry = Store::temporary().unwrap().registry();
        add(&registry, "billing", b"v1", "m", 1);
        registry.remove_actor("billing").unwrap();
        assert_eq!(add(&registry, "billing", b"v1", "m", 2), (1, false));
        let actor = registry.actor("billing").unwrap().unwrap();
        assert_eq!((actor.active_version, actor.created_at_ms), (None, 2));
    }

    #[test]
    fn actors_with_prefix_names_keep_separate_versions_and_history() {
        let registry = Store::temporary().unwrap().registry();
        add(&registry, "bill", b"a", "m", 1);
        add(&registry, "billing", b"b", "m", 1);
        add(&registry, "billing", b"c", "m", 1);
        registry.activate("billing", 2, "a", "deploy", 2).unwrap();
        assert_eq!(registry.versions("bill").unwrap().len(), 1);
        assert_eq!(registry.versions("billing").unwrap().len(), 2);
        assert!(registry.history("bill").unwrap().is_empty());
        assert_eq!(add(&registry, "bill", b"d", "m", 3), (2, true));
    }

    #[test]
    fn the_registry_survives_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let registry = store.registry();
            add(&registry, "billing", b"v1", "m1", 1);
            add(&registry, "billing", b"v2", "m2", 2);
            registry.activate("billing", 2, "a", "deploy", 3).unwrap();
            registry.remove_actor("billing").unwrap();
            store.flush().unwrap();
        }
        let store = crate::reopen(dir.path());
        let registry = store.registry();
        assert_eq!(registry.actor("billing").unwrap(), None);
        assert_eq!(registry.history("billing").unwrap().len(), 1);
        assert_eq!(
            registry.component(&sha(b"v2")).unwrap(),
            Some(b"v2".to_vec())
        );
        assert_eq!(add(&registry, "billing", b"v3", "m3", 4), (3, true));
    }

    #[test]
    fn chunks_are_joined_in_order_once_all_arrived_whatever_their_order() {
        let registry = Store::temporary().unwrap().registry();
        let sha256 = sha(b"whole");
        assert_eq!(registry.add_chunk(&sha256, 2, 3, b"c").unwrap(), None);
        assert_eq!(registry.add_chunk(&sha256, 0, 3, b"a").unwrap(), None);
        // A piece sent twice (a retried produce) replaces itself.
        assert_eq!(registry.add_chunk(&sha256, 0, 3, b"a").unwrap(), None);
        assert_eq!(
            registry.add_chunk(&sha256, 1, 3, b"b").unwrap(),
            Some(b"abc".to_vec())
        );
        // The pieces are gone once joined.
        assert_eq!(registry.add_chunk(&sha256, 1, 3, b"b").unwrap(), None);
        assert!(registry.add_chunk(&sha256, 3, 3, b"x").is_err());
        assert!(registry.add_chunk("nothex", 0, 1, b"x").is_err());
        // A stray piece of another count does not block the assembly.
        let other = sha(b"other");
        assert_eq!(registry.add_chunk(&other, 1, 2, b"stray").unwrap(), None);
        assert_eq!(
            registry.add_chunk(&other, 0, 1, b"whole").unwrap(),
            Some(b"whole".to_vec())
        );
    }

    #[test]
    fn put_component_is_idempotent_and_refuses_other_bytes_under_a_known_sha() {
        let registry = Store::temporary().unwrap().registry();
        let sha256 = sha(b"one");
        registry.put_component(&sha256, b"one").unwrap();
        registry.put_component(&sha256, b"one").unwrap();
        assert!(matches!(
            registry.put_component(&sha256, b"two"),
            Err(StoreError::Conflict { .. })
        ));
        assert_eq!(registry.component(&sha256).unwrap(), Some(b"one".to_vec()));
    }

    #[test]
    fn a_version_without_bytes_is_recorded_and_numbered_like_any_other() {
        let registry = Store::temporary().unwrap().registry();
        let sha256 = sha(b"later");
        let new = NewVersion {
            component: None,
            size: 5,
            ..upload("billing", b"", &sha256, "m", 1)
        };
        let (record, created) = registry.add_version(&new).unwrap();
        assert_eq!((record.version, record.size, created), (1, 5, true));
        assert_eq!(registry.component(&sha256).unwrap(), None);
        assert!(!registry.add_version(&new).unwrap().1);
    }

    #[test]
    fn reset_for_log_empties_the_registry_but_keeps_components_and_marks_it() {
        let registry = Store::temporary().unwrap().registry();
        assert_eq!(registry.applied_offset().unwrap(), None);
        add(&registry, "billing", b"v1", "m1", 1);
        registry.activate("billing", 1, "a", "deploy", 2).unwrap();
        registry.reset_for_log().unwrap();
        assert_eq!(registry.applied_offset().unwrap(), Some(-1));
        assert!(registry.actors().unwrap().is_empty());
        assert!(registry.versions("billing").unwrap().is_empty());
        assert!(registry.history("billing").unwrap().is_empty());
        assert!(registry.component(&sha(b"v1")).unwrap().is_some());
        assert!(!registry.is_logged(&sha(b"v1")).unwrap());
        registry.mark_logged(&sha(b"v1")).unwrap();
        assert!(registry.is_logged(&sha(b"v1")).unwrap());
        registry.set_applied_offset(41).unwrap();
        assert_eq!(registry.applied_offset().unwrap(), Some(41));
    }
}
