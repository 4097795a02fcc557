//! Versions are unloaded when nothing needs them: an actor keeps its
//! active and previous versions (rollback is a pointer swap), a version a
//! call still runs on lives until the call ends, a version a re-drive
//! names is loaded on demand and kept for a while, and nothing else stays.
//! Sixty deploys of a component with a 4 MiB data segment leave the host's
//! resident memory and its memfds (wasmtime's copy-on-write memory images)
//! where ten left them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use support::{eventually, manifest, produce, read_at_least, Host, Kafka};
use wactor_kafka::{ActiveVersion, KafkaSettings, OutRecord, VersionSource};
use wactor_manifest::ActorManifest;
use wactor_registry::{
    LoadedVersions, RedriveRequest, RedriveTarget, Upload, VersionLoader, LOADED_VERSIONS_METRIC,
};
use wactor_runtime::{Event, Runtime, RuntimeSettings};
use wactor_tests::{guest_bytes, MapState};

const WAIT: Duration = Duration::from_secs(60);
const MIB: u64 = 1024 * 1024;

fn upload<'a>(manifest: &'a str, component: &'a [u8]) -> Upload<'a> {
    Upload {
        manifest_toml: manifest,
        component,
        uploaded_by: "test",
        notes: "",
        activate: true,
    }
}

/// This process's resident set size in bytes (`VmRSS`).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .expect("VmRSS in /proc/self/status")
}

/// Open file descriptors of this process that are memfds (wasmtime keeps
/// one per memory image of a loaded module).
fn memfds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("/memfd:"))
        .count()
}

/// Reads one topic from its start, keeping its position between calls.
struct Reader {
    consumer: BaseConsumer,
}

impl Reader {
    fn new(brokers: &str, topic: &str) -> Self {
        let consumer: BaseConsumer = KafkaSettings::new(brokers)
            .reader_config()
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        Reader { consumer }
    }

