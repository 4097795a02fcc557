//! Partition fences: at most one partition worker of an actor's partition
//! runs at a time in this process, for one host's store.
//!
//! A worker takes its partition's fence before it restores anything and
//! holds it until it has ended *and* every task it started that can still
//! write (its durability tick, its restore thread) has ended too. A worker
//! the consumer gave up on (it did not answer its stop in time) is aborted;
//! the partition's next worker waits here until the old one's last task is
//! gone, so a late changelog record or store write of the old worker can
//! never land after the new worker's (see docs/delivery.md, "Shutdown and
//! rebalance").
//!
//! Fences outlive consumers: they are keyed by the store's id, the actor,
//! the topic and the partition, so a consumer restarted by a pause, a
//! resume or a manifest change waits for the workers of the one before.
//! This module does not fence across hosts: that needs Kafka transactions
//! (the group's generation), which wactor does not use.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What identifies a fence: store id, actor, topic, partition.
type Key = (u64, String, String, i32);

static FENCES: LazyLock<Mutex<HashMap<Key, Arc<Semaphore>>>> = LazyLock::new(Mutex::default);

/// A held partition fence. Clones share it: the fence opens when the last
/// clone is dropped.
#[derive(Clone)]
pub(crate) struct Fence {
    _permit: Arc<OwnedSemaphorePermit>,
}

/// The fence of `actor`'s `topic[partition]` on the store `store_id`.
pub(crate) fn of(store_id: u64, actor: &str, topic: &str, partition: i32) -> Arc<Semaphore> {
    let mut fences = lock(&FENCES);
    // Fences nobody holds or waits for are let go (only this map refers
    // to them), so the map is bounded by the partitions in use.
    fences.retain(|_, fence| Arc::strong_count(fence) > 1);
    fences
        .entry((store_id, actor.to_string(), topic.to_string(), partition))
        .or_insert_with(|| Arc::new(Semaphore::new(1)))
        .clone()
}

/// Waits for `fence` and takes it. `None` only if the fence was closed,
/// which this module never does.
pub(crate) async fn take(fence: Arc<Semaphore>) -> Option<Fence> {
    let permit = fence.acquire_owned().await.ok()?;
    Some(Fence {
        _permit: Arc::new(permit),
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fence_opens_when_its_last_clone_is_dropped() {
        let first = take(of(u64::MAX, "a", "t", 0)).await.unwrap();
        let clone = first.clone();
        let next = tokio::spawn(take(of(u64::MAX, "a", "t", 0)));
        drop(first);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!next.is_finished(), "a clone still holds the fence");
        drop(clone);
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), next)
            .await
            .unwrap()
            .unwrap();
        assert!(second.is_some());
        // Another partition, actor or store has a fence of its own.
        assert!(take(of(u64::MAX, "a", "t", 1)).await.is_some());
        assert!(take(of(u64::MAX, "b", "t", 0)).await.is_some());
        assert!(take(of(u64::MAX - 1, "a", "t", 0)).await.is_some());
    }
}
