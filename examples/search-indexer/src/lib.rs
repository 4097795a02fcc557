//! `search-indexer`: keeps an inverted search index of classified-ad posts
//! up to date from `post.created`, `post.updated` and `post.deleted` events.
//!
//! This is the Haraj case: a post is created, edited and deleted in quick
//! succession, and the index must end up describing the post's *last*
//! version, even though Kafka delivers at least once (duplicates) and a
//! replay or a re-drive can bring an old event back late. The actor gets
//! there with a version check and tombstones, all in its own state:
//!
//! - `post:<id>` holds the indexed document ([`StoredPost`]): its version,
//!   whether it is deleted, and the terms it was indexed under, so that an
//!   update or a delete can remove exactly the old terms;
//! - `term:<word>` holds the sorted list of post ids that contain the word
//!   (absent when no post does);
//! - an event whose version is lower than or equal to the stored one is a
//!   stale duplicate: it changes nothing and ends `Done` (logged);
//! - a delete keeps a tombstone (`deleted: true` with the deleted version),
//!   so a late `post.created` of an older version cannot resurrect the post.
//!
//! Every change is published as a `search.index.changed` record (config
//! `changed_topic`) with the terms added and removed. All writes of one
//! event are applied together or not at all (the host's transactional
//! effects), so the index never holds half an update.
//!
//! Config:
//! - `changed_topic` (default `search.index.changed`).
//!
//! The index logic ([`tokenize`], [`apply`]) is pure and works on any
//! [`Kv`]; the actor runs it on its state, the unit tests on a map.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use wactor_sdk::{config, emit, state, Actor, Event, Handled, Outcome};

/// Default topic of the change records.
const DEFAULT_CHANGED_TOPIC: &str = "search.index.changed";
/// Terms shorter than this (in characters) are not indexed.
const MIN_TERM_CHARS: usize = 2;
/// Terms longer than this (in characters) are cut to it.
const MAX_TERM_CHARS: usize = 40;
/// Words too common to be worth a posting list.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of", "on",
    "or", "the", "to", "with",
];

/// A post event, as published by the posts service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PostEvent {
    /// `post.created`, `post.updated` or `post.deleted`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The post's id.
    pub post_id: String,
    /// The post's version: every change increments it.
    pub version: u64,
    /// The title (absent on deletes).
    #[serde(default)]
    pub title: String,
    /// The text (absent on deletes).
    #[serde(default)]
    pub body: String,
    /// Who wrote the post.
    #[serde(default)]
    pub author: Option<String>,
}

/// What is kept under `post:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPost {
    /// The last version applied.
    pub version: u64,
    /// True for a tombstone: the post was deleted at `version`.
    #[serde(default)]
    pub deleted: bool,
    /// The title, for display in search results.
    #[serde(default)]
    pub title: String,
    /// The author, for display in search results.
    #[serde(default)]
    pub author: Option<String>,
    /// The terms the post is indexed under (sorted, unique).
    #[serde(default)]
    pub terms: Vec<String>,
}

/// The record published on every change of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexChanged {
    /// The post.
    pub post_id: String,
    /// The version now indexed.
    pub version: u64,
    /// `indexed` or `deleted`.
    pub action: &'static str,
    /// Terms that now find the post.
    pub added_terms: Vec<String>,
    /// Terms that no longer find it.
    pub removed_terms: Vec<String>,
}

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The index changed.
    Changed(IndexChanged),
    /// The event is not newer than what is indexed; nothing changed.
    Stale {
        /// The version already indexed.
        stored: u64,
    },
    /// An event type this actor does not index; nothing changed.
    Ignored,
}

/// The key-value store the index lives in: the actor's state in
/// production, a map in unit tests. Values are JSON.
pub trait Kv {
    /// Reads a key.
    fn get(&mut self, key: &str) -> Option<Vec<u8>>;
    /// Writes a key; fails when the store refuses the write (the host's
    /// per-call limits).
    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<(), state::Rejected>;
    /// Removes a key; fails like [`Kv::set`].
    fn delete(&mut self, key: &str) -> Result<(), state::Rejected>;
}

/// The actor's state as a [`Kv`].
struct ActorState;

impl Kv for ActorState {
    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        state::get(key)
    }

    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<(), state::Rejected> {
        state::set(key, value)
    }

    fn delete(&mut self, key: &str) -> Result<(), state::Rejected> {
        state::delete(key)
    }
}

