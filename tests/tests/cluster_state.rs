//! Actor state follows its partition across hosts (issue 11, part 3):
//! `wactor serve` processes running the payment-reversal example against
//! one broker (librdkafka's mock cluster in this test process, outliving
//! the hosts) and a stand-in wallet that records every reverse request.
//!
//! - A booking cancelled again after its partition moved to another host
//!   (the first host SIGKILLed, its disk never read again) finds the
//!   idempotency marker restored from `<group>.state`: the wallet is asked
//!   once. Before state followed the partition, the new host asked again.
//! - 5,000 cancellations with duplicates while hosts join, leave and are
//!   SIGKILLed: every booking reversed (asked for and confirmed), nothing
//!   lost, and repeated requests only for calls in flight at a kill.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{committed_offsets, produce, read_until, write_actor, Kafka, ServeProcess};
use wactor_tests::TestServer;

const TOPIC: &str = "bookings";
const COMPLETED: &str = "wallet.reversal.completed";
const GROUP: &str = "wactor.payment-reversal";
const PARTITIONS: i32 = 4;
const MAX_IN_FLIGHT: usize = 8;
const WAIT: Duration = Duration::from_secs(180);

/// One host's directory: its own store, the payment-reversal actor with
/// the stand-in wallet's address.
fn host_dir(
    root: &Path,
    name: &str,
    brokers: &str,
    wallet: &TestServer,
    state_changelog: bool,
) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    write_actor(
        &dir,
        "payment-reversal",
        "payment-reversal",
        &format!(
            "name = \"payment-reversal\"\ntopics = [\"{TOPIC}\"]\nordering = \"key\"\n\
             max_in_flight = {MAX_IN_FLIGHT}\nallowed_hosts = [\"{wallet_host}\"]\n\
             [retry]\nmax_attempts = 20\ninitial_backoff = \"200ms\"\njitter = \"none\"\n\
             [config]\nwallet_url = \"{wallet_url}\"\ncompleted_topic = \"{COMPLETED}\"\n",
            wallet_host = wallet.host_port(),
            wallet_url = wallet.url(),
        ),
    );
    if !state_changelog {
        ServeProcess::write_config(
            &dir,
            brokers,
            "manage_topics = false\nstate_changelog = false",
        );
    }
    dir
}

fn cancellation(booking: usize) -> (Option<String>, String) {
    (
        Some(format!("b{booking}")),
        format!(
            r#"{{"type":"booking.cancelled","booking_id":"b{booking}","customer_id":"c{}","reservation_id":"r{booking}","amount":{{"value":25000,"currency":"IDR"}}}}"#,
            booking % 97
        ),
    )
}

/// Reverse requests per booking (the Idempotency-Key the actor sends).
fn requests_per_booking(wallet: &TestServer) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for request in wallet.requests() {
        if let Some(key) = request.header("idempotency-key") {
            *out.entry(key.to_string()).or_insert(0) += 1;
        }
    }
    out
}

fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("host.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Waits until the group committed `total` offsets on the source topic.
async fn wait_committed(kafka: &Kafka, total: i64, dirs: &[PathBuf]) {
    let started = Instant::now();
    loop {
        let committed = committed_offsets(&kafka.brokers, GROUP, TOPIC, PARTITIONS).await;
        let sum: i64 = committed.iter().map(|o| (*o).max(0)).sum();
        if sum >= total {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "only {sum} of {total} offsets committed: {committed:?}\n{}",
            dirs.iter()
                .map(|d| log_tail(d))
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the move scenario: host A reverses `n` bookings and is SIGKILLed;
/// host B, alone now, gets every booking cancelled again. Returns the
/// wallet's requests per booking.
async fn moved_partitions_scenario(state_changelog: bool, n: usize) -> BTreeMap<String, usize> {
    let kafka = Kafka::start();
    kafka.topic(TOPIC, PARTITIONS);
    kafka.topic(COMPLETED, PARTITIONS);
    let wallet = TestServer::start().unwrap();
    let root = tempfile::tempdir().unwrap();
    let a = host_dir(root.path(), "a", &kafka.brokers, &wallet, state_changelog);
    let b = host_dir(root.path(), "b", &kafka.brokers, &wallet, state_changelog);
    let dirs = [a.clone(), b.clone()];

    let host_a = ServeProcess::start(&a, &kafka.brokers);
    let first: Vec<_> = (0..n).map(cancellation).collect();
    produce(&kafka.brokers, TOPIC, &first).await;
    wait_committed(&kafka, i64::try_from(n).unwrap(), &dirs).await;
    assert_eq!(
        requests_per_booking(&wallet).len(),
        n,
        "A reversed each once"
    );

    // A dies (its disk is never read again); B takes every partition once
    // the group notices (session timeout), then the duplicates arrive.
    host_a.kill();
    let host_b = ServeProcess::start(&b, &kafka.brokers);
    produce(&kafka.brokers, TOPIC, &first).await;
    wait_committed(&kafka, i64::try_from(2 * n).unwrap(), &dirs).await;
    assert!(host_b.terminate(), "B stops cleanly:\n{}", log_tail(&b));
    requests_per_booking(&wallet)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_booking_cancelled_again_after_its_partition_moved_is_reversed_once() {
    let n = 200;
    let requests = moved_partitions_scenario(true, n).await;
    assert_eq!(requests.len(), n);
    let repeated: Vec<_> = requests.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        repeated.is_empty(),
        "the new host found the markers of every moved partition, yet asked the wallet again \
         for {} booking(s): {:?}",
        repeated.len(),
        repeated.iter().take(10).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_state_changelog_the_new_host_asks_the_wallet_again() {
    // The same scenario with `kafka.state_changelog = false`: state stays
    // on the host that wrote it, so the control shows the test above can
    // fail (and what the setting means).
    let n = 50;
    let requests = moved_partitions_scenario(false, n).await;
    assert_eq!(requests.len(), n);
    assert!(
        requests.values().all(|c| *c == 2),
        "every booking asked twice: {requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_cancellations_with_duplicates_while_hosts_come_and_go_reverse_each_booking_once(
) {
    let seed: u64 = std::env::var("WACTOR_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    let total = 5_000usize;
    eprintln!("cluster state scenario: seed {seed}, {total} bookings");
    let mut rng = StdRng::seed_from_u64(seed);
    let kafka = Kafka::start();
    kafka.topic(TOPIC, PARTITIONS);
    kafka.topic(COMPLETED, PARTITIONS);
    let wallet = TestServer::start().unwrap();
    // A wallet that takes 50 ms per reversal, so that calls are in flight
    // when hosts are killed, and the run lasts as long as the faults.
    for _ in 0..7_000 {
        wallet.reply(
            wactor_tests::Reply::status(200)
                .body("{}")
                .delay(Duration::from_millis(50)),
        );
    }
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|n| host_dir(root.path(), n, &kafka.brokers, &wallet, true))
        .collect();
    // Two hosts at first; the third joins during the run.
    let mut hosts: Vec<Option<ServeProcess>> = vec![
        Some(ServeProcess::start(&dirs[0], &kafka.brokers)),
        Some(ServeProcess::start(&dirs[1], &kafka.brokers)),
        None,
    ];

    // Every booking once, and a fifth of them again a little later (a
    // producer's retry, a second cancel click), streamed in batches.
    let mut sent: Vec<(Option<String>, String)> = Vec::new();
    let mut order: Vec<usize> = Vec::new();
    for booking in 0..total {
        order.push(booking);
        if booking % 5 == 0 && booking >= 300 {
            order.push(booking - 300);
        }
    }
    for booking in &order {
        sent.push(cancellation(*booking));
    }
    let produced = sent.len();
    let brokers = kafka.brokers.clone();
    let producer = tokio::spawn(async move {
        for batch in sent.chunks(100) {
            produce(&brokers, TOPIC, batch).await;
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
    });

    // The faults start once the hosts are reversing (a debug build takes
    // seconds to compile the actor and join the group): faults before that
    // would test nothing.
    let started = Instant::now();
    while wallet.requests().len() < 200 {
        assert!(
            started.elapsed() < WAIT,
            "the hosts never started reversing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut kills = 0usize;
    let faults = ["join", "kill", "leave", "kill", "rejoin", "kill"];
    for fault in faults {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1_000..2_500))).await;
        eprintln!("  wallet requests so far: {}", wallet.requests().len());
        match fault {
            "join" | "rejoin" => {
                for (i, slot) in hosts.iter_mut().enumerate() {
                    if slot.is_none() {
                        eprintln!("{fault}: host {i} starts at {:?}", started.elapsed());
                        *slot = Some(ServeProcess::start(&dirs[i], &kafka.brokers));
                        break;
                    }
                }
            }
            "kill" | "leave" => {
                let running: Vec<usize> =
                    (0..hosts.len()).filter(|i| hosts[*i].is_some()).collect();
                if running.len() < 2 {
                    continue;
                }
                let victim = running[rng.gen_range(0..running.len())];
                let host = hosts[victim].take().unwrap();
                if fault == "kill" {
                    eprintln!("kill: SIGKILL host {victim} at {:?}", started.elapsed());
                    host.kill();
                    kills += 1;
                    // It comes back at once, on the same disk, now and then.
                    if rng.gen_bool(0.5) {
                        hosts[victim] = Some(ServeProcess::start(&dirs[victim], &kafka.brokers));
                    }
                } else {
                    eprintln!("leave: SIGTERM host {victim} at {:?}", started.elapsed());
                    assert!(
                        host.terminate(),
                        "host {victim} leaves cleanly:\n{}",
                        log_tail(&dirs[victim])
                    );
                }
            }
            _ => unreachable!(),
        }
    }
    producer.await.unwrap();
    if hosts.iter().all(Option::is_none) {
        hosts[0] = Some(ServeProcess::start(&dirs[0], &kafka.brokers));
    }
    wait_committed(&kafka, i64::try_from(produced).unwrap(), &dirs).await;
    for (i, slot) in hosts.iter_mut().enumerate() {
        if let Some(host) = slot.take() {
            assert!(
                host.terminate(),
                "host {i} stops cleanly:\n{}",
                log_tail(&dirs[i])
            );
        }
    }

    // Every booking reversed: asked for and confirmed.
    let requests = requests_per_booking(&wallet);
    let missing: Vec<usize> = (0..total)
        .filter(|b| !requests.contains_key(&format!("b{b}")))
        .collect();
    assert!(missing.is_empty(), "bookings never reversed: {missing:?}");
    let completed = read_until(&kafka.brokers, COMPLETED, Duration::from_secs(20), {
        let mut seen = std::collections::BTreeSet::new();
        let mut looked = 0usize;
        move |records| {
            for record in &records[looked..] {
                if let Some(id) = record.json()["booking_id"].as_str() {
                    seen.insert(id.to_string());
                }
            }
            looked = records.len();
            seen.len() >= total
        }
    })
    .await;
    let confirmed: std::collections::BTreeSet<String> = completed
        .iter()
        .filter_map(|r| r.json()["booking_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        confirmed.len(),
        total,
        "every reversal confirmed on {COMPLETED}"
    );

    // A repeated request can only come from a call that was in flight
    // when its host was killed (the wallet answered, the marker was not
    // acknowledged yet): the duplicates and the records redelivered after
    // a move or a kill all found their marker.
    let repeats: usize = requests.values().map(|c| c - 1).sum();
    let bound = kills * MAX_IN_FLIGHT * usize::try_from(PARTITIONS).unwrap();
    eprintln!(
        "{total} bookings, {} duplicates, {kills} kills: {repeats} repeated wallet requests (bound {bound})",
        produced - total
    );
    assert!(
        repeats <= bound,
        "{repeats} repeated wallet requests; calls in flight at {kills} kill(s) allow {bound}"
    );
}

mod restore {
    //! `restore_scope` against the mock broker, path by path.

    use std::sync::atomic::AtomicBool;

    use wactor_kafka::state_changelog::{restore_scope, StateChangelog, StateSource};
    use wactor_kafka::{KafkaSettings, Producer};
    use wactor_store::{StateChange, Store};

    use super::support::Kafka;

    struct Fixture {
        _kafka: Kafka,
        settings: KafkaSettings,
        producer: Producer,
        changelog: StateChangelog,
    }

    async fn fixture() -> Fixture {
        let kafka = Kafka::start();
        kafka.topic("g.state", 2);
        let settings = kafka.settings();
        let changelog = StateChangelog::open(&settings, "g.state".into())
            .await
            .unwrap();
        let producer = Producer::new(&settings).unwrap();
        Fixture {
            _kafka: kafka,
            settings,
            producer,
            changelog,
        }
    }

    impl Fixture {
        async fn write(&self, records: Vec<wactor_kafka::OutRecord>) {
            for record in records {
                self.producer.enqueue(&record).await.unwrap();
            }
        }

        async fn restore(
            &self,
            store: &Store,
            changelog: bool,
        ) -> wactor_kafka::state_changelog::ScopeRestore {
            let state = store.actor_state("pay").unwrap();
            let settings = self.settings.clone();
            let producer = self.producer.clone();
            let log = changelog.then(|| self.changelog.clone());
            tokio::task::spawn_blocking(move || {
                restore_scope(
                    &state,
                    log.as_ref(),
                    &settings,
                    &producer,
                    "orders",
                    3,
                    &AtomicBool::new(false),
                )
            })
            .await
            .unwrap()
            .unwrap()
        }
    }

    fn entries(store: &Store) -> Vec<(String, Vec<u8>)> {
        store
            .actor_state("pay")
            .unwrap()
            .partition_entries("orders", 3)
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unmarked_scope_is_merged_with_the_local_one_and_then_marked() {
        let f = fixture().await;
        // A first restore cut short (or a re-drive's write before any
        // restore): entries of the scope, no mark.
        f.write(vec![
            f.changelog
                .entry_record("orders", 3, "a", Some(b"from-log"))
                .unwrap(),
            f.changelog.entry_record("orders", 3, "gone", None).unwrap(),
        ])
        .await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let state = store.actor_state("pay").unwrap();
        state
            .apply(
                "orders",
                3,
                [
                    ("a", StateChange::Set(b"local")),
                    ("b", StateChange::Set(b"local")),
                    ("gone", StateChange::Set(b"local")),
                ],
            )
            .unwrap();
        let first = f.restore(&store, true).await;
        assert_eq!(first.source, StateSource::Local);
        let merged = vec![
            ("a".to_string(), b"from-log".to_vec()),
            ("b".to_string(), b"local".to_vec()),
        ];
        assert_eq!(entries(&store), merged, "the changelog's records win");
        // Now marked: an empty disk restores exactly that.
        let fresh = tempfile::tempdir().unwrap();
        let other = Store::open(fresh.path()).unwrap();
        let second = f.restore(&other, true).await;
        assert_eq!(second.source, StateSource::Changelog);
        assert_eq!(entries(&other), merged);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_made_while_the_changelog_was_off_are_kept_when_it_is_on_again() {
        let f = fixture().await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // On: the scope is marked in the changelog with `old`.
        let state = store.actor_state("pay").unwrap();
        state
            .apply("orders", 3, [("old", StateChange::Set(b"1"))])
            .unwrap();
        f.restore(&store, true).await;
        // Off: restored locally, then written locally only.
        f.restore(&store, false).await;
        state
            .apply(
                "orders",
                3,
                [
                    ("old", StateChange::Delete),
                    ("new", StateChange::Set(b"2")),
                ],
            )
            .unwrap();
        // On again: the local copy is the truth and goes to the changelog.
        let back = f.restore(&store, true).await;
        assert_eq!(back.source, StateSource::Local);
        let expected = vec![("new".to_string(), b"2".to_vec())];
        assert_eq!(entries(&store), expected);
        let fresh = tempfile::tempdir().unwrap();
        let other = Store::open(fresh.path()).unwrap();
        f.restore(&other, true).await;
        assert_eq!(
            entries(&other),
            expected,
            "the delete reached the changelog too"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_topic_name_that_could_name_another_scope_is_refused() {
        let f = fixture().await;
        // A forged re-drive envelope naming topic "orders:3" would write
        // key "orders:3:17:k", which reads as key "17:k" of orders[3].
        let err = f
            .changelog
            .entry_record("orders:3", 17, "k", Some(b"x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot name a state scope"), "{err}");
        assert!(f.changelog.mark_record("", 1).is_err());
    }
}
