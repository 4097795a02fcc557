//! The Kafka harness of the tests and the benchmarks: an in-process broker
//! (librdkafka's mock cluster), "hosts" (a store directory, a runtime, a
//! producer, metrics) that run actor consumers the way `wactor serve` does,
//! `wactor serve` child processes, producing test events and reading what
//! actors emitted. Test code: it panics on failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use wactor_kafka::{
    ActiveVersion, ActorConsumer, ActorContext, Clock, DevCluster, KafkaSettings, OutRecord,
    Producer, SystemClock, VersionSlot, VersionSource,
};
use wactor_manifest::ActorManifest;
use wactor_metrics::Metrics;
use wactor_runtime::{Runtime, RuntimeSettings};
use wactor_store::Store;

/// The in-process broker.
pub struct Kafka {
    pub cluster: DevCluster,
    pub brokers: String,
}

/// Logs the host's tracing events to stderr when `WACTOR_TEST_LOG` holds a
/// filter (e.g. `WACTOR_TEST_LOG=wactor_kafka=debug,librdkafka=debug`): for
/// reading a failing test. Once per process; off by default.
pub fn init_test_log() {
    if let Ok(filter) = std::env::var("WACTOR_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

impl Kafka {
    pub fn start() -> Self {
        init_test_log();
        let cluster = DevCluster::start(1).expect("mock cluster");
        let brokers = cluster.bootstrap_servers();
        Kafka { cluster, brokers }
    }

    pub fn topic(&self, name: &str, partitions: i32) {
        self.cluster.create_topic(name, partitions).expect("topic");
    }

    /// Settings for hosts of the tests: fast commits and drains.
    pub fn settings(&self) -> KafkaSettings {
        let mut settings = KafkaSettings::new(&self.brokers);
        settings.commit_interval = Duration::from_millis(100);
        settings.drain_timeout = Duration::from_secs(5);
        settings.changelog_partitions = 4;
        settings.manage_topics = false;
        // The mock cluster never answers DescribeConfigs.
        settings.describe_configs = false;
        settings
            .consumer
            .insert("session.timeout.ms".into(), "6000".into());
        settings
            .consumer
            .insert("heartbeat.interval.ms".into(), "500".into());
        settings
    }
}

/// One host: its own store directory, runtime, producer and metrics.
pub struct Host {
    pub dir: PathBuf,
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub producer: Producer,
    pub metrics: Arc<Metrics>,
    pub settings: KafkaSettings,
    pub clock: Arc<dyn Clock>,
}

impl Host {
    pub fn new(dir: &Path, settings: KafkaSettings) -> Self {
        Self::with_clock(dir, settings, Arc::new(SystemClock))
    }

    pub fn with_clock(dir: &Path, settings: KafkaSettings, clock: Arc<dyn Clock>) -> Self {
        // A host just dropped in this process may still be letting go of
        // the store (a worker's blocking task ending): sled's file lock is
        // released when the last handle drops, so wait for it a while.
        let started = std::time::Instant::now();
        let store = loop {
            match Store::open(&dir.join("store")) {
                Ok(store) => break store,
                Err(err)
                    if format!("{err:?}").contains("could not acquire lock")
                        && started.elapsed() < Duration::from_secs(10) =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(err) => panic!("store: {err}"),
            }
        };
        let runtime = Runtime::new(RuntimeSettings {
            cache_dir: Some(dir.join("artifacts")),
            ..RuntimeSettings::default()
        })
        .expect("runtime");
        Host {
            dir: dir.to_path_buf(),
            store,
            runtime: Arc::new(runtime),
            producer: Producer::new(&settings).expect("producer"),
            metrics: Arc::new(Metrics::new().expect("metrics")),
            settings,
            clock,
        }
    }

    /// A registry over this host's parts (what `wactor serve` runs).
    pub fn registry(&self) -> wactor_registry::Registry {
        wactor_registry::Registry::new(wactor_registry::HostParts {
            store: self.store.clone(),
            runtime: self.runtime.clone(),
            producer: self.producer.clone(),
            metrics: self.metrics.clone(),
            kafka: self.settings.clone(),
            clock: self.clock.clone(),
        })
    }

    /// A registry of this host in the cluster of the registry topic
    /// `topic`, as `wactor serve` runs it: attached to the topic (caught
    /// up), its actors started, applying the topic's changes.
    pub async fn join_cluster(&self, topic: &str) -> Arc<wactor_registry::Registry> {
        let registry = Arc::new(self.registry());
        registry.attach_shared(topic).await.expect("attach");
        registry.start_all().await.expect("start");
        tokio::spawn(registry.clone().apply_shared());
        registry
    }

    /// Loads `guest` as version `version` of the actor of `manifest`.
    pub fn load(&self, guest: &str, manifest: &str, version: u64) -> Arc<ActiveVersion> {
        let manifest = Arc::new(ActorManifest::parse(manifest).expect("manifest"));
        let bytes = crate::guest_bytes(guest);
        let actor = self
            .runtime
            .load(&bytes, manifest.actor_settings(version))
            .expect("load");
        Arc::new(ActiveVersion::new(version, actor, manifest))
    }

    /// Loads the component file `path` as version `version` of the actor
    /// of `manifest` (a Python or JavaScript example from
    /// [`crate::language_guest`]).
    pub fn load_component(&self, path: &Path, manifest: &str, version: u64) -> Arc<ActiveVersion> {
        let manifest = Arc::new(ActorManifest::parse(manifest).expect("manifest"));
        let bytes = std::fs::read(path).expect("read the component");
        let actor = self
            .runtime
            .load(&bytes, manifest.actor_settings(version))
            .expect("load");
        Arc::new(ActiveVersion::new(version, actor, manifest))
    }

    /// The context of the actor of `versions` (its active version's
    /// manifest) on this host.
    pub fn context(&self, versions: Arc<dyn VersionSource>) -> ActorContext {
        let manifest = versions.current().expect("active version").manifest.clone();
        ActorContext::new(
            &manifest,
            versions,
            self.store.clone(),
            self.producer.clone(),
            self.metrics.clone(),
            self.settings.clone(),
            self.clock.clone(),
        )
        .expect("context")
    }

    /// Starts a consumer for `slot`'s actor.
    pub async fn consume(&self, slot: Arc<VersionSlot>) -> ActorConsumer {
        let ctx = self.context(slot);
        ActorConsumer::start(Arc::new(ctx)).await.expect("consumer")
    }

    /// Loads `guest` and starts consuming with it as version 1.
    pub async fn run(&self, guest: &str, manifest: &str) -> (ActorConsumer, Arc<VersionSlot>) {
        let slot = Arc::new(VersionSlot::new(self.load(guest, manifest, 1)));
        let consumer = self.consume(slot.clone()).await;
        (consumer, slot)
    }
}

/// Produces `(key, value)` records to `topic` and waits for all acks.
pub async fn produce(brokers: &str, topic: &str, records: &[(Option<String>, String)]) {
    let producer = Producer::new(&KafkaSettings::new(brokers)).expect("producer");
    let deliveries: Vec<_> = records
        .iter()
        .map(|(key, value)| {
            producer.enqueue(&OutRecord {
                topic: topic.to_string(),
                partition: None,
                key: key.clone().map(String::into_bytes),
                payload: Some(value.clone().into_bytes()),
                headers: vec![("test".into(), Some(b"yes".to_vec()))],
            })
        })
        .collect();
    for delivery in deliveries {
        delivery.await.expect("produced");
    }
}

/// Produces `records` as they are (null values and null header values
/// included) and waits for all acks; `settings` may raise the producer's
/// message size limit.
pub async fn produce_raw(settings: &KafkaSettings, records: &[OutRecord]) {
    let producer = Producer::new(settings).expect("producer");
    let deliveries: Vec<_> = records.iter().map(|r| producer.enqueue(r)).collect();
    for delivery in deliveries {
        delivery.await.expect("produced");
    }
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: String,
    pub headers: BTreeMap<String, String>,
    /// The value as it arrived: `None` for a null value (a tombstone).
    pub value_bytes: Option<Vec<u8>>,
    /// The headers as they arrived, in order, null values as `None`.
    pub raw_headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.value).unwrap_or(serde_json::Value::Null)
    }
}