    /// The next record's value as JSON.
    fn next_json(&self, timeout: Duration) -> serde_json::Value {
        let started = std::time::Instant::now();
        while started.elapsed() < timeout {
            if let Some(Ok(message)) = self.consumer.poll(Duration::from_millis(50)) {
                return serde_json::from_slice(message.payload().unwrap_or_default()).unwrap();
            }
        }
        panic!("no record within {timeout:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_deploys_keep_two_versions_loaded_and_memory_and_memfds_flat() {
    let kafka = Kafka::start();
    kafka.topic("big", 1);
    kafka.topic("big.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let registry = host.registry();
    let component = guest_bytes("fixture-big-data");
    let reader = Reader::new(&kafka.brokers, "big.out");

    let mut at_ten = None;
    for v in 1..=60u64 {
        let spec = manifest("big", "big", &format!("[config]\nlabel = \"v{v}\""));
        let deployed = registry.deploy(upload(&spec, &component)).await.unwrap();
        assert_eq!((deployed.version.version, deployed.activated), (v, true));
        // One event per version, so that each is instantiated (its 4 MiB
        // memory image made) before the next replaces it.
        host.producer
            .enqueue(&OutRecord {
                topic: "big".into(),
                partition: None,
                key: Some(b"k".to_vec()),
                payload: Some((v * 65_537).to_string().into_bytes()),
                headers: Vec::new(),
            })
            .await
            .unwrap();
        let out = tokio::task::block_in_place(|| reader.next_json(WAIT));
        assert_eq!(
            out["label"],
            format!("v{v}"),
            "version {v} handled its event"
        );
        if v == 10 {
            at_ten = Some((rss_bytes(), memfds()));
        }
    }

    // The calls of the last versions end within moments.
    let settled = eventually(Duration::from_secs(10), || {
        registry.loaded_versions("big") == vec![59, 60]
    })
    .await;
    let (rss_ten, memfds_ten) = at_ten.unwrap();
    let (rss_sixty, memfds_sixty) = (rss_bytes(), memfds());
    eprintln!(
        "after 10 deploys: {} MiB resident, {memfds_ten} memfds; after 60: {} MiB, \
         {memfds_sixty} memfds; loaded versions {:?}",
        rss_ten / MIB,
        rss_sixty / MIB,
        registry.loaded_versions("big")
    );
    assert!(
        settled,
        "only the active and the previous version stay loaded: {:?}",
        registry.loaded_versions("big")
    );
    assert!(
        rss_sixty < rss_ten + 64 * MIB,
        "resident memory grew from {} MiB to {} MiB over 50 deploys",
        rss_ten / MIB,
        rss_sixty / MIB
    );
    assert!(
        memfds_sixty <= memfds_ten + 2,
        "memfds grew from {memfds_ten} to {memfds_sixty}"
    );

    registry.refresh_gauges().unwrap();
    let metrics = host.metrics.render();
    assert!(
        metrics.contains(&format!("{LOADED_VERSIONS_METRIC}{{actor=\"big\"}} 2")),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains(LOADED_VERSIONS_METRIC))
            .collect::<Vec<_>>()
            .join("\n")
    );
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redrive_to_a_version_that_was_unloaded_runs_on_that_version() {
    let kafka = Kafka::start();
    kafka.topic("named", 1);
    kafka.topic("named.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let registry = host.registry();
    let trap = guest_bytes("fixture-trap");
    let fixed = guest_bytes("fixture-scripted");
    let spec = |label: &str| {
        manifest(
            "named",
            "named",
            &format!("[retry]\nmax_attempts = 1\n[config]\nlabel = \"{label}\""),
        )
    };
    let v1 = spec("v1");
    registry.deploy(upload(&v1, &trap)).await.unwrap();
    produce(
        &kafka.brokers,
        "named",
        &[(Some("n".into()), "{\"seq\": 1}".into())],
    )
    .await;
    let dead_letters = host.store.dead_letters();
    assert!(eventually(WAIT, || dead_letters.len() == 1).await);

    // v2 is the fix; v3 and v4 follow, so v2 is neither active nor previous.
    for label in ["v2", "v3", "v4"] {
        let text = spec(label);
        registry.deploy(upload(&text, &fixed)).await.unwrap();
    }
    assert!(
        eventually(WAIT, || registry.loaded_versions("named") == vec![3, 4]).await,
        "{:?}",
        registry.loaded_versions("named")
    );

    let report = registry
        .redrive(RedriveRequest {
            target: RedriveTarget::Version(2),
            by: "test".into(),
            ..RedriveRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(report.redriven, 1);
    let out = read_at_least(&kafka.brokers, "named.out", 1, WAIT).await;
    assert_eq!(out[0].json()["label"], "v2");
    assert_eq!(out[0].headers["wactor-actor"], "named@2");
    assert!(dead_letters.is_empty());
    assert_eq!(
        registry.loaded_versions("named"),
        vec![2, 3, 4],
        "the named version stays pinned for further re-drives"
    );
    registry.shutdown().await;
}

// The version set itself, on real components, without Kafka.

fn runtime() -> &'static Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME.get_or_init(|| Arc::new(Runtime::new(RuntimeSettings::default()).unwrap()))
}

/// Version `version` of an actor running `guest`, with `config`.
fn version_of(guest: &str, version: u64, config: &[(&str, &str)]) -> Arc<ActiveVersion> {
    let mut text = manifest("set", "in", "[config]");
    for (key, value) in config {
        text.push_str(&format!("{key} = \"{value}\"\n"));
    }
    let manifest = Arc::new(ActorManifest::parse(&text).unwrap());
    let actor = runtime()
        .load(&guest_bytes(guest), manifest.actor_settings(version))
        .unwrap();
    Arc::new(ActiveVersion::new(version, actor, manifest))
}

fn event() -> Event {
    Event {
        topic: "in".into(),
        partition: 0,
        offset: 0,
        timestamp_ms: None,
        key: None,
        payload: Some(b"{}".to_vec()),
        headers: Vec::new(),
        attempt: 1,
    }
}

/// Loads `fixture-noop` versions and counts the loads.
#[derive(Default)]
struct CountingLoader {
    loads: AtomicUsize,
}

impl VersionLoader for CountingLoader {
    fn load(&self, version: u64) -> wactor_registry::Result<Arc<ActiveVersion>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(version_of("fixture-noop", version, &[]))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_neither_active_nor_previous_is_dropped_when_its_last_call_ends() {
    let set = LoadedVersions::new(None);
    let v1 = version_of("fixture-sleep", 1, &[("sleep_ms", "300")]);
    let v1_weak: Weak<ActiveVersion> = Arc::downgrade(&v1);
    set.activate(v1);
    // A call starts on v1 (it holds the version, as a partition worker's
    // call does), then v2 and v3 are activated while it runs.
    let running = set.current().unwrap();
    let call = tokio::spawn(async move { running.actor.invoke(&event(), MapState::new()).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    set.activate(version_of("fixture-noop", 2, &[]));
    set.activate(version_of("fixture-noop", 3, &[]));
    assert_eq!(set.loaded(), vec![1, 2, 3], "v1 is still running a call");
    assert_eq!(set.get_loaded(1).map(|v| v.version), Some(1));

    let invocation = call.await.unwrap();
    assert!(invocation.result.is_done());
    assert_eq!(set.loaded(), vec![2, 3]);
    assert!(
        v1_weak.upgrade().is_none(),
        "nothing holds v1 any more: its component is dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_finds_the_previous_version_loaded() {
    let loader = Arc::new(CountingLoader::default());
    let set = LoadedVersions::new(Some(loader.clone()));
    set.activate(version_of("fixture-noop", 1, &[]));
    set.activate(version_of("fixture-noop", 2, &[]));
    let previous = set.get_loaded(1).expect("the previous version is loaded");
    let replaced = set.activate(previous).unwrap();
    assert_eq!(replaced.version, 2);
    assert_eq!(set.current().unwrap().version, 1);
    assert_eq!(set.loaded(), vec![1, 2]);
    assert_eq!(loader.loads.load(Ordering::SeqCst), 0, "nothing was loaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_a_redrive_names_is_loaded_on_demand_and_let_go_after_its_pin() {
    let loader = Arc::new(CountingLoader::default());
    let set =
        LoadedVersions::new(Some(loader.clone())).with_pin_duration(Duration::from_millis(300));
    for v in 1..=4 {
        set.activate(version_of("fixture-noop", v, &[]));
    }
    assert_eq!(set.loaded(), vec![3, 4]);

    // A held retry or re-drive names v1: it is loaded once, then found.
    let v1 = set.get(1).expect("loaded on demand");
    assert_eq!(v1.version, 1);
    assert!(v1
        .actor
        .invoke(&event(), MapState::new())
        .await
        .result
        .is_done());
    drop(v1);
    assert_eq!(set.get(1).map(|v| v.version), Some(1));
    assert_eq!(loader.loads.load(Ordering::SeqCst), 1);
    assert_eq!(set.loaded(), vec![1, 3, 4]);

    // Unused for longer than its pin, it is let go.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(set.loaded(), vec![3, 4]);
    // And loaded again when named again.
    assert!(set.get(1).is_some());
    assert_eq!(loader.loads.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_cannot_be_loaded_is_none_and_changes_nothing() {
    struct Failing;
    impl VersionLoader for Failing {
        fn load(&self, version: u64) -> wactor_registry::Result<Arc<ActiveVersion>> {
            Err(wactor_registry::RegistryError::UnknownVersion {
                actor: "set".into(),
                version,
            })
        }
    }
    let set = LoadedVersions::new(Some(Arc::new(Failing)));
    set.activate(version_of("fixture-noop", 1, &[]));
    assert!(set.get(7).is_none());
    assert_eq!(set.loaded(), vec![1]);
}
