//! The dead-letter set shared by a cluster: which groups' dead-letter
//! topics this host reads, the removals it writes, and the letters it
//! publishes again when their first record failed.
//!
//! On when the registry is shared ([`Registry::attach_shared`]) and
//! `kafka.shared_dead_letters` is set: every group of an actor this host
//! knows is followed (`<group>.dead-letters`, read into the store by
//! [`wactor_kafka::dead_letter_log::tail`]); a re-drive or a discard writes
//! the tombstone of the death it removes before the host answers. The
//! record format and why removals cannot erase a later death are in
//! [`wactor_kafka::dead_letter_log`].
//!
//! What it does not do: list or select dead letters, or send re-drives
//! (`dead_letters`).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use wactor_kafka::dead_letter_log;
use wactor_store::DeadLetter;

use crate::error::Result;
use crate::registry::Registry;

/// Letters younger than this are not published again by a sweep: their
/// first record may still be on its way.
const REPUBLISH_AFTER_MS: i64 = 10_000;

/// The groups this host follows: group -> the stop flag of its reader.
#[derive(Default)]
pub(crate) struct Followed(std::sync::Mutex<HashMap<String, Arc<AtomicBool>>>);

impl Followed {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AtomicBool>>> {
        match self.0.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Stops every reader.
    pub(crate) fn stop_all(&self) {
        for stop in self.lock().values() {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl Registry {
    /// Whether dead letters are shared with the cluster.
    pub(crate) fn shares_dead_letters(&self) -> bool {
        self.parts().kafka.shared_dead_letters && self.shared.get().is_some()
    }

    /// Starts reading `group`'s dead-letter topic into the store, in the
    /// background, unless this host does already (or does not share dead
    /// letters). A topic that cannot be opened is logged and tried again
    /// at the actor's next change or restart check.
    pub(crate) fn follow_dead_letters(&self, group: &str) {
        if !self.shares_dead_letters() {
            return;
        }
        let stop = {
            let mut followed = self.followed.lock();
            if followed.contains_key(group) {
                return;
            }
            let stop = Arc::new(AtomicBool::new(false));
            followed.insert(group.to_string(), stop.clone());
            stop
        };
        let settings = self.parts().kafka.clone();
        let set = self.parts().store.dead_letters();
        let group = group.to_string();
        let followed = Arc::downgrade(&self.followed);
        tokio::spawn(async move {
            let topic = dead_letter_log::dead_letter_topic(&group);
            let started = match dead_letter_log::open(&settings, &group).await {
                Ok(partitions) => {
                    dead_letter_log::tail(&settings, &topic, partitions, set, stop).map(|_| ())
                }
                Err(err) => Err(err),
            };
            match started {
                Ok(()) => tracing::info!(%group, %topic, "following the group's dead letters"),
                Err(err) => {
                    tracing::warn!(%group, error = %err, "cannot follow the group's dead letters yet");
                    if let Some(followed) = followed.upgrade() {
                        followed.lock().remove(&group);
                    }
                }
            }
        });
    }

    /// Writes the tombstone that removes `dead` (this death of it) from
    /// every host, and waits for it.
    pub(crate) async fn share_removal(&self, dead: &DeadLetter) -> Result<()> {
        if !self.shares_dead_letters() {
            return Ok(());
        }
        let record = dead_letter_log::tombstone(&dead.group, &dead.id, dead.redrives);
        self.parts().producer.send(&record).await?;
        Ok(())
    }

    /// The producer that writes removals to the cluster, `None` when dead
    /// letters are not shared; give it to [`enqueue_removal`].
    pub(crate) fn removal_producer(&self) -> Option<wactor_kafka::Producer> {
        self.shares_dead_letters()
            .then(|| self.parts().producer.clone())
    }

    /// Publishes the letters of this host that were never read back from
    /// their group's topic, once a record failed (and once after start);
    /// returns how many it sent. The host calls it with the retention
    /// sweep.
    pub async fn republish_dead_letters(&self) -> Result<usize> {
        if !self.shares_dead_letters() || !dead_letter_log::republish_needed() {
            return Ok(0);
        }
        let set = self.parts().store.dead_letters();
        let unseen = tokio::task::spawn_blocking(move || set.unseen())
            .await
            .map_err(|e| crate::RegistryError::Internal(format!("scan task failed: {e}")))??;
        let now = self.parts().clock.now_ms();
        let mut sent = 0;
        for dead in unseen {
            if now - dead.dead_at_ms < REPUBLISH_AFTER_MS {
                continue;
            }
            self.follow_dead_letters(&dead.group);
            match dead_letter_log::record(&self.parts().kafka, &dead) {
                Ok(record) => {
                    if let Err(err) = self.parts().producer.send(&record).await {
                        tracing::warn!(id = %dead.id, error = %err, "cannot publish a dead letter yet");
                        // Try again at the next sweep.
                        dead_letter_log::request_republish();
                        break;
                    }
                    sent += 1;
                }
                Err(err) => {
                    tracing::debug!(id = %dead.id, error = %err, "dead letter kept on this host")
                }
            }
        }
        if sent > 0 {
            tracing::info!(sent, "dead letters published to the cluster again");
        }
        Ok(sent)
    }
}

/// Hands the tombstone that removes `dead` (this death of it) from every
/// host to `producer` (from [`Registry::removal_producer`]). Await the
/// delivery for its acknowledgement.
pub(crate) fn enqueue_removal(
    producer: &wactor_kafka::Producer,
    dead: &DeadLetter,
) -> wactor_kafka::producer::Delivery {
    let record = dead_letter_log::tombstone(&dead.group, &dead.id, dead.redrives);
    producer.enqueue(&record)
}
