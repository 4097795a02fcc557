//! Running a host: build the runtime, store, producer, metrics and
//! registry from a [`HostConfig`], start the actors, serve the admin API,
//! and drain everything on Ctrl-C or SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use wactor_api::{ApiState, Auth};
use wactor_kafka::{Clock, Producer, SystemClock};
use wactor_manifest::{ActorManifest, ManifestError};
use wactor_metrics::Metrics;
use wactor_registry::cluster::HostIdentity;
use wactor_registry::{HostParts, Registry, Upload};
use wactor_runtime::{EngineSettings, Runtime, RuntimeSettings};
use wactor_store::Store;

use crate::config::HostConfig;

/// How often the gauges that come from the store are refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(10);

/// A running host, before it is told to stop.
pub struct Host {
    /// The control plane.
    pub registry: Arc<Registry>,
    /// Where the admin API listens.
    pub api_addr: std::net::SocketAddr,
    api_task: tokio::task::JoinHandle<std::io::Result<()>>,
    api_stop: tokio::sync::oneshot::Sender<()>,
    producer: Producer,
    store: Store,
}

impl Host {
    /// Builds and starts a host: every actor of the store (and of
    /// `actors_dir`) runs and the API listens when this returns. The
    /// dashboard's series are sampled every 10 s (`WACTOR_SERIES_STEP`
    /// sets another step).
    pub async fn start(config: &HostConfig) -> Result<Self> {
        Self::start_with_series_step(config, wactor_api::series::DEFAULT_STEP).await
    }

    /// [`start`](Self::start) with the series sampled every
    /// `series_step` unless `WACTOR_SERIES_STEP` says otherwise.
    pub async fn start_with_series_step(
        config: &HostConfig,
        series_step: Duration,
    ) -> Result<Self> {
        let series_step = wactor_api::series::step_from_env(series_step)?;
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let store = Store::open(&config.data_dir.join("store"))
            .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
        let runtime = Runtime::new(RuntimeSettings {
            engine: EngineSettings {
                pool_instances: config.runtime.pool_instances,
                max_memory_bytes: config.runtime.max_memory.0,
                ..EngineSettings::default()
            },
            cache_dir: Some(
                config
                    .runtime
                    .cache_dir
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join("artifacts")),
            ),
            max_component_bytes: usize::try_from(config.runtime.max_component.0)
                .unwrap_or(usize::MAX),
        })
        .context("cannot start the Wasm runtime")?;
        if !runtime.pooling() {
            tracing::warn!(
                "the pooling allocator is unavailable here; instances are allocated on demand"
            );
        }
        let producer = Producer::new(&config.kafka).context("cannot create the Kafka producer")?;
        let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
        // The exporter starts before the host (in `main`); its failures are
        // read at each scrape.
        metrics
            .trace_export_failures_total
            .set_source(wactor_telemetry::export_failures);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let registry = Arc::new(Registry::new(HostParts {
            store: store.clone(),
            runtime: Arc::new(runtime),
            producer: producer.clone(),
            metrics: metrics.clone(),
            kafka: config.kafka.clone(),
            clock,
        }));
        if config.kafka.shared_registry {
            registry
                .attach_shared(&config.kafka.registry_topic)
                .await
                .with_context(|| {
                    format!(
                        "cannot join the shared registry {}",
                        config.kafka.registry_topic
                    )
                })?;
        }
        registry
            .start_all()
            .await
            .context("cannot start the actors in the store")?;
        if config.kafka.shared_registry {
            tokio::spawn(registry.clone().apply_shared());
        }
        if let Some(dir) = &config.actors_dir {
            let deployed = if config.kafka.shared_registry {
                // Bounded: with the brokers down a deploy would wait for the
                // producer's message timeout (5 minutes) before the API
                // listens.
                tokio::time::timeout(ACTORS_DIR_WAIT, deploy_dir(&registry, dir))
                    .await
                    .unwrap_or_else(|_| {
                        Err(anyhow::anyhow!(
                            "the registry log did not take the deploy within {ACTORS_DIR_WAIT:?}"
                        ))
                    })
            } else {
                deploy_dir(&registry, dir).await
            };
            if let Err(err) = deployed {
                if !config.kafka.shared_registry {
                    return Err(err);
                }
                // The registry log is unreachable (brokers down): keep
                // trying in the background, the host serves meanwhile.
                tracing::warn!(error = %format!("{err:#}"), "cannot deploy the actors directory yet; retrying every 5s");
                tokio::spawn(deploy_dir_until_done(
                    Arc::downgrade(&registry),
                    dir.clone(),
                ));
            }
        }