/// Reads `topic` from the beginning until `done` says so or `timeout`
/// passes; returns what was read. `done` is called after every poll (a
/// record or 50 ms without one) with everything read so far: keep it
/// incremental (remember how far it looked) when the topic is large.
pub async fn read_until(
    brokers: &str,
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Record]) -> bool + Send + 'static,
) -> Vec<Record> {
    let brokers = brokers.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let settings = KafkaSettings::new(&brokers);
        let consumer: BaseConsumer = settings.reader_config().create().expect("reader");
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .expect("metadata");
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len())
            .unwrap_or(0);
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(&topic, i32::try_from(p).unwrap(), Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).expect("assign");
        let started = Instant::now();
        let mut records = Vec::new();
        while started.elapsed() < timeout && !done(&records) {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let raw_headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default();
                records.push(Record {
                    value_bytes: message.payload().map(<[u8]>::to_vec),
                    raw_headers,
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    value: String::from_utf8_lossy(message.payload().unwrap_or_default())
                        .into_owned(),
                    headers,
                });
            }
        }
        records
    })
    .await
    .expect("reader task")
}

/// Reads `topic` until it holds at least `n` records (or `timeout`).
pub async fn read_at_least(brokers: &str, topic: &str, n: usize, timeout: Duration) -> Vec<Record> {
    read_until(brokers, topic, timeout, move |r| r.len() >= n).await
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// The seqs per key of emitted `{key, seq}` records, in topic order.
pub fn seqs_by_key(records: &[Record]) -> BTreeMap<String, Vec<i64>> {
    let mut by_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    for record in sorted {
        let json = record.json();
        let key = json["key"].as_str().unwrap_or_default().to_string();
        if let Some(seq) = json["seq"].as_i64() {
            by_key.entry(key).or_default().push(seq);
        }
    }
    by_key
}

/// A manifest for actor `name` reading `topic`, with extra TOML lines.
pub fn manifest(name: &str, topic: &str, extra: &str) -> String {
    format!("name = \"{name}\"\ntopics = [\"{topic}\"]\n{extra}\n")
}

/// A `wactor serve` child process with its own data directory.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub config: PathBuf,
}

