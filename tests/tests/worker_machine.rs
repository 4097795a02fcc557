//! The partition worker's state machine, driven through its inbox (an
//! in-memory feed; issue 10, "the worker, so this stays fixable"): no
//! consumer and no librdkafka queue. Records go in as the consumer thread
//! hands them over, time is a [`ManualClock`] (a retry runs only when the
//! test moves the clock), and the effects are read where they land: the
//! store (held events, dead letters), the offset the worker publishes for
//! commit, and the output topic on the in-process mock broker (the actor
//! is the real `fixture-scripted` component).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use support::{eventually, manifest, read_until, Host, Kafka};
use wactor_kafka::event::{Intake, RawRecord, Undecodable};
use wactor_kafka::worker::{self, Control, WorkerHandle};
use wactor_kafka::{ActorContext, ManualClock, VersionSlot, VersionSource};
use wactor_runtime::Event;
use wactor_store::{DeadLetterFilter, HeldEvent};

const WAIT: Duration = Duration::from_secs(30);
/// The clock's start: an ordinary time in 2026, in ms.
const T0: i64 = 1_780_000_000_000;

/// One worker of partition 0 of `topic`, fed by the test.
struct Machine {
    host: Host,
    ctx: Arc<ActorContext>,
    clock: Arc<ManualClock>,
    brokers: String,
    topic: String,
    handle: WorkerHandle,
    next_offset: i64,
    _dir: tempfile::TempDir,
}

impl Machine {
    /// A worker of `topic[0]` for the scripted actor, retries after 1 s
    /// (no jitter, 3 attempts), `extra` added to its manifest.
    fn start(kafka: &Kafka, topic: &str, extra: &str) -> Self {
        kafka.topic(topic, 1);
        kafka.topic(&format!("{topic}.out"), 1);
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let mut settings = kafka.settings();
        settings.commit_interval = Duration::from_millis(50);
        let host = Host::with_clock(dir.path(), settings, clock.clone());
        let spec = manifest(
            topic,
            topic,
            &format!(
                "{extra}\n[retry]\nmax_attempts = 3\ninitial_backoff = \"1s\"\njitter = \"none\""
            ),
        );
        let slot = Arc::new(VersionSlot::new(host.load("fixture-scripted", &spec, 1)));
        let ctx = Arc::new(host.context(slot as Arc<dyn VersionSource>));
        let handle = Self::spawn(&ctx, topic);
        Machine {
            host,
            ctx,
            clock,
            brokers: kafka.brokers.clone(),
            topic: topic.to_string(),
            handle,
            next_offset: 0,
            _dir: dir,
        }
    }

    fn spawn(ctx: &Arc<ActorContext>, topic: &str) -> WorkerHandle {
        worker::spawn_with_inbox(
            &tokio::runtime::Handle::current(),
            ctx.clone(),
            None,
            topic.to_string(),
            0,
        )
    }

    /// Hands the next record (`key`, `script`) to the worker; returns its
    /// offset.
    fn send(&mut self, key: &str, script: &str) -> i64 {
        let offset = self.next_offset;
        self.send_at(offset, key, script);
        self.next_offset += 1;
        offset
    }

    /// Hands a record at `offset` to the worker (a redelivery when it is
    /// one the partition had).
    fn send_at(&self, offset: i64, key: &str, script: &str) {
        let event = Event {
            topic: self.topic.clone(),
            partition: 0,
            offset,
            timestamp_ms: Some(T0),
            key: Some(key.as_bytes().to_vec()),
            payload: Some(script.as_bytes().to_vec()),
            headers: Vec::new(),
            attempt: 1,
        };
        assert!(
            self.handle.offer(Intake::Event(event)).is_some(),
            "worker gone"
        );
    }

    /// The offset the worker publishes for commit (the next to read).
    fn published(&self) -> i64 {
        self.handle.shared.commit.load(Ordering::Relaxed)
    }

    /// Waits until the published offset reaches `offset`.
    async fn committed(&self, offset: i64) -> bool {
        eventually(WAIT, || self.published() >= offset).await
    }

    fn held(&self) -> Vec<HeldEvent> {
        let mut held = self.ctx.held.partition(&self.topic, 0).unwrap();
        held.sort_by_key(|h| h.event.offset);
        held
    }

    /// Moves the clock past every retry due so far.
    fn later(&self) {
        self.clock.advance(Duration::from_secs(2));
    }

    /// The `seq`s of the output topic, in order, once it holds `n`.
    async fn outputs(&self, n: usize) -> Vec<i64> {
        let out = read_until(
            &self.brokers,
            &format!("{}.out", self.topic),
            WAIT,
            move |r| r.len() >= n,
        )
        .await;
        out.iter()
            .filter_map(|r| r.json()["seq"].as_i64())
            .collect()
    }