        tokio::spawn(refresh_gauges(registry.clone()));
        tokio::spawn(sweep_dead_letters(Arc::downgrade(&registry)));
        tokio::spawn(restart_failed(Arc::downgrade(&registry)));

        let listener = tokio::net::TcpListener::bind(config.api.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.api.listen))?;
        let api_addr = listener.local_addr()?;
        if config.kafka.shared_registry {
            let identity = HostIdentity {
                name: host_name(api_addr),
                api: api_addr.to_string(),
            };
            registry
                .attach_cluster_view(&config.kafka.registry_topic, identity)
                .await
                .context("cannot join the cluster view")?;
            tokio::spawn(heartbeat(Arc::downgrade(&registry)));
        }
        let series = Arc::new(wactor_api::series::Series::new(series_step));
        tokio::spawn(wactor_api::series::run_sampler(
            series.clone(),
            metrics.clone(),
            Arc::downgrade(&registry),
        ));
        let state = ApiState {
            registry: registry.clone(),
            metrics,
            series,
            auth: Auth {
                tokens: config.resolved_tokens()?,
            },
            max_request_bytes: usize::try_from(config.api.max_request.0).unwrap_or(usize::MAX),
        };
        let (api_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let api_task = tokio::spawn(wactor_api::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        tracing::info!(api = %api_addr, "host started");
        Ok(Host {
            registry,
            api_addr,
            api_task,
            api_stop,
            producer,
            store,
        })
    }

    /// Stops the API, drains every actor (running calls finish within the
    /// drain bound, offsets are committed), flushes the producer and the
    /// store.
    pub async fn stop(self) -> Result<()> {
        begin_shutdown();
        let _ = self.api_stop.send(());
        self.registry.leave_cluster_view().await;
        self.registry.shutdown().await;
        match self.api_task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "admin API ended with an error"),
            Err(err) => tracing::warn!(error = %err, "admin API task failed"),
        }
        if let Err(err) = self.producer.flush(Duration::from_secs(10)) {
            tracing::warn!(error = %err, "producer not fully flushed");
        }
        self.store.flush().context("cannot flush the store")?;
        tracing::info!("host stopped");
        Ok(())
    }
}

/// The name this host shows in the cluster view: `$HOSTNAME:<API port>`,
/// or the API address when `HOSTNAME` is not set.
fn host_name(api: std::net::SocketAddr) -> String {
    match std::env::var("HOSTNAME") {
        Ok(name) if !name.trim().is_empty() => format!("{}:{}", name.trim(), api.port()),
        _ => api.to_string(),
    }
}

/// Writes this host's heartbeat every
/// [`HEARTBEAT_INTERVAL`](wactor_registry::cluster::HEARTBEAT_INTERVAL),
/// for as long as the registry lives.
async fn heartbeat(registry: std::sync::Weak<Registry>) {
    let mut tick = tokio::time::interval(wactor_registry::cluster::HEARTBEAT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        match registry.heartbeat().await {
            Ok(()) => failing = false,
            Err(err) => {
                if !failing {
                    tracing::warn!(error = %err, "cannot write this host's heartbeat; retrying");
                }
                failing = true;
            }
        }
    }
}

