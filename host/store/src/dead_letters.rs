//! Dead letters: the cluster-wide set of events that actors gave up on,
//! with everything an operator needs to see why and to re-drive them.
//!
//! Two trees, kept in step inside one sled transaction on every write:
//! - `dead_letters`: id -> [`DeadLetter`] (JSON);
//! - `dead_letters_by_time`: (dead_at_ms as sign-flipped i64 BE, id) -> (),
//!   the index that lists newest first and narrows time filters.
//!
//! Ids are deterministic ([`DeadLetter::make_id`]), so an event that is
//! delivered twice and dies twice is one entry.
//!
//! # Not here
//!
//! Deciding that an event is dead (the retry policy), mirroring dead letters
//! to Kafka and re-driving them belong to delivery and kafka; moving a held
//! event here atomically is [`crate::HeldEvents::move_to_dead_letters`].

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionResult, TransactionalTree};
use sled::Transactional;

use crate::codec;
use crate::{abort, from_tx, AttemptRecord, Result, StoreError, StoredEvent};

/// Everything kept about one dead event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// [`DeadLetter::make_id`]: `<actor>:<topic>:<partition>:<offset>`.
    pub id: String,
    /// The actor that gave up on it.
    pub actor: String,
    /// The actor version of the last attempt.
    pub version: u64,
    /// The actor's consumer group.
    pub group: String,
    /// The event itself.
    pub event: StoredEvent,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptRecord>,
    /// Why it died: the actor's dead reason, or the last error.
    pub reason: String,
    /// `actor_dead`, `attempts_exhausted` or `max_age_exceeded` (from the
    /// retry policy).
    pub kind: String,
    /// When the first attempt started (ms since the Unix epoch).
    pub first_attempt_at_ms: i64,
    /// When it was dead-lettered (ms since the Unix epoch); the list order.
    pub dead_at_ms: i64,
    /// How many times it was re-driven before.
    pub redrives: u32,
}

impl DeadLetter {
    /// The deterministic id of an actor's dead letter for one record:
    /// `<actor>:<topic>:<partition>:<offset>`.
    pub fn make_id(actor: &str, topic: &str, partition: i32, offset: i64) -> String {
        format!("{actor}:{topic}:{partition}:{offset}")
    }
}

/// Which dead letters to list or count; `None` fields do not filter, the
/// others combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Only this actor's.
    pub actor: Option<String>,
    /// Only events from this topic.
    pub topic: Option<String>,
    /// Only events whose record key is exactly this.
    pub key: Option<Vec<u8>>,
    /// Only those whose reason or any attempt's error contains this,
    /// ignoring case.
    pub error_contains: Option<String>,
    /// Only those with `dead_at_ms >= since_ms` (inclusive).
    pub since_ms: Option<i64>,
    /// Only those with `dead_at_ms < until_ms` (exclusive).
    pub until_ms: Option<i64>,
}

impl DeadLetterFilter {
    /// Whether `dead` passes the filter.
    pub fn matches(&self, dead: &DeadLetter) -> bool {
        self.actor.as_ref().is_none_or(|a| *a == dead.actor)
            && self.topic.as_ref().is_none_or(|t| *t == dead.event.topic)
            && self
                .key
                .as_ref()
                .is_none_or(|k| dead.event.key.as_ref() == Some(k))
            && self.since_ms.is_none_or(|s| dead.dead_at_ms >= s)
            && self.until_ms.is_none_or(|u| dead.dead_at_ms < u)
            && self.error_contains.as_ref().is_none_or(|needle| {
                let needle = needle.to_lowercase();
                dead.reason.to_lowercase().contains(&needle)
                    || dead
                        .attempts
                        .iter()
                        .any(|a| a.error.to_lowercase().contains(&needle))
            })
    }

    /// True when only the time bounds filter (the index alone answers).
    fn only_time(&self) -> bool {
        self.actor.is_none()
            && self.topic.is_none()
            && self.key.is_none()
            && self.error_contains.is_none()
    }
}