impl ServeProcess {
    /// Writes `host.toml` into `dir` (data in `dir/data`, manifests from
    /// `dir/actors`) for `brokers` and starts `wactor serve`.
    pub fn start(dir: &Path, brokers: &str) -> Self {
        Self::start_with(dir, brokers, false)
    }

    /// Like [`start`](Self::start); `manage_topics` for a real broker (one
    /// with the admin API).
    pub fn start_with(dir: &Path, brokers: &str, manage_topics: bool) -> Self {
        let config = dir.join("host.toml");
        if !config.exists() {
            Self::write_config(dir, brokers, &format!("manage_topics = {manage_topics}"));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("host.log"))
            .unwrap();
        let child = std::process::Command::new(crate::wactor_bin())
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("WACTOR_LOG", "info,librdkafka=warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start wactor serve");
        ServeProcess { child, config }
    }

    /// Writes the `host.toml` that [`start`](Self::start) uses into `dir`,
    /// with `kafka_extra` (lines of the `[kafka]` table) added.
    pub fn write_config(dir: &Path, brokers: &str, kafka_extra: &str) {
        let text = format!(
            r#"data_dir = "{data}"
actors_dir = "{actors}"

[kafka]
brokers = "{brokers}"
commit_interval = "200ms"
drain_timeout = "5s"
changelog_partitions = 2
{kafka_extra}

[kafka.consumer]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"

[api]
listen = "127.0.0.1:0"
"#,
            data = dir.join("data").display(),
            actors = dir.join("actors").display(),
        );
        std::fs::write(dir.join("host.toml"), text).unwrap();
    }

    /// SIGKILL: no drain, no commit, no flush.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the graceful exit; returns whether it exited 0.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        false
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Writes an actor manifest into `dir/actors/<name>.actor.toml` whose component
/// is the fixture `guest`.
pub fn write_actor(dir: &Path, name: &str, guest: &str, manifest_body: &str) {
    let actors = dir.join("actors");
    std::fs::create_dir_all(&actors).unwrap();
    let text = format!(
        "component = \"{}\"\n{manifest_body}",
        crate::guest(guest).display()
    );
    std::fs::write(actors.join(format!("{name}.actor.toml")), text).unwrap();
}

/// The committed offsets of `group` on `topic`'s partitions `0..partitions`
/// (-1 where nothing is committed).
pub async fn committed_offsets(
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<i64> {
    let brokers = brokers.to_string();
    let group = group.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let mut config = KafkaSettings::new(&brokers).reader_config();
        config.set("group.id", &group);
        let consumer: BaseConsumer = config.create().expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&topic, p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed offsets");
        (0..partitions)
            .map(|p| {
                committed
                    .find_partition(&topic, p)
                    .and_then(|e| e.offset().to_raw())
                    .unwrap_or(-1)
            })
            .collect()
    })
    .await
    .expect("committed task")
}