/// How long a host's start waits for its actors directory to be deployed
/// through the registry log before it goes on and retries in the
/// background: 15 s.
const ACTORS_DIR_WAIT: Duration = Duration::from_secs(15);

/// Deploys `dir` every 5 s until a deploy of every file in it succeeds
/// (for as long as the registry lives).
async fn deploy_dir_until_done(registry: std::sync::Weak<Registry>, dir: std::path::PathBuf) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        match deploy_dir(&registry, &dir).await {
            Ok(names) => {
                tracing::info!(actors = ?names, "actors directory deployed");
                return;
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot deploy the actors directory yet; retrying")
            }
        }
    }
}

/// Keeps the store-derived gauges fresh for as long as the registry lives.
async fn refresh_gauges(registry: Arc<Registry>) {
    let mut tick = tokio::time::interval(GAUGE_INTERVAL);
    loop {
        tick.tick().await;
        if Arc::strong_count(&registry) == 1 {
            // The host is gone.
            return;
        }
        let registry = registry.clone();
        let result = tokio::task::spawn_blocking(move || {
            registry.refresh_gauges().map_err(|e| e.to_string())
        })
        .await;
        if let Ok(Err(err)) = result {
            tracing::warn!(error = %err, "cannot refresh the store gauges");
        }
    }
}

/// Retries the start of actors whose consumer failed to start, every
/// [`RESTART_FAILED_INTERVAL`](wactor_registry::registry::RESTART_FAILED_INTERVAL),
/// for as long as the registry lives (a weak reference).
async fn restart_failed(registry: std::sync::Weak<Registry>) {
    let mut tick = tokio::time::interval(wactor_registry::registry::RESTART_FAILED_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        registry.restart_failed().await;
    }
}

/// Applies dead-letter retention every
/// [`DEAD_LETTER_SWEEP_INTERVAL`](wactor_registry::dead_letters::DEAD_LETTER_SWEEP_INTERVAL),
/// the first time at start, for as long as the registry lives (a weak
/// reference: the sweep does not keep the host alive).
async fn sweep_dead_letters(registry_weak: std::sync::Weak<Registry>) {
    let mut tick = tokio::time::interval(wactor_registry::dead_letters::DEAD_LETTER_SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(registry) = registry_weak.upgrade() else {
            return;
        };
        let result = tokio::task::spawn_blocking(move || {
            registry
                .sweep_dead_letters()
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
        if let Ok(Err(err)) = result {
            tracing::warn!(error = %err, "cannot apply dead-letter retention");
        }
        let Some(registry) = registry_weak.upgrade() else {
            return;
        };
        if let Err(err) = registry.republish_dead_letters().await {
            tracing::warn!(error = %err, "cannot publish dead letters to the cluster");
        }
    }
}

/// Deploys every manifest of `dir` ([`manifests_in`]'s rule).
/// An unchanged manifest and component is not deployed again, and a
/// version that exists already is not activated again (a host started with
/// an older directory does not undo a deploy made since).
pub async fn deploy_dir(registry: &Registry, dir: &Path) -> Result<Vec<String>> {
    let mut deployed = Vec::new();
    for path in manifests_in(dir)? {
        deployed.push(deploy_file(registry, &path, true).await?);
    }
    Ok(deployed)
}

/// Deploys one manifest file and the component it names, and activates
/// it; with `only_if_new`, only when the version is new or nothing is
/// active (a host's start: see [`Registry::deploy_if_new`]). Every error
/// names the manifest file.
pub async fn deploy_file(registry: &Registry, path: &Path, only_if_new: bool) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the manifest {}", path.display()))?;
    let manifest = ActorManifest::parse(&text).map_err(|e| ManifestError::in_file(path, e))?;
    deploy_parsed(registry, path, &text, manifest, only_if_new)
        .await
        .with_context(|| format!("cannot deploy {}", path.display()))
}

async fn deploy_parsed(
    registry: &Registry,
    path: &Path,
    text: &str,
    manifest: ActorManifest,
    only_if_new: bool,
) -> Result<String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let component = manifest
        .component_path(dir)
        .with_context(|| format!("{} does not name a `component`", path.display()))?;
    let bytes = std::fs::read(&component)
        .with_context(|| format!("cannot read the component {}", component.display()))?;
    let upload = Upload {
        manifest_toml: text,
        component: &bytes,
        uploaded_by: "actors_dir",
        notes: &path.display().to_string(),
        activate: true,
    };
    let deployed = if only_if_new {
        registry.deploy_if_new(upload).await?
    } else {
        registry.deploy(upload).await?
    };
    tracing::info!(
        actor = %manifest.name,
        version = deployed.version.version,
        created = deployed.created,
        "deployed from {}",
        path.display()
    );
    Ok(manifest.name)
}