/// One page of [`DeadLetters::list`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterPage {
    /// Newest first.
    pub items: Vec<DeadLetter>,
    /// Pass as `after` to get the next page; `None` when there is none.
    /// Opaque (it encodes the last item's dead_at_ms and id).
    pub next: Option<String>,
}

/// The actor of the record under `key`, for a key that is not of the
/// `<actor>:...` form.
fn decode_record_actor(records: &sled::Tree, key: &[u8]) -> Result<String> {
    match records.get(key)? {
        Some(value) => Ok(decode(&value)?.actor),
        None => Ok(String::new()),
    }
}

/// The dead-letter set. Cheap to clone.
#[derive(Clone)]
pub struct DeadLetters {
    /// `dead_letters`: id -> record.
    records: sled::Tree,
    /// `dead_letters_by_time`: (dead_at_ms, id) -> ().
    by_time: sled::Tree,
}

const WHAT: &str = "dead letter";

/// Serializes a dead letter, refusing one without an id.
pub(crate) fn encode(dead: &DeadLetter) -> Result<Vec<u8>> {
    if dead.id.is_empty() {
        return Err(StoreError::Invalid {
            what: "dead letter: empty id".to_string(),
        });
    }
    codec::to_json(WHAT, dead)
}

fn decode(bytes: &[u8]) -> Result<DeadLetter> {
    codec::from_json(WHAT, bytes)
}

/// Inserts or replaces `dead` (already `encode`d as `value`) inside a
/// transaction over the two trees, moving its index entry if its
/// dead_at_ms changed.
pub(crate) fn put_in(
    records: &TransactionalTree,
    by_time: &TransactionalTree,
    dead: &DeadLetter,
    value: &[u8],
) -> ConflictableTransactionResult<(), StoreError> {
    if let Some(old) = records.insert(dead.id.as_bytes(), value)? {
        let old = decode(&old).map_err(abort)?;
        if old.dead_at_ms != dead.dead_at_ms {
            by_time.remove(codec::dead_letter_time_key(old.dead_at_ms, &old.id))?;
        }
    }
    by_time.insert(
        codec::dead_letter_time_key(dead.dead_at_ms, &dead.id),
        sled::IVec::default(),
    )?;
    Ok(())
}

/// The opaque cursor of an index key.
fn cursor_of(index_key: &[u8]) -> String {
    codec::hex(index_key)
}

/// The index key a cursor stands for.
fn index_key_of(cursor: &str) -> Result<Vec<u8>> {
    codec::unhex(cursor)
        .filter(|key| key.len() > 8)
        .ok_or_else(|| StoreError::Invalid {
            what: format!("dead-letter cursor {cursor:?}"),
        })
}

type Range = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The index range a filter's time bounds (and a cursor) allow, or `None`
/// when it is empty.
fn index_range(filter: &DeadLetterFilter, before: Option<Vec<u8>>) -> Option<Range> {
    let low = match filter.since_ms {
        Some(since) => Bound::Included(codec::order_i64(since).to_vec()),
        None => Bound::Unbounded,
    };
    let until = filter
        .until_ms
        .map(|until| codec::order_i64(until).to_vec());
    let high = match (until, before) {
        (Some(a), Some(b)) => Bound::Excluded(a.min(b)),
        (Some(key), None) | (None, Some(key)) => Bound::Excluded(key),
        (None, None) => Bound::Unbounded,
    };
    if let (Bound::Included(low), Bound::Excluded(high)) = (&low, &high) {
        if low >= high {
            return None;
        }
    }
    Some((low, high))
}

impl DeadLetters {
    pub(crate) fn open(db: &sled::Db) -> Result<Self> {
        Ok(DeadLetters {
            records: db.open_tree("dead_letters")?,
            by_time: db.open_tree("dead_letters_by_time")?,
        })
    }