    /// Stops the worker as the consumer does on revoke; the final offset.
    async fn stop(&self) -> Option<i64> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.handle.control.send(Control::Stop { reply }).unwrap();
        tokio::task::spawn_blocking(move || answer.recv_timeout(WAIT).unwrap())
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_head_holds_its_key_and_the_keys_later_events_while_other_keys_go_on() {
    let kafka = Kafka::start();
    let mut m = Machine::start(&kafka, "wm-hold", "");
    m.send("k0", r#"{"seq": 1, "fail_until_attempt": 1}"#);
    m.send("k0", r#"{"seq": 2}"#);
    m.send("k1", r#"{"seq": 3}"#);

    // k1 runs; k0's head waits for its retry and its second event behind
    // it, both in the store: their offsets are finished (the store took
    // responsibility), so the whole partition commits.
    assert_eq!(m.outputs(1).await, vec![3]);
    assert!(m.committed(3).await, "published {}", m.published());
    let held: Vec<i64> = m.held().iter().map(|h| h.event.offset).collect();
    assert_eq!(held, vec![0, 1]);
    assert_eq!(m.held()[0].next_attempt_at_ms, Some(T0 + 1_000));
    assert_eq!(m.held()[0].attempts.len(), 1);

    // Nothing more runs until the clock says the retry is due.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(m.held().len(), 2, "no retry before its time");

    m.later();
    assert_eq!(
        m.outputs(3).await,
        vec![3, 1, 2],
        "k0 in order after its retry"
    );
    assert!(eventually(WAIT, || m.held().is_empty()).await);
    // A new k0 event runs at once: the lane is ordinary again.
    m.send("k0", r#"{"seq": 4}"#);
    assert_eq!(m.outputs(4).await, vec![3, 1, 2, 4]);
    assert!(m.committed(4).await);
    assert_eq!(m.stop().await, Some(4));
    // A stopped worker takes nothing more, and nothing is left counted.
    assert!(
        eventually(WAIT, || m.handle.task.is_finished()).await,
        "the worker ended"
    );
    let late = Event {
        topic: m.topic.clone(),
        partition: 0,
        offset: 4,
        timestamp_ms: None,
        key: None,
        payload: None,
        headers: Vec::new(),
        attempt: 1,
    };
    assert_eq!(m.handle.offer(Intake::Event(late)), None);
    assert_eq!(m.handle.shared.pending.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_out_of_attempts_is_dead_lettered_with_its_history_and_its_key_goes_on() {
    let kafka = Kafka::start();
    let mut m = Machine::start(&kafka, "wm-dead", "");
    m.send("k0", r#"{"seq": 1, "fail_until_attempt": 9}"#);
    m.send("k0", r#"{"seq": 2}"#);
    m.send("k1", r#"{"seq": 3, "dead": true}"#);
    // k1's event says dead: dead-lettered at once, no retry.
    let dead = |m: &Machine| {
        m.host
            .store
            .dead_letters()
            .list(&DeadLetterFilter::default(), 100, None)
            .unwrap()
            .items
    };
    assert!(eventually(WAIT, || dead(&m).len() == 1).await);
    assert_eq!(dead(&m)[0].event.offset, 2);
    assert_eq!(dead(&m)[0].kind, "actor_dead");
    // k0's head waits for its retry, its next event behind it.
    assert!(eventually(WAIT, || m.held().len() == 2).await);
    let held: Vec<i64> = m.held().iter().map(|h| h.event.offset).collect();
    assert_eq!(held, vec![0, 1], "seq 2 waits behind its key's head");
    // k0's head: attempt 1 now, 2 after 1 s, 3 after 2 s more, then dead.
    assert!(
        eventually(WAIT, || {
            m.later();
            dead(&m).len() == 2
        })
        .await
    );
    let letter = dead(&m).into_iter().find(|d| d.event.offset == 0).unwrap();
    assert_eq!(letter.attempts.len(), 3, "{letter:?}");
    assert_eq!(letter.kind, "attempts_exhausted");
    // The key's next event ran after it.
    assert_eq!(m.outputs(1).await, vec![2]);
    assert!(m.committed(3).await);
    assert!(m.held().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_is_dead_lettered_at_once_and_the_partition_goes_on() {
    let kafka = Kafka::start();
    let mut m = Machine::start(&kafka, "wm-undecodable", "");
    let bad = Undecodable {
        record: RawRecord {
            topic: "wm-undecodable".into(),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            key: Some(b"k0".to_vec()),
            payload: Some(b"v".to_vec()),
            headers: vec![(vec![0xff, 0xfe], Some(b"v".to_vec()))],
        },
        reason: "undecodable header: the name of header 0 is not UTF-8 (bytes ff fe)".into(),
    };
    m.handle.offer(Intake::Undecodable(Box::new(bad))).unwrap();
    m.next_offset = 1;
    m.send("k0", r#"{"seq": 1}"#);
    assert_eq!(m.outputs(1).await, vec![1]);
    assert!(m.committed(2).await);
    let letters = m
        .host
        .store
        .dead_letters()
        .list(&DeadLetterFilter::default(), 10, None)
        .unwrap()
        .items;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].kind, "undecodable");
    assert!(
        letters[0].reason.starts_with("undecodable header"),
        "{}",
        letters[0].reason
    );
    assert_eq!(letters[0].event.headers[0].name, vec![0xff, 0xfe]);
}

/// A worker stopped while a key is held leaves it in the store; the
/// partition's next worker restores it, takes a redelivered copy of a held
/// event as already handled, and keeps the key's order for new events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_worker_restores_held_lanes_and_skips_redelivered_copies() {
    let kafka = Kafka::start();
    let mut m = Machine::start(&kafka, "wm-restore", "");
    m.send("k0", r#"{"seq": 1, "fail_until_attempt": 1}"#);
    m.send("k0", r#"{"seq": 2}"#);
    assert!(eventually(WAIT, || m.held().len() == 2).await);
    assert_eq!(m.stop().await, Some(2), "held events are finished offsets");
    assert_eq!(m.held().len(), 2, "a stop keeps held events");

    m.handle = Machine::spawn(&m.ctx, &m.topic);
    // A redelivery from before the commit: offsets 0 and 1 again (held
    // already; the head with its first attempt's history).
    m.send_at(0, "k0", r#"{"seq": 1, "fail_until_attempt": 1}"#);
    m.send_at(1, "k0", r#"{"seq": 2}"#);
    m.send("k0", r#"{"seq": 3}"#);
    m.send("k1", r#"{"seq": 4}"#);
    assert_eq!(m.outputs(1).await, vec![4]);
    assert!(
        eventually(WAIT, || m.held().len() == 3).await,
        "seq 3 waits behind the held key"
    );
    let head = &m.held()[0];
    assert_eq!(
        (head.attempts.len(), head.next_attempt_at_ms),
        (1, Some(T0 + 1_000)),
        "the copy did not replace the held head's history"
    );
    m.later();
    let out = read_until(&m.brokers, "wm-restore.out", WAIT, |r| r.len() >= 4).await;
    let seqs: Vec<(i64, i64)> = out
        .iter()
        .map(|r| {
            (
                r.json()["seq"].as_i64().unwrap(),
                r.json()["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seqs,
        vec![(4, 1), (1, 2), (2, 1), (3, 1)],
        "each once, in key order"
    );
    // A last event on another key: once it is out, anything the copies
    // ran would be out too (one partition, in order).
    m.send("k2", r#"{"seq": 5}"#);
    let all = m.outputs(5).await;
    assert_eq!(all.last(), Some(&5));
    let out = read_until(&m.brokers, "wm-restore.out", Duration::from_secs(1), |_| {
        false
    })
    .await;
    assert_eq!(out.len(), 5, "the redelivered copies did not run: {all:?}");
    assert!(m.committed(5).await);
    assert_eq!(
        m.handle.shared.pending.load(Ordering::Relaxed),
        0,
        "nothing pending"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_partition_mode_a_held_event_holds_the_partition_until_it_is_done() {
    let kafka = Kafka::start();
    let mut m = Machine::start(&kafka, "wm-partition", "ordering = \"partition\"");
    m.send("k0", r#"{"seq": 1, "fail_until_attempt": 1}"#);
    assert!(eventually(WAIT, || m.handle.shared.hold.load(Ordering::Relaxed)).await);
    // The consumer stops reading; anything already handed over waits too,
    // whatever its key.
    m.send("k1", r#"{"seq": 2}"#);
    assert!(eventually(WAIT, || m.held().len() == 2).await);
    m.later();
    assert_eq!(m.outputs(2).await, vec![1, 2]);
    assert!(eventually(WAIT, || !m.handle.shared.hold.load(Ordering::Relaxed)).await);
    assert!(m.committed(2).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_now_runs_a_waiting_head_without_waiting_for_its_time() {
    let kafka = Kafka::start();
    let mut m = Machine::start(&kafka, "wm-now", "");
    m.send("k0", r#"{"seq": 1, "fail_until_attempt": 1}"#);
    assert!(eventually(WAIT, || m.held().len() == 1).await);
    let id = m.held()[0].id();
    let (reply, answer) = tokio::sync::oneshot::channel();
    m.handle
        .control
        .send(Control::RetryNow {
            id: id.clone(),
            reply,
        })
        .unwrap();
    assert!(answer.await.unwrap(), "the waiting head was moved up");
    assert_eq!(m.outputs(1).await, vec![1]);
    assert!(eventually(WAIT, || m.held().is_empty()).await);
    // Nothing waits any more: a second retry-now finds nothing.
    let (reply, answer) = tokio::sync::oneshot::channel();
    m.handle
        .control
        .send(Control::RetryNow { id, reply })
        .unwrap();
    assert!(!answer.await.unwrap());
}