/// The manifest files of a directory, sorted: `dir/actor.toml` if it
/// exists, else `dir/*/actor.toml` and `dir/*.actor.toml`
/// ([`wactor_manifest::discover`]). Other `*.toml` files of `dir` are
/// not read; each is named in a WARN.
pub fn manifests_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let found = wactor_manifest::discover::manifests_in(dir)?;
    for path in &found.ignored {
        tracing::warn!(
            file = %path.display(),
            "not read as an actor manifest: manifests are named actor.toml (one per directory) \
             or NAME.actor.toml; rename it to deploy it"
        );
    }
    Ok(found.manifests)
}

/// Set once the host begins to shut down (a signal came, or
/// [`Host::stop`] began): from then on librdkafka's own warnings and errors
/// are not shown ([`quieted_while_stopping`]).
static SHUTTING_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn begin_shutdown() {
    SHUTTING_DOWN.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Whether a log event is one of librdkafka's warnings or errors emitted
/// while the host shuts down, which the log does not show.
///
/// A clean shutdown closes Kafka clients whose broker connections go down
/// on the way: the registry log and dead-letter readers (stopped by a flag
/// their threads see within a poll), the producer, and under `wactor dev`
/// every client whose in-process broker stops with the process. librdkafka
/// reports each lost connection at ERROR, twice: its log line (`FAIL ...
/// Connect to ... failed: Connection refused`, target `librdkafka`) and
/// its error callback (`Global error: AllBrokersDown` /
/// `BrokerTransportFailure`, target `rdkafka::client`, rdkafka's default
/// client context). Those say nothing about the shutdown, which wactor's
/// own lines report (a commit or flush that fails is logged by wactor).
/// librdkafka's lines below WARN stay as the log filter says.
pub fn quieted_while_stopping(metadata: &tracing::Metadata<'_>) -> bool {
    SHUTTING_DOWN.load(std::sync::atomic::Ordering::Relaxed)
        && matches!(metadata.target(), "librdkafka" | "rdkafka::client")
        && *metadata.level() <= tracing::Level::WARN
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    ShutdownSignal::install().recv().await;
}

/// Ctrl-C and SIGTERM, listened for from [`ShutdownSignal::install`] on: a
/// signal that comes while the host is still starting (compiling actors,
/// checking topics) is kept and ends the host once it has started, instead
/// of killing the process with the signal's default action.
pub struct ShutdownSignal {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    /// Replaces the default actions of SIGTERM and SIGINT (Ctrl-C) from now
    /// on. A signal that cannot be listened for keeps its default action.
    /// Call it inside the tokio runtime.
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            ShutdownSignal {
                term: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            ShutdownSignal {}
        }
    }

    /// Resolves on the first SIGTERM or Ctrl-C since [`install`](Self::install).
    pub async fn recv(self) {
        #[cfg(unix)]
        {
            async fn next(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(self.term) => {}
                () = next(self.interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        begin_shutdown();
    }
}