/// One header of [`produce_raw_bytes`]: name bytes (no NUL byte) and value
/// (`None`: a null value).
pub type RawHeader<'a> = (&'a [u8], Option<&'a [u8]>);

/// Produces one record with exactly these bytes to `topic[partition]`,
/// including what rdkafka's safe API refuses to write (header names that
/// are not UTF-8), through librdkafka's `rd_kafka_produceva`, and waits for
/// its acknowledgement.
pub fn produce_raw_bytes(
    brokers: &str,
    topic: &str,
    partition: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RawHeader<'_>],
) {
    use rdkafka::bindings as rd;
    use rdkafka::producer::{BaseProducer, Producer as _};
    use std::ffi::CString;

    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .create()
        .expect("raw producer");
    let topic_c = CString::new(topic).unwrap();
    let names: Vec<CString> = headers
        .iter()
        .map(|(name, _)| CString::new(name.to_vec()).expect("no NUL in header names"))
        .collect();
    let mut vus = vec![
        rd::rd_kafka_vu_t {
            vtype: rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_TOPIC,
            u: rd::rd_kafka_vu_s__bindgen_ty_1 {
                cstr: topic_c.as_ptr(),
            },
        },
        rd::rd_kafka_vu_t {
            vtype: rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_PARTITION,
            u: rd::rd_kafka_vu_s__bindgen_ty_1 { i32_: partition },
        },
        rd::rd_kafka_vu_t {
            vtype: rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS,
            u: rd::rd_kafka_vu_s__bindgen_ty_1 {
                i: rd::RD_KAFKA_MSG_F_COPY as std::os::raw::c_int,
            },
        },
    ];
    let mem = |bytes: Option<&[u8]>| rd::rd_kafka_vu_s__bindgen_ty_1 {
        mem: rd::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 {
            ptr: bytes.map_or(std::ptr::null_mut(), |b| b.as_ptr() as *mut _),
            size: bytes.map_or(0, <[u8]>::len),
        },
    };
    vus.push(rd::rd_kafka_vu_t {
        vtype: rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_KEY,
        u: mem(key),
    });
    vus.push(rd::rd_kafka_vu_t {
        vtype: rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE,
        u: mem(value),
    });
    for ((_, value), name) in headers.iter().zip(&names) {
        vus.push(rd::rd_kafka_vu_t {
            vtype: rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_HEADER,
            u: rd::rd_kafka_vu_s__bindgen_ty_1 {
                header: rd::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_2 {
                    name: name.as_ptr(),
                    val: value.map_or(std::ptr::null(), |v| v.as_ptr().cast()),
                    size: value.map_or(0, |v| isize::try_from(v.len()).unwrap()),
                },
            },
        });
    }
    // SAFETY: every pointer in `vus` is valid for the call (librdkafka
    // copies the key, value and headers: MSG_F_COPY and header_add).
    let error =
        unsafe { rd::rd_kafka_produceva(producer.client().native_ptr(), vus.as_ptr(), vus.len()) };
    assert!(error.is_null(), "rd_kafka_produceva failed");
    producer
        .flush(Duration::from_secs(10))
        .expect("raw record acknowledged");
}

/// The low and high watermarks of `topic[partition]`: the first offset the
/// broker still keeps and the next offset it will write.
pub async fn watermarks(brokers: &str, topic: &str, partition: i32) -> (i64, i64) {
    let brokers = brokers.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = KafkaSettings::new(&brokers)
            .reader_config()
            .create()
            .expect("consumer");
        consumer
            .fetch_watermarks(&topic, partition, Duration::from_secs(10))
            .expect("watermarks")
    })
    .await
    .expect("watermarks task")
}