/// The words of `text` worth indexing: lower-cased, split on anything that
/// is not a letter or a digit (any script: Arabic titles index as well as
/// English ones), without stop words and one-letter words, cut to
/// [`MAX_TERM_CHARS`], sorted and unique.
pub fn tokenize(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.chars().count() >= MIN_TERM_CHARS)
        .map(|word| {
            word.to_lowercase()
                .chars()
                .take(MAX_TERM_CHARS)
                .collect::<String>()
        })
        .filter(|word| !STOP_WORDS.contains(&word.as_str()))
        .collect()
}

/// Applies one post event to the index in `kv`.
///
/// Fails with [`Outcome::Dead`] on an event that can never be applied (an
/// empty post id) and with [`Outcome::Retry`] when the stored index cannot
/// be read back (a fixed version may) or a write is refused (a post with
/// more terms than the per-call state limits allow: a manifest with higher
/// `[limits]` may take it). Nothing is applied then: the host drops the
/// writes of a call that does not end `done`.
pub fn apply(kv: &mut impl Kv, event: &PostEvent) -> Result<Applied, Outcome> {
    let deleting = match event.kind.as_str() {
        "post.created" | "post.updated" => false,
        "post.deleted" => true,
        _ => return Ok(Applied::Ignored),
    };
    if event.post_id.is_empty() {
        return Err(Outcome::dead("post_id must not be empty"));
    }
    let post_key = format!("post:{}", event.post_id);
    let stored: Option<StoredPost> = read_json(kv, &post_key)?;
    if let Some(stored) = &stored {
        if event.version <= stored.version {
            return Ok(Applied::Stale {
                stored: stored.version,
            });
        }
    }

    let old_terms: BTreeSet<String> = match &stored {
        Some(post) if !post.deleted => post.terms.iter().cloned().collect(),
        _ => BTreeSet::new(),
    };
    let new_terms = if deleting {
        BTreeSet::new()
    } else {
        let mut terms = tokenize(&event.title);
        terms.extend(tokenize(&event.body));
        terms
    };
    let removed: Vec<String> = old_terms.difference(&new_terms).cloned().collect();
    let added: Vec<String> = new_terms.difference(&old_terms).cloned().collect();

    for term in &removed {
        update_postings(kv, term, |ids| {
            ids.remove(&event.post_id);
        })?;
    }
    for term in &added {
        update_postings(kv, term, |ids| {
            ids.insert(event.post_id.clone());
        })?;
    }

    let doc = StoredPost {
        version: event.version,
        deleted: deleting,
        title: if deleting {
            String::new()
        } else {
            event.title.clone()
        },
        author: if deleting { None } else { event.author.clone() },
        terms: new_terms.into_iter().collect(),
    };
    write_json(kv, &post_key, &doc)?;
    Ok(Applied::Changed(IndexChanged {
        post_id: event.post_id.clone(),
        version: event.version,
        action: if deleting { "deleted" } else { "indexed" },
        added_terms: added,
        removed_terms: removed,
    }))
}