    /// The two trees, for transactions that span other modules' trees.
    pub(crate) fn trees(&self) -> (&sled::Tree, &sled::Tree) {
        (&self.records, &self.by_time)
    }

    /// Inserts `dead`, or replaces the entry with the same id (its time
    /// index entry moves with it).
    pub fn put(&self, dead: &DeadLetter) -> Result<()> {
        let value = encode(dead)?;
        (&self.records, &self.by_time)
            .transaction(|(records, by_time)| put_in(records, by_time, dead, &value))
            .map_err(from_tx)
    }

    /// The dead letter with this id.
    pub fn get(&self, id: &str) -> Result<Option<DeadLetter>> {
        self.records
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Removes (discards) the dead letter with this id, returning it.
    pub fn remove(&self, id: &str) -> Result<Option<DeadLetter>> {
        (&self.records, &self.by_time)
            .transaction(|(records, by_time)| {
                let Some(old) = records.remove(id.as_bytes())? else {
                    return Ok(None);
                };
                let old = decode(&old).map_err(abort)?;
                by_time.remove(codec::dead_letter_time_key(old.dead_at_ms, &old.id))?;
                Ok(Some(old))
            })
            .map_err(from_tx)
    }

    /// One page of the dead letters that pass `filter`, newest first (by
    /// dead_at_ms, ties by id, both descending). `after` is the previous
    /// page's `next`: pages continue strictly after it, without gaps or
    /// repeats, even if entries were added or removed in between (entries
    /// added newer than the cursor show up on a fresh first page). A
    /// `limit` of 0 is taken as 1, so every page makes progress.
    pub fn list(
        &self,
        filter: &DeadLetterFilter,
        limit: usize,
        after: Option<&str>,
    ) -> Result<DeadLetterPage> {
        let limit = limit.max(1);
        let before = after.map(index_key_of).transpose()?;
        let mut items = Vec::new();
        let mut last_key: Option<Vec<u8>> = None;
        let mut next = None;
        self.scan(filter, before, |key, dead| {
            if items.len() == limit {
                // One more match exists: there is a next page.
                next = last_key.as_deref().map(cursor_of);
                return false;
            }
            items.push(dead);
            last_key = Some(key.to_vec());
            true
        })?;
        Ok(DeadLetterPage { items, next })
    }

    /// How many dead letters pass `filter`. With only time bounds, the
    /// index answers without reading the records.
    pub fn count(&self, filter: &DeadLetterFilter) -> Result<usize> {
        if filter.only_time() {
            let Some(range) = index_range(filter, None) else {
                return Ok(0);
            };
            let mut n = 0;
            for key in self.by_time.range(range).keys() {
                key?;
                n += 1;
            }
            return Ok(n);
        }
        let mut n = 0;
        self.scan(filter, None, |_, _| {
            n += 1;
            true
        })?;
        Ok(n)
    }

    /// Number of dead letters per actor, by actor name. Reads keys only:
    /// an id starts with `<actor>:` and actor names have no `:`.
    pub fn count_by_actor(&self) -> Result<BTreeMap<String, usize>> {
        let mut counts = BTreeMap::new();
        for key in self.records.iter().keys() {
            let key = key?;
            let actor = match key.iter().position(|&b| b == b':') {
                Some(end) => String::from_utf8_lossy(&key[..end]).into_owned(),
                None => decode_record_actor(&self.records, &key)?,
            };
            *counts.entry(actor).or_insert(0) += 1;
        }
        Ok(counts)
    }

    /// Number of dead letters of one actor (a prefix scan of keys).
    pub fn count_for_actor(&self, actor: &str) -> Result<usize> {
        let prefix = format!("{actor}:");
        let mut count = 0;
        for key in self.records.scan_prefix(prefix.as_bytes()).keys() {
            key?;
            count += 1;
        }
        Ok(count)
    }

    /// Number of dead letters.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Visits the dead letters that pass `filter`, newest first, strictly
    /// before the index key `before`, until `visit` returns false.
    fn scan(
        &self,
        filter: &DeadLetterFilter,
        before: Option<Vec<u8>>,
        mut visit: impl FnMut(&[u8], DeadLetter) -> bool,
    ) -> Result<()> {
        let Some(range) = index_range(filter, before) else {
            return Ok(());
        };
        for key in self.by_time.range(range).keys().rev() {
            let key = key?;
            let Some(id) = key.get(8..) else {
                return Err(StoreError::Corrupt {
                    what: format!("dead-letter index key {}", codec::hex(&key)),
                });
            };
            let Some(value) = self.records.get(id)? else {
                // Only a write that bypassed this module leaves a dangling
                // index entry; the record is gone, so there is nothing to show.
                tracing::warn!(
                    id = %String::from_utf8_lossy(id),
                    "dead-letter index entry without a record; skipped"
                );
                continue;
            };
            let dead = decode(&value)?;
            if filter.matches(&dead) && !visit(&key, dead) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{AttemptOutcome, Store};

    fn dead(actor: &str, topic: &str, offset: i64, dead_at: i64) -> DeadLetter {
        DeadLetter {
            id: DeadLetter::make_id(actor, topic, 0, offset),
            actor: actor.to_string(),
            version: 3,
            group: format!("{actor}-group"),
            event: StoredEvent {
                topic: topic.to_string(),
                partition: 0,
                offset,
                timestamp_ms: None,
                key: Some(format!("key-{}", offset % 2).into_bytes()),
                payload: b"{}".to_vec(),
                headers: Vec::new(),
            },
            attempts: vec![AttemptRecord {
                attempt: 1,
                started_at_ms: dead_at - 10,
                duration_ms: 2.0,
                version: 3,
                outcome: AttemptOutcome::Retry,
                error: format!("upstream said {offset}"),
            }],
            reason: "gave up".to_string(),
            kind: "attempts_exhausted".to_string(),
            first_attempt_at_ms: dead_at - 10,
            dead_at_ms: dead_at,
            redrives: 0,
        }
    }

    fn ids(items: &[DeadLetter]) -> Vec<&str> {
        items.iter().map(|d| d.id.as_str()).collect()
    }

    /// Every page of a listing, following the cursors.
    fn all_pages(
        set: &DeadLetters,
        filter: &DeadLetterFilter,
        limit: usize,
    ) -> Vec<Vec<DeadLetter>> {
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = set.list(filter, limit, after.as_deref()).unwrap();
            pages.push(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return pages,
            }
        }
    }

    #[test]
    fn ids_are_deterministic() {
        assert_eq!(
            DeadLetter::make_id("billing", "orders", 3, 42),
            "billing:orders:3:42"
        );
    }

    #[test]
    fn list_is_newest_first_with_ties_broken_by_id() {
        let set = Store::temporary().unwrap().dead_letters();
        set.put(&dead("a", "t", 1, 100)).unwrap();
        set.put(&dead("a", "t", 2, 300)).unwrap();
        set.put(&dead("b", "t", 3, 200)).unwrap();
        set.put(&dead("c", "t", 4, 200)).unwrap();
        let page = set.list(&DeadLetterFilter::default(), 10, None).unwrap();
        assert_eq!(
            ids(&page.items),
            vec!["a:t:0:2", "c:t:0:4", "b:t:0:3", "a:t:0:1"]
        );
        assert_eq!(page.next, None);
    }

    #[test]
    fn paging_continues_without_gaps_or_repeats() {
        let set = Store::temporary().unwrap().dead_letters();
        // Several entries share a dead_at, so pages split inside a tie.
        for offset in 0..23 {
            set.put(&dead("a", "t", offset, 1_000 + offset / 3))
                .unwrap();
        }
        let full = set
            .list(&DeadLetterFilter::default(), 100, None)
            .unwrap()
            .items;
        assert_eq!(full.len(), 23);

        for limit in [1, 2, 5, 7, 23] {
            let pages = all_pages(&set, &DeadLetterFilter::default(), limit);
            assert!(pages.iter().all(|p| !p.is_empty() && p.len() <= limit));
            let joined: Vec<DeadLetter> = pages.into_iter().flatten().collect();
            assert_eq!(joined, full, "limit {limit}");
        }
        // An exact fit has no empty last page.
        let page = set.list(&DeadLetterFilter::default(), 23, None).unwrap();
        assert_eq!(page.next, None);
    }

    #[test]
    fn a_cursor_stays_valid_when_entries_change_between_pages() {
        let set = Store::temporary().unwrap().dead_letters();
        for offset in 0..6 {
            set.put(&dead("a", "t", offset, 1_000 + offset)).unwrap();
        }
        let first = set.list(&DeadLetterFilter::default(), 2, None).unwrap();
        assert_eq!(ids(&first.items), vec!["a:t:0:5", "a:t:0:4"]);
        // The last item of the page is discarded, and a newer entry arrives.
        set.remove("a:t:0:4").unwrap();
        set.put(&dead("a", "t", 9, 5_000)).unwrap();
        let second = set
            .list(&DeadLetterFilter::default(), 2, first.next.as_deref())
            .unwrap();
        assert_eq!(ids(&second.items), vec!["a:t:0:3", "a:t:0:2"]);
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let set = Store::temporary().unwrap().dead_letters();
        for cursor in ["", "zz", "0011", "abc"] {
            assert!(matches!(
                set.list(&DeadLetterFilter::default(), 5, Some(cursor)),
                Err(StoreError::Invalid { .. })
            ));
        }
    }

    #[test]
    fn filters_combine() {
        let set = Store::temporary().unwrap().dead_letters();
        set.put(&dead("billing", "orders", 1, 100)).unwrap();
        set.put(&dead("billing", "orders", 2, 200)).unwrap();
        set.put(&dead("billing", "refunds", 3, 300)).unwrap();
        set.put(&dead("search", "orders", 4, 400)).unwrap();
        let mut shouting = dead("search", "orders", 5, 500);
        shouting.reason = "Connection REFUSED by db".to_string();
        set.put(&shouting).unwrap();

        let list = |filter: DeadLetterFilter| {
            let items = set.list(&filter, 100, None).unwrap().items;
            assert_eq!(set.count(&filter).unwrap(), items.len(), "{filter:?}");
            items.into_iter().map(|d| d.id).collect::<Vec<_>>()
        };

        let billing_orders = DeadLetterFilter {
            actor: Some("billing".into()),
            topic: Some("orders".into()),
            ..DeadLetterFilter::default()
        };
        assert_eq!(
            list(billing_orders.clone()),
            vec!["billing:orders:0:2", "billing:orders:0:1"]
        );

        let billing_orders_key_1 = DeadLetterFilter {
            key: Some(b"key-1".to_vec()),
            ..billing_orders
        };
        assert_eq!(list(billing_orders_key_1), vec!["billing:orders:0:1"]);

        let refused = DeadLetterFilter {
            error_contains: Some("connection refused".into()),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(refused), vec!["search:orders:0:5"]);

        let in_attempt_error = DeadLetterFilter {
            error_contains: Some("UPSTREAM SAID 3".into()),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(in_attempt_error), vec!["billing:refunds:0:3"]);

        // since is inclusive, until exclusive.
        let window = DeadLetterFilter {
            since_ms: Some(200),
            until_ms: Some(400),
            ..DeadLetterFilter::default()
        };
        assert_eq!(
            list(window.clone()),
            vec!["billing:refunds:0:3", "billing:orders:0:2"]
        );

        let window_orders = DeadLetterFilter {
            topic: Some("orders".into()),
            ..window
        };
        assert_eq!(list(window_orders), vec!["billing:orders:0:2"]);

        let empty_window = DeadLetterFilter {
            since_ms: Some(400),
            until_ms: Some(400),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(empty_window), Vec::<String>::new());

        let nobody = DeadLetterFilter {
            actor: Some("nobody".into()),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(nobody), Vec::<String>::new());
    }

    #[test]
    fn filtered_paging_follows_the_filter_across_pages() {
        let set = Store::temporary().unwrap().dead_letters();
        for offset in 0..20 {
            let actor = if offset % 3 == 0 { "a" } else { "b" };
            set.put(&dead(actor, "t", offset, 1_000 + offset)).unwrap();
        }
        let only_a = DeadLetterFilter {
            actor: Some("a".into()),
            ..DeadLetterFilter::default()
        };
        let pages = all_pages(&set, &only_a, 3);
        let joined: Vec<String> = pages.into_iter().flatten().map(|d| d.id).collect();
        let expected: Vec<String> = (0..20)
            .rev()
            .filter(|o| o % 3 == 0)
            .map(|o| format!("a:t:0:{o}"))
            .collect();
        assert_eq!(joined, expected);
    }

    #[test]
    fn replacing_an_entry_moves_its_time_index_entry() {
        let set = Store::temporary().unwrap().dead_letters();
        set.put(&dead("a", "t", 1, 100)).unwrap();
        set.put(&dead("a", "t", 2, 200)).unwrap();
        // The same event dies again later (a re-drive that failed).
        let mut again = dead("a", "t", 1, 300);
        again.redrives = 1;
        set.put(&again).unwrap();

        assert_eq!(set.len(), 2);
        assert_eq!(set.by_time.len(), 2);
        let page = set.list(&DeadLetterFilter::default(), 10, None).unwrap();
        assert_eq!(ids(&page.items), vec!["a:t:0:1", "a:t:0:2"]);
        assert_eq!(page.items[0].redrives, 1);
        let before_250 = DeadLetterFilter {
            until_ms: Some(250),
            ..DeadLetterFilter::default()
        };
        assert_eq!(set.count(&before_250).unwrap(), 1);
    }

    #[test]
    fn removing_an_entry_removes_its_time_index_entry() {
        let set = Store::temporary().unwrap().dead_letters();
        set.put(&dead("a", "t", 1, 100)).unwrap();
        set.put(&dead("a", "t", 2, 200)).unwrap();
        assert_eq!(
            set.remove("a:t:0:1").unwrap().map(|d| d.dead_at_ms),
            Some(100)
        );
        assert_eq!(set.remove("a:t:0:1").unwrap(), None);
        assert_eq!(set.get("a:t:0:1").unwrap(), None);
        assert_eq!(set.len(), 1);
        assert_eq!(set.by_time.len(), 1);
        assert_eq!(set.count(&DeadLetterFilter::default()).unwrap(), 1);
    }

    #[test]
    fn counts_by_actor() {
        let set = Store::temporary().unwrap().dead_letters();
        set.put(&dead("b", "t", 1, 100)).unwrap();
        set.put(&dead("a", "t", 2, 100)).unwrap();
        set.put(&dead("b", "t", 3, 100)).unwrap();
        let counts = set.count_by_actor().unwrap();
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            vec![("a".to_string(), 1), ("b".to_string(), 2)]
        );
    }

    #[test]
    fn a_dead_letter_without_an_id_is_refused() {
        let set = Store::temporary().unwrap().dead_letters();
        let mut nameless = dead("a", "t", 1, 100);
        nameless.id.clear();
        assert!(matches!(
            set.put(&nameless),
            Err(StoreError::Invalid { .. })
        ));
        assert!(set.is_empty());
    }

    #[test]
    fn dead_letters_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dead("a", "t", 1, 100);
        {
            let store = Store::open(dir.path()).unwrap();
            store.dead_letters().put(&entry).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let set = store.dead_letters();
        assert_eq!(set.get(&entry.id).unwrap(), Some(entry.clone()));
        assert_eq!(
            set.list(&DeadLetterFilter::default(), 5, None)
                .unwrap()
                .items,
            vec![entry]
        );
    }
}