/// Reads, changes and writes back the posting list of `term`; an empty
/// list is removed.
fn update_postings(
    kv: &mut impl Kv,
    term: &str,
    change: impl FnOnce(&mut BTreeSet<String>),
) -> Result<(), Outcome> {
    let key = format!("term:{term}");
    let mut ids: BTreeSet<String> = read_json::<Vec<String>>(kv, &key)?
        .unwrap_or_default()
        .into_iter()
        .collect();
    change(&mut ids);
    if ids.is_empty() {
        Ok(kv.delete(&key)?)
    } else {
        write_json(kv, &key, &ids.into_iter().collect::<Vec<_>>())
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(
    kv: &mut impl Kv,
    key: &str,
) -> Result<Option<T>, Outcome> {
    match kv.get(key) {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| Outcome::retry(format!("state {key} does not decode: {err}"))),
    }
}

fn write_json<T: Serialize>(kv: &mut impl Kv, key: &str, value: &T) -> Result<(), Outcome> {
    let bytes = serde_json::to_vec(value)
        .map_err(|err| Outcome::dead(format!("state {key} does not encode: {err}")))?;
    Ok(kv.set(key, bytes)?)
}

/// The actor.
struct SearchIndexer;

impl Actor for SearchIndexer {
    fn handle(event: Event) -> Handled {
        // Not JSON, or without type/post_id/version: nothing could ever
        // make sense of it, so `?` makes it dead.
        let post: PostEvent = event.json()?;
        match apply(&mut ActorState, &post)? {
            Applied::Changed(change) => {
                let topic = config::get_or("changed_topic", DEFAULT_CHANGED_TOPIC);
                emit::send(emit::Record::json(&topic, &change)?.key(post.post_id.as_str()))?;
                wactor_sdk::debug!(
                    "{} post {} v{}: +{} -{} terms",
                    change.action,
                    change.post_id,
                    change.version,
                    change.added_terms.len(),
                    change.removed_terms.len()
                );
            }
            Applied::Stale { stored } => {
                wactor_sdk::info!(
                    "ignoring stale {} of post {} v{} (v{stored} already applied)",
                    post.kind,
                    post.post_id,
                    post.version
                );
            }
            Applied::Ignored => wactor_sdk::debug!("ignoring a {} event", post.kind),
        }
        Ok(Outcome::Done)
    }
}

wactor_sdk::export_actor!(SearchIndexer);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Default)]
    struct MapKv(BTreeMap<String, Vec<u8>>);

    impl Kv for MapKv {
        fn get(&mut self, key: &str) -> Option<Vec<u8>> {
            self.0.get(key).cloned()
        }
        fn set(&mut self, key: &str, value: Vec<u8>) -> Result<(), state::Rejected> {
            self.0.insert(key.to_string(), value);
            Ok(())
        }
        fn delete(&mut self, key: &str) -> Result<(), state::Rejected> {
            self.0.remove(key);
            Ok(())
        }
    }

    /// A map that refuses writes past `writes_left`, as the host does past
    /// `max_state_writes`.
    struct LimitedKv {
        map: MapKv,
        writes_left: usize,
    }

    impl LimitedKv {
        fn write(&mut self) -> Result<(), state::Rejected> {
            match self.writes_left.checked_sub(1) {
                Some(left) => {
                    self.writes_left = left;
                    Ok(())
                }
                None => Err(state::Rejected(
                    "state: more than 2 keys written in one call (limits.max_state_writes)".into(),
                )),
            }
        }
    }

    impl Kv for LimitedKv {
        fn get(&mut self, key: &str) -> Option<Vec<u8>> {
            self.map.get(key)
        }
        fn set(&mut self, key: &str, value: Vec<u8>) -> Result<(), state::Rejected> {
            self.write()?;
            self.map.set(key, value)
        }
        fn delete(&mut self, key: &str) -> Result<(), state::Rejected> {
            self.write()?;
            self.map.delete(key)
        }
    }

    impl MapKv {
        fn postings(&self, term: &str) -> Vec<String> {
            self.0
                .get(&format!("term:{term}"))
                .map(|bytes| serde_json::from_slice(bytes).unwrap())
                .unwrap_or_default()
        }
        fn post(&self, id: &str) -> StoredPost {
            serde_json::from_slice(&self.0[&format!("post:{id}")]).unwrap()
        }
    }

    fn event(kind: &str, id: &str, version: u64, title: &str, body: &str) -> PostEvent {
        PostEvent {
            kind: kind.to_string(),
            post_id: id.to_string(),
            version,
            title: title.to_string(),
            body: body.to_string(),
            author: Some("U-1".to_string()),
        }
    }

    #[test]
    fn tokenizer_lowercases_splits_and_drops_noise() {
        let terms: Vec<String> = tokenize("Toyota CAMRY 2019, for sale! a x-y")
            .into_iter()
            .collect();
        assert_eq!(terms, vec!["2019", "camry", "sale", "toyota"]);
    }

    #[test]
    fn tokenizer_keeps_arabic_words() {
        let terms = tokenize("سيارة تويوتا للبيع");
        assert!(terms.contains("تويوتا"), "{terms:?}");
        assert_eq!(terms.len(), 3);
    }

    #[test]
    fn created_post_is_found_by_its_words() {
        let mut kv = MapKv::default();
        let applied = apply(
            &mut kv,
            &event("post.created", "P-1", 1, "Camry for sale", "white"),
        )
        .unwrap();
        match applied {
            Applied::Changed(change) => {
                assert_eq!(change.action, "indexed");
                assert_eq!(change.added_terms, vec!["camry", "sale", "white"]);
                assert!(change.removed_terms.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(kv.postings("camry"), vec!["P-1"]);
        assert_eq!(kv.post("P-1").version, 1);
    }

    #[test]
    fn update_removes_the_old_terms_and_adds_the_new() {
        let mut kv = MapKv::default();
        apply(&mut kv, &event("post.created", "P-1", 1, "Camry white", "")).unwrap();
        apply(&mut kv, &event("post.created", "P-2", 1, "Camry black", "")).unwrap();
        let applied = apply(&mut kv, &event("post.updated", "P-1", 2, "Camry red", "")).unwrap();
        let Applied::Changed(change) = applied else {
            panic!("{applied:?}")
        };
        assert_eq!(change.added_terms, vec!["red"]);
        assert_eq!(change.removed_terms, vec!["white"]);
        assert!(kv.postings("white").is_empty());
        assert!(
            !kv.0.contains_key("term:white"),
            "empty posting lists are removed"
        );
        assert_eq!(kv.postings("camry"), vec!["P-1", "P-2"]);
        assert_eq!(kv.postings("red"), vec!["P-1"]);
    }

    #[test]
    fn stale_or_duplicate_versions_change_nothing() {
        let mut kv = MapKv::default();
        apply(&mut kv, &event("post.created", "P-1", 1, "Camry", "")).unwrap();
        apply(&mut kv, &event("post.updated", "P-1", 3, "Corolla", "")).unwrap();
        let before = kv.0.clone();
        for stale in [
            event("post.updated", "P-1", 3, "Duplicate", ""),
            event("post.updated", "P-1", 2, "Older", ""),
            event("post.deleted", "P-1", 2, "", ""),
        ] {
            assert_eq!(
                apply(&mut kv, &stale).unwrap(),
                Applied::Stale { stored: 3 }
            );
        }
        assert_eq!(kv.0, before);
    }

    #[test]
    fn delete_keeps_a_tombstone_that_a_late_create_cannot_resurrect() {
        let mut kv = MapKv::default();
        apply(&mut kv, &event("post.created", "P-1", 1, "Camry", "")).unwrap();
        let Applied::Changed(change) =
            apply(&mut kv, &event("post.deleted", "P-1", 2, "", "")).unwrap()
        else {
            panic!()
        };
        assert_eq!(change.action, "deleted");
        assert_eq!(change.removed_terms, vec!["camry"]);
        assert!(kv.postings("camry").is_empty());
        let tombstone = kv.post("P-1");
        assert!(tombstone.deleted);
        assert_eq!(tombstone.version, 2);

        let late = apply(&mut kv, &event("post.created", "P-1", 1, "Camry", "")).unwrap();
        assert_eq!(late, Applied::Stale { stored: 2 });
        assert!(kv.postings("camry").is_empty());

        // A newer version after a delete (the post was restored) indexes again.
        apply(&mut kv, &event("post.updated", "P-1", 3, "Camry back", "")).unwrap();
        assert_eq!(kv.postings("camry"), vec!["P-1"]);
        assert!(!kv.post("P-1").deleted);
    }

    #[test]
    fn a_refused_write_makes_the_event_retry_with_the_hosts_reason() {
        // Three terms and the post itself are four writes; two are allowed.
        let mut kv = LimitedKv {
            map: MapKv::default(),
            writes_left: 2,
        };
        let result = apply(
            &mut kv,
            &event("post.created", "P-1", 1, "red blue car", ""),
        );
        match result {
            Err(Outcome::Retry {
                reason,
                after: None,
            }) => assert!(reason.contains("limits.max_state_writes"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_types_are_ignored_and_empty_ids_are_dead() {
        let mut kv = MapKv::default();
        assert_eq!(
            apply(&mut kv, &event("post.viewed", "P-1", 1, "", "")).unwrap(),
            Applied::Ignored
        );
        assert!(kv.0.is_empty());
        assert!(matches!(
            apply(&mut kv, &event("post.created", "", 1, "x", "")),
            Err(Outcome::Dead(_))
        ));
    }

    #[test]
    fn malformed_events_do_not_decode() {
        assert!(Event::new("posts", "not json").json::<PostEvent>().is_err());
        assert!(
            Event::new("posts", r#"{"type":"post.created","post_id":"P-1"}"#)
                .json::<PostEvent>()
                .is_err()
        );
        let sample = Event::new(
            "posts",
            r#"{"type":"post.deleted","post_id":"P-1","version":4}"#,
        );
        assert_eq!(sample.json::<PostEvent>().unwrap().version, 4);
    }
}
