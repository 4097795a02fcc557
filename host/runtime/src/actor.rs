//! Loading an actor version and calling it: validation, `InstancePre`,
//! the warm instance pool and fresh-instance isolation, deadlines, the
//! optional batch export (`handle-batch`, world `wactor:actor/actor-batch`)
//! with its fallback to single calls, and the classification of a call's
//! three possible endings (an outcome, a trap, a host-side failure).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker};
use wasmtime::{Engine, Store, StoreContextMut, UpdateDeadline};

use crate::bindings::wactor::actor::types as wit;
use crate::bindings::ActorIndices;
use crate::cache::{sha256_hex, ArtifactCache, CacheOutcome};
use crate::engine::{EngineHandle, EngineSettings};
use crate::error::{Result, RuntimeError};
use crate::host::{BatchInProgress, CallState, HostState};
use crate::http_policy::{HostAllowList, OutboundTrace};
use crate::lowering::{EventRef, Exports};
use crate::types::{
    cut_reason, ActorSettings, CallResult, Event, InstanceMode, Invocation, LogLevel, LogLine,
    Outcome, StateReader, Trap, TrapKind,
};

/// Time a call may overrun its deadline while blocked in a host call before
/// the host abandons it (CPU-bound calls are interrupted at the deadline).
const BLOCKED_CALL_GRACE: Duration = Duration::from_millis(50);

/// When the host stops waiting for a call that `arm` armed: its deadline
/// plus [`BLOCKED_CALL_GRACE`]. Read from the deadline already set, so the
/// call costs no clock read for it (`tokio::time::timeout` reads the clock).
/// The deadline is on the real clock (`std::time::Instant`): under tokio's
/// paused test clock advanced past real time, the backstop would pass at
/// once and a call that yields be abandoned; no test runs actors so.
fn backstop(instance: &WarmInstance) -> tokio::time::Instant {
    tokio::time::Instant::from_std(instance.store.data().call.deadline + BLOCKED_CALL_GRACE)
}

/// Longest trap message kept.
const MAX_TRAP_MESSAGE: usize = 2000;

/// The batch export's name (world `wactor:actor/actor-batch`).
const BATCH_EXPORT: &str = "handle-batch";

/// The batch import's instance and function.
const BATCH_INTERFACE: &str = "wactor:actor/batch@0.2.0";

/// Settings of a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Engine settings.
    pub engine: EngineSettings,
    /// Directory of compiled artifacts; `None` disables the cache.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Largest component accepted, in bytes.
    pub max_component_bytes: usize,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            engine: EngineSettings::default(),
            cache_dir: None,
            max_component_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The host's Wasm runtime: one engine, one linker, one artifact cache.
/// Cheap to share behind an `Arc`; load actors with [`Runtime::load`].
pub struct Runtime {
    engine: Arc<EngineHandle>,
    linker: Linker<HostState>,
    cache: ArtifactCache,
    max_component_bytes: usize,
}

/// How a load went, for logs, metrics and benchmarks.
#[derive(Debug, Clone, Copy)]
pub struct LoadReport {
    /// Cache hit or compiled.
    pub cache: CacheOutcome,
    /// Time spent compiling or deserializing, and pre-instantiating.
    pub duration: Duration,
}

impl Runtime {
    /// Builds the engine, the linker with every import an actor may use,
    /// and the artifact cache.
    pub fn new(settings: RuntimeSettings) -> Result<Self> {
        let engine = Arc::new(EngineHandle::new(&settings.engine)?);
        let mut linker = Linker::<HostState>::new(&engine.engine);
        let link_err = |e: wasmtime::Error| RuntimeError::Engine(format!("linker: {e:#}"));
        // WASI (cli, io, clocks, random, filesystem, sockets): the context
        // built for each instance grants none of the dangerous parts.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(link_err)?;
        use crate::bindings::wactor::actor::{config, emit, logging, state, types};
        type Me = wasmtime::component::HasSelf<HostState>;
        types::add_to_linker::<HostState, Me>(&mut linker, |s| s).map_err(link_err)?;
        logging::add_to_linker::<HostState, Me>(&mut linker, |s| s).map_err(link_err)?;
        emit::add_to_linker::<HostState, Me>(&mut linker, |s| s).map_err(link_err)?;
        state::add_to_linker::<HostState, Me>(&mut linker, |s| s).map_err(link_err)?;
        config::add_to_linker::<HostState, Me>(&mut linker, |s| s).map_err(link_err)?;
        // `wactor:actor/batch`, imported by batch actors only: one function,
        // linked by hand (the host's bindings are those of world `actor`).
        linker
            .instance(BATCH_INTERFACE)
            .and_then(|mut batch| {
                batch.func_wrap(
                    "begin-event",
                    |mut store: StoreContextMut<'_, HostState>, (index,): (u32,)| {
                        let data = store.data_mut();
                        data.begin_event(index).map_err(|message| {
                            data.call.host_error = Some(message.clone());
                            wasmtime::Error::msg(message)
                        })
                    },
                )
            })
            .map_err(link_err)?;
        let cache = ArtifactCache::new(&engine.engine, settings.cache_dir)?;
        Ok(Runtime {
            engine,
            linker,
            cache,
            max_component_bytes: settings.max_component_bytes,
        })
    }

    /// The largest component [`load`](Self::load) accepts, in bytes
    /// (`runtime.max_component`).
    pub fn max_component_bytes(&self) -> usize {
        self.max_component_bytes
    }

    /// True when the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.engine.pooling
    }

    /// True when pooled memories are reset in place from the pages the
    /// instance dirtied (Linux 6.7+ `PAGEMAP_SCAN`) rather than decommitted.
    pub fn pagemap_reset(&self) -> bool {
        self.engine.pagemap_reset
    }

    /// Checks that `bytes` is a component of the `wactor:actor` world
    /// without keeping anything: what an upload is validated with.
    pub fn validate(&self, bytes: &[u8]) -> Result<String> {
        self.load(bytes, ActorSettings::new("validation"))
            .map(|actor| actor.sha256().to_string())
    }

    /// Validates and prepares an actor version: checks the bytes, compiles
    /// (or loads the cached artifact), links it against the host's imports
    /// and checks its `handle` export.
    pub fn load(&self, bytes: &[u8], settings: ActorSettings) -> Result<LoadedActor> {
        let started = Instant::now();
        if bytes.len() > self.max_component_bytes {
            return Err(RuntimeError::TooLarge {
                size: bytes.len(),
                limit: self.max_component_bytes,
            });
        }
        check_header(bytes)?;
        let sha256 = sha256_hex(bytes);
        let (component, cache) = self.cache.load(&self.engine.engine, bytes, &sha256)?;
        let (instance_pre, handle) = self.prepare(&component)?;
        let batch = batch_export(&component)?;
        let panics_logged = !imports_stderr(&self.engine.engine, &component);
        let report = LoadReport {
            cache,
            duration: started.elapsed(),
        };
        Ok(LoadedActor {
            inner: Arc::new(ActorInner {
                engine: self.engine.clone(),
                instance_pre,
                handle,
                batch,
                panics_logged,
                allow_list: HostAllowList::new(settings.allowed_hosts.clone()),
                settings,
                sha256,
                report,
                warm: Mutex::new(Vec::new()),
                retired: std::sync::atomic::AtomicBool::new(false),
                spare_hosts: Mutex::new(Vec::new()),
            }),
        })
    }

    fn prepare(
        &self,
        component: &Component,
    ) -> Result<(InstancePre<HostState>, ComponentExportIndex)> {
        let instance_pre =
            self.linker.instantiate_pre(component).map_err(|e| {
                match older_contract(&self.engine.engine, component) {
                    Some(version) => RuntimeError::WrongWorld(format!(
                        "built for wactor:actor@{version}; rebuild against wactor-sdk 0.2 / \
                     wactor:actor@{CONTRACT_VERSION} (since 0.2.0 the contract tells a null \
                     value, a tombstone, from an empty one)"
                    )),
                    None => RuntimeError::WrongWorld(format!("{e:#}")),
                }
            })?;
        // bindgen's load-time check of `handle` (`handle-batch` is checked
        // by `batch_export`); the calls then go through `lowering::Exports`,
        // which checks both again against the borrowed event at each
        // instantiation.
        ActorIndices::new(&instance_pre)
            .map_err(|e| RuntimeError::MissingExport(format!("{e:#}")))?;
        let handle = component
            .get_export_index(None, "handle")
            .ok_or_else(|| RuntimeError::MissingExport("no `handle` export".to_string()))?;
        Ok((instance_pre, handle))
    }
}

/// The component's `handle-batch` export, if it has one, checked to be
/// `func(events: list<E>) -> list<O>` where `handle` is `func(event: E) ->
/// O` (so: `list<event>` to `list<outcome>`). A `handle-batch` of any
/// other shape refuses the component.
fn batch_export(component: &Component) -> Result<Option<ComponentExportIndex>> {
    let Some((item, index)) = component.get_export(None, BATCH_EXPORT) else {
        return Ok(None);
    };
    let wrong = |why: &str| {
        RuntimeError::WrongWorld(format!(
            "the component's `{BATCH_EXPORT}` export is not `func(events: list<event>) -> \
             list<outcome>` of world wactor:actor/actor-batch: {why}"
        ))
    };
    let ComponentItem::ComponentFunc(batch) = item else {
        return Err(wrong("it is not a function"));
    };
    let Some((ComponentItem::ComponentFunc(handle), _)) = component.get_export(None, "handle")
    else {
        return Err(wrong("the component has no `handle` function"));
    };
    let one = |mut types: Vec<Type>| (types.len() == 1).then(|| types.remove(0));
    let (Some(event), Some(outcome)) = (
        one(handle.params().map(|(_, ty)| ty).collect()),
        one(handle.results().collect()),
    ) else {
        return Err(wrong(
            "`handle` does not take one event and return one outcome",
        ));
    };
    let (Some(Type::List(events)), Some(Type::List(outcomes))) = (
        one(batch.params().map(|(_, ty)| ty).collect()),
        one(batch.results().collect()),
    ) else {
        return Err(wrong("it does not take one list and return one list"));
    };
    if events.ty() != event || outcomes.ty() != outcome {
        return Err(wrong("its lists do not hold `handle`'s event and outcome"));
    }
    Ok(Some(index))
}

/// The version of the `wactor:actor` package this host implements.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// The version of an older `wactor:actor` contract `component` imports
/// (e.g. `0.1.0`), if it imports one: every Rust guest imports at least
/// `wactor:actor/types@<version>`.
fn older_contract(engine: &Engine, component: &Component) -> Option<String> {
    let ty = component.component_type();
    let names: Vec<&str> = ty.imports(engine).map(|(name, _)| name).collect();
    older_contract_of(&names)
}

/// [`older_contract`] on import names.
fn older_contract_of(import_names: &[&str]) -> Option<String> {
    import_names.iter().find_map(|name| {
        let rest = name.strip_prefix("wactor:actor/")?;
        let (_, version) = rest.split_once('@')?;
        (version != CONTRACT_VERSION).then(|| version.to_string())
    })
}

/// Tells a component from a core module from anything else, so that the
/// error says which it is.
fn check_header(bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(RuntimeError::NotWasm(
            "the file does not start with the WebAssembly magic bytes \\0asm".into(),
        ));
    }
    match bytes[4..8] {
        [1, 0, 0, 0] => Err(RuntimeError::NotAComponent),
        [0x0d, 0, 1, 0] => Ok(()),
        _ => Err(RuntimeError::NotWasm(format!(
            "unknown WebAssembly version/layer {:02x?}",
            &bytes[4..8]
        ))),
    }
}

/// The result of [`LoadedActor::invoke_batch`].
#[derive(Debug, Clone)]
pub struct BatchInvocation {
    /// One per event, in the order of the events.
    pub invocations: Vec<Invocation>,
    /// Why a `handle-batch` call failed as a whole, when one did (the
    /// first): its events then ran again one by one, and `invocations` are
    /// theirs.
    pub fallback: Option<Trap>,
    /// `handle-batch` calls that returned their outcomes.
    pub calls: u32,
    /// Events handled by those calls (the others went through `handle`).
    pub batched_events: u32,
    /// `handle-batch` calls (or instance checkouts for one) that failed as
    /// a whole, their events run again one by one.
    pub failed_calls: u32,
}

/// One loaded, validated actor version, ready to handle events. Clones
/// share the same instance pool.
#[derive(Clone)]
pub struct LoadedActor {
    inner: Arc<ActorInner>,
}

struct ActorInner {
    engine: Arc<EngineHandle>,
    instance_pre: InstancePre<HostState>,
    /// Where `handle` is in an instance.
    handle: ComponentExportIndex,
    /// Where `handle-batch` is, for a batch actor.
    batch: Option<ComponentExportIndex>,
    /// The component has no stderr (it imports no `wasi:cli/stderr`: a
    /// lean Rust build), so a panic's message is read from its last log
    /// line ([`logged_panic`]).
    panics_logged: bool,
    settings: ActorSettings,
    allow_list: HostAllowList,
    sha256: String,
    report: LoadReport,
    /// Idle warm instances (only in `Warm` mode).
    warm: Mutex<Vec<WarmInstance>>,
    /// Set while this version is not the active one: keep no idle
    /// instances (their slots serve other versions).
    retired: std::sync::atomic::AtomicBool,
    /// Store data of finished instances, reset and ready for the next one:
    /// building a WASI context (seeding its random generators) is a large
    /// part of a fresh instance's cost, and nothing in it is visible to the
    /// guest once reset (see [`HostState::recycle`]).
    spare_hosts: Mutex<Vec<HostState>>,
}

/// Most spare host states kept per actor version.
const MAX_SPARE_HOSTS: usize = 64;

struct WarmInstance {
    store: Store<HostState>,
    /// `handle` and, for a batch actor, `handle-batch`.
    exports: Exports,
    uses: u32,
}

impl LoadedActor {
    /// The component's sha256 (hex).
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// The settings it was loaded with.
    pub fn settings(&self) -> &ActorSettings {
        &self.inner.settings
    }

    /// How loading went.
    pub fn load_report(&self) -> LoadReport {
        self.inner.report
    }

    /// Number of idle warm instances.
    pub fn idle_instances(&self) -> usize {
        self.inner.warm.lock().map(|w| w.len()).unwrap_or(0)
    }

    /// Calls the actor on one event. Never fails: traps, deadlines and
    /// limit hits are reported in the returned [`Invocation`], and the
    /// effects in it are non-empty only for a `done` outcome.
    pub async fn invoke(&self, event: &Event, state: Arc<dyn StateReader>) -> Invocation {
        self.invoke_traced(event, state, None).await
    }

    /// [`invoke`](Self::invoke), with the call's outbound HTTP requests
    /// traced as `trace` says (see [`OutboundTrace`]).
    pub async fn invoke_traced(
        &self,
        event: &Event,
        state: Arc<dyn StateReader>,
        trace: Option<OutboundTrace>,
    ) -> Invocation {
        let started = Instant::now();
        let limits = self.inner.settings.limits;
        let call = CallState::new(state, limits, started + limits.call_timeout);
        let (mut instance, fresh) = match self.checkout(call, started).await {
            Ok(checked_out) => checked_out,
            Err(failed) => return failed,
        };
        self.arm(&mut instance, fresh, started);
        instance.store.data_mut().hooks.trace = trace;
        let handle = instance.exports.handle();
        let outcome = tokio::time::timeout_at(
            backstop(&instance),
            handle.call_async(&mut instance.store, (EventRef::of(event),)),
        )
        .await;
        let result = match outcome {
            Ok(Ok((outcome,))) => CallResult::Returned(from_wit(outcome)),
            Ok(Err(err)) => CallResult::Trapped(classify(
                &err,
                &mut instance.store,
                self.inner.panics_logged,
            )),
            Err(_elapsed) => CallResult::Trapped(blocked_past_deadline(limits.call_timeout)),
        };

        let data = instance.store.data_mut();
        data.hooks.trace = None;
        let (out, out_dropped) = data.stdout.drain();
        let (err, err_dropped) = data.stderr.drain();
        let mut call = std::mem::replace(&mut data.call, CallState::idle(limits, started));
        call.push_output(LogLevel::Info, &out, out_dropped);
        call.push_output(LogLevel::Warn, &err, err_dropped);
        call.flush_dropped_logs();
        let effects = if result.is_done() {
            call.effects.into_effects()
        } else {
            Default::default()
        };
        self.check_in(instance, matches!(result, CallResult::Trapped(_)), 1);
        Invocation {
            result,
            effects,
            logs: call.logs,
            duration: started.elapsed(),
            fresh_instance: fresh,
        }
    }

    /// True when this version takes events in batches: it exports
    /// `handle-batch` (world `wactor:actor/actor-batch`) and runs in the
    /// `warm` instance mode with `max_uses_per_instance` of at least 2. In
    /// the `fresh` mode each event has an instance of its own, which a batch
    /// would break, and with one use per instance a batch could only ever
    /// hold one event; their events go one by one.
    pub fn takes_batches(&self) -> bool {
        self.inner.batch.is_some()
            && self.inner.settings.instance_mode == InstanceMode::Warm
            && self.inner.settings.max_uses_per_instance >= 2
    }

    /// Calls the actor on `events` in one `handle-batch` call, and returns
    /// one [`Invocation`] per event, in order, as [`invoke`](Self::invoke)
    /// would: each event's effects are non-empty only for its own `done`,
    /// and its log lines are its own (see `wactor:actor/batch`). `traces[i]`
    /// traces event i's outbound HTTP; it must be as long as `events`.
    ///
    /// All `events` must be of one state scope (`state` reads it): the
    /// caller batches events of one partition.
    ///
    /// A batch is one call: one instance, one deadline
    /// (`limits.call_timeout`). An instance serves at most
    /// `max_uses_per_instance` events, each event of a batch counting as
    /// one, so `events` go in as many calls (on as many instances) as that
    /// takes; with one use left an event goes through `handle`. What a
    /// call's outcomes bring into the host is bounded by the memory limit
    /// (`limits.memory_bytes`, wasmtime's hostcall fuel), however many
    /// outcomes point at the same bytes. When a call fails as a whole (a
    /// trap, the deadline, outcomes past that bound or of the wrong number,
    /// a misuse of `begin-event`, no instance slot), nothing it made is kept
    /// and each of its events runs again alone through `handle`, in order;
    /// [`BatchInvocation::fallback`] then says why (the first such failure),
    /// and each such event's logs begin with a line saying so. One event, or
    /// a version that does not [`take_batches`](Self::takes_batches), goes
    /// through `handle` directly (no fallback).
    pub async fn invoke_batch(
        &self,
        events: &[&Event],
        state: Arc<dyn StateReader>,
        traces: Vec<Option<OutboundTrace>>,
    ) -> BatchInvocation {
        if events.len() < 2 || !self.takes_batches() || traces.len() != events.len() {
            return self.one_by_one(events, state, traces, None).await;
        }
        let mut all = BatchInvocation {
            invocations: Vec::with_capacity(events.len()),
            fallback: None,
            calls: 0,
            batched_events: 0,
            failed_calls: 0,
        };
        let mut traces = traces.into_iter();
        while all.invocations.len() < events.len() {
            let rest = &events[all.invocations.len()..];
            let part = self
                .batch_on_one_instance(rest, state.clone(), &mut traces)
                .await;
            all.invocations.extend(part.invocations);
            all.calls += part.calls;
            all.batched_events += part.batched_events;
            all.failed_calls += part.failed_calls;
            if all.fallback.is_none() {
                all.fallback = part.fallback;
            }
        }
        all
    }

    /// One `handle-batch` call on one instance, of as many of `events` as
    /// the instance may still serve (`max_uses_per_instance`, each event
    /// counting as one use), taking their traces from `traces`. Returns the
    /// invocations of at least the first event, in order.
    async fn batch_on_one_instance(
        &self,
        events: &[&Event],
        state: Arc<dyn StateReader>,
        traces: &mut std::vec::IntoIter<Option<OutboundTrace>>,
    ) -> BatchInvocation {
        let started = Instant::now();
        let limits = self.inner.settings.limits;
        let call = CallState::new(state.clone(), limits, started + limits.call_timeout);
        let (mut instance, fresh) = match self.checkout(call, started).await {
            Ok(checked_out) => checked_out,
            Err(failed) => {
                let trap = match failed.result {
                    CallResult::Trapped(trap) => trap,
                    CallResult::Returned(_) => Trap {
                        kind: TrapKind::Other,
                        message: "no instance for the batch".into(),
                    },
                };
                let all = traces.by_ref().take(events.len()).collect();
                return self.one_by_one(events, state, all, Some(trap)).await;
            }
        };
        let room = self
            .inner
            .settings
            .max_uses_per_instance
            .saturating_sub(instance.uses)
            .max(1);
        let events = &events[..events
            .len()
            .min(usize::try_from(room).unwrap_or(usize::MAX))];
        let these: Vec<_> = traces.by_ref().take(events.len()).collect();
        let handle_batch = match instance.exports.batch() {
            Some(handle_batch) if events.len() >= 2 => handle_batch,
            // One use left (or no export after all): the event goes
            // through `handle`, most likely on this same instance, which
            // keeps no reader of the store while it waits.
            _ => {
                instance.store.data_mut().call = CallState::idle(limits, started);
                self.check_in(instance, false, 0);
                return self.one_by_one(events, state, these, None).await;
            }
        };
        instance.store.data_mut().call.batch = Some(Box::new(BatchInProgress::new(these.clone())));
        self.arm(&mut instance, fresh, started);
        let views: Vec<EventRef<'_>> = events.iter().map(|event| EventRef::of(event)).collect();
        let returned = tokio::time::timeout_at(
            backstop(&instance),
            handle_batch.call_async(&mut instance.store, (views.as_slice(),)),
        )
        .await;
        let failure = match returned {
            Ok(Ok((outcomes,))) => {
                match self.batch_result(&mut instance, events.len(), outcomes, fresh, started) {
                    Ok(invocations) => {
                        let uses = u32::try_from(invocations.len()).unwrap_or(u32::MAX);
                        self.check_in(instance, false, uses);
                        return BatchInvocation {
                            invocations,
                            fallback: None,
                            calls: 1,
                            batched_events: uses,
                            failed_calls: 0,
                        };
                    }
                    Err(trap) => trap,
                }
            }
            Ok(Err(err)) => classify(&err, &mut instance.store, self.inner.panics_logged),
            Err(_elapsed) => blocked_past_deadline(limits.call_timeout),
        };
        // What the guest wrote to stderr says why (a Python traceback, say):
        // its last lines go with the reason. Whatever else the batch made is
        // dropped with its instance, as after any trap.
        let data = instance.store.data_mut();
        let (stderr, _) = data.stderr.drain();
        // A trap's classification moved stderr into the call's log lines.
        let mut output: Vec<u8> = Vec::new();
        for line in &data.call.logs {
            output.extend_from_slice(line.message.as_bytes());
            output.push(b'\n');
        }
        output.extend_from_slice(&stderr);
        drop(instance);
        let failure = with_stderr_tail(failure, &output);
        self.one_by_one(events, state, these, Some(failure)).await
    }

    /// The per-event invocations of a batch that returned `outcomes`, or
    /// why the batch failed after all (outcomes of the wrong number, effects
    /// that belong to no event).
    fn batch_result(
        &self,
        instance: &mut WarmInstance,
        len: usize,
        outcomes: Vec<wit::Outcome>,
        fresh: bool,
        started: Instant,
    ) -> Result<Vec<Invocation>, Trap> {
        let limits = self.inner.settings.limits;
        let data = instance.store.data_mut();
        data.hooks.trace = None;
        let begun = data.call.batch.as_ref().is_some_and(|b| b.begun());
        let fail = |message: String| {
            Err(Trap {
                kind: TrapKind::Other,
                message,
            })
        };
        if outcomes.len() != len {
            return fail(format!(
                "handle-batch returned {} outcomes for {len} events",
                outcomes.len()
            ));
        }
        let unowned =
            !data.call.effects.emits.is_empty() || !data.call.effects.state_writes.is_empty();
        if !begun && unowned {
            return fail(
                "handle-batch made emits or state writes without calling batch.begin-event: \
                 they belong to no event"
                    .into(),
            );
        }
        data.finish_event_part();
        // Output and log lines outside any event (no `begin-event` at all)
        // go to the first event.
        let (out, out_dropped) = data.stdout.drain();
        let (err, err_dropped) = data.stderr.drain();
        let mut call = std::mem::replace(&mut data.call, CallState::idle(limits, started));
        call.push_output(LogLevel::Info, &out, out_dropped);
        call.push_output(LogLevel::Warn, &err, err_dropped);
        call.flush_dropped_logs();
        let share = started.elapsed() / u32::try_from(len).unwrap_or(u32::MAX);
        let mut invocations: Vec<Invocation> = outcomes
            .into_iter()
            .enumerate()
            .map(|(i, outcome)| Invocation {
                result: CallResult::Returned(from_wit(outcome)),
                effects: Default::default(),
                logs: Vec::new(),
                duration: share,
                fresh_instance: fresh && i == 0,
            })
            .collect();
        if let Some(batch) = call.batch.take() {
            for part in batch.parts {
                if let Some(invocation) = invocations.get_mut(part.index as usize) {
                    if invocation.result.is_done() {
                        invocation.effects = part.effects.into_effects();
                    }
                    invocation.logs = part.logs;
                    invocation.duration = part.duration;
                }
            }
        }
        if !call.logs.is_empty() {
            if let Some(first) = invocations.first_mut() {
                call.logs.append(&mut first.logs);
                first.logs = call.logs;
            }
        }
        Ok(invocations)
    }

    /// Each of `events` through `handle`, in order; after a failed batch,
    /// each one's logs begin with a line that says so.
    async fn one_by_one(
        &self,
        events: &[&Event],
        state: Arc<dyn StateReader>,
        traces: Vec<Option<OutboundTrace>>,
        fallback: Option<Trap>,
    ) -> BatchInvocation {
        // Side by side, as the events of a batch could have run (distinct
        // lanes): a slow event or one that runs into its deadline does not
        // hold up the others.
        let calls = events.iter().zip(traces).map(|(event, trace)| {
            let state = state.clone();
            async move { self.invoke_traced(event, state, trace).await }
        });
        let mut invocations = futures_util::future::join_all(calls).await;
        if let Some(trap) = &fallback {
            for invocation in &mut invocations {
                invocation.logs.insert(
                    0,
                    crate::types::LogLine {
                        level: LogLevel::Warn,
                        message: cut_reason(format!(
                            "the batch of {} events this event came in failed ({trap}); the \
                             event ran again on its own",
                            events.len()
                        )),
                    },
                );
            }
        }
        BatchInvocation {
            failed_calls: u32::from(fallback.is_some()),
            invocations,
            fallback,
            calls: 0,
            batched_events: 0,
        }
    }

    /// A warm instance with `call` in it, or a new one (and whether it is
    /// new). `Err` is the finished invocation of a call that got no
    /// instance (instantiation trapped, or no slot until the deadline).
    async fn checkout(
        &self,
        call: CallState,
        started: Instant,
    ) -> Result<(WarmInstance, bool), Invocation> {
        if let Some(mut warm) = self.take_warm() {
            warm.store.data_mut().call = call;
            return Ok((warm, false));
        }
        let deadline = started + self.inner.settings.limits.call_timeout;
        // Boxed: instantiation's future is large, and unboxed it would make
        // every call's future (a warm one too) that much larger to allocate
        // and move.
        match Box::pin(self.instantiate_waiting(call, deadline)).await {
            Ok(instance) => Ok((instance, true)),
            Err((trap, mut call)) => Err(Invocation {
                result: CallResult::Trapped(trap),
                effects: Default::default(),
                logs: std::mem::take(&mut call.logs),
                duration: started.elapsed(),
                fresh_instance: true,
            }),
        }
    }

    /// Sets the call's deadline on `instance`. It counts from the start of
    /// the call proper: after the instantiation for a fresh instance (a
    /// warm one was taken at once, so no second clock read for it).
    fn arm(&self, instance: &mut WarmInstance, fresh: bool, started: Instant) {
        let call_started = if fresh { Instant::now() } else { started };
        let timeout = self.inner.settings.limits.call_timeout;
        instance.store.data_mut().call.deadline = call_started + timeout;
        instance.store.set_epoch_deadline(1);
    }

    /// Hands `instance` back after a call that handled `events` events
    /// (each counts as a use, also in a batch): kept warm, or ended (its
    /// store data recycled). A trapped instance is never reused, nor is its
    /// store data: the call may have been abandoned in the middle of a host
    /// call.
    fn check_in(&self, mut instance: WarmInstance, trapped: bool, events: u32) {
        if trapped {
            return;
        }
        instance.uses = instance.uses.saturating_add(events);
        if let Some(retired) = self.return_warm(instance) {
            self.recycle(retired);
        }
    }

    fn take_warm(&self) -> Option<WarmInstance> {
        if self.inner.settings.instance_mode != InstanceMode::Warm {
            return None;
        }
        self.inner.warm.lock().ok()?.pop()
    }

    /// Keeps `instance` for reuse if the mode and limits allow; otherwise
    /// hands it back.
    fn return_warm(&self, instance: WarmInstance) -> Option<WarmInstance> {
        let settings = &self.inner.settings;
        if settings.instance_mode != InstanceMode::Warm
            || instance.uses >= settings.max_uses_per_instance
            || self
                .inner
                .retired
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Some(instance);
        }
        match self.inner.warm.lock() {
            Ok(mut warm) if warm.len() < settings.max_idle_instances => {
                warm.push(instance);
                None
            }
            _ => Some(instance),
        }
    }

    /// Ends an instance that finished its call normally, keeping its store
    /// data for the next instance. Dropping the store returns the instance's
    /// slot, memory and stack to the allocator.
    fn recycle(&self, instance: WarmInstance) {
        if !self.inner.engine.recycle_host_state {
            return;
        }
        let mut host = instance.store.into_data();
        host.recycle();
        if let Ok(mut spares) = self.inner.spare_hosts.lock() {
            if spares.len() < MAX_SPARE_HOSTS {
                spares.push(host);
            }
        }
    }

    /// A host state for a new instance: a recycled one, or a new one.
    fn host_state(&self, call: CallState) -> HostState {
        let inner = &*self.inner;
        let spare = inner
            .spare_hosts
            .lock()
            .ok()
            .and_then(|mut spares| spares.pop());
        match spare {
            Some(mut host) => {
                host.call = call;
                host
            }
            None => HostState::new(
                inner.settings.config.clone(),
                inner.allow_list.clone(),
                inner.settings.limits.memory_bytes,
                call,
            ),
        }
    }

    /// [`instantiate`](Self::instantiate), waiting while every instance
    /// slot of the pooling allocator is taken (other calls end and free
    /// theirs), until `deadline`. A full pool is the host's limit, not the
    /// actor's failure: the call waits for a slot like it waits for a
    /// worker, and only a pool that stays full past the deadline ends it.
    async fn instantiate_waiting(
        &self,
        mut call: CallState,
        deadline: Instant,
    ) -> Result<WarmInstance, (Trap, CallState)> {
        let mut pause = Duration::from_millis(1);
        loop {
            match self.instantiate(call).await {
                Err((trap, back)) if trap.kind == TrapKind::PoolExhausted => {
                    if Instant::now() + pause >= deadline {
                        return Err((trap, back));
                    }
                    call = back;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// Marks this version retired (no longer active) or active again. A
    /// retired version keeps no idle warm instances: those it has are
    /// dropped now, returning their instance slots to the pool, and
    /// instances of its calls still running are dropped when they end.
    /// Returns how many idle instances were dropped.
    pub fn set_retired(&self, retired: bool) -> usize {
        self.inner
            .retired
            .store(retired, std::sync::atomic::Ordering::Relaxed);
        if !retired {
            return 0;
        }
        match self.inner.warm.lock() {
            Ok(mut warm) => {
                let released = warm.len();
                warm.clear();
                released
            }
            Err(_) => 0,
        }
    }

    /// Creates a store and instance. On failure returns the trap and the
    /// call state (with any output the guest wrote while starting).
    async fn instantiate(&self, call: CallState) -> Result<WarmInstance, (Trap, CallState)> {
        let inner = &*self.inner;
        let host = self.host_state(call);
        let mut store = Store::new(&inner.engine.engine, host);
        store.limiter(|s| &mut s.limiter);
        // What one crossing may copy out of the guest into the host (a host
        // call's arguments, an export's results): at most the guest's
        // memory limit, however often its values point at the same bytes.
        // Past it the crossing traps. wasmtime's default is 128 MiB, and a
        // `handle-batch` whose outcomes all name one large string would
        // have the host copy that string once per outcome.
        store.set_hostcall_fuel(hostcall_fuel(inner.settings.limits.memory_bytes));
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().call.deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        let instantiated = async {
            let instance = inner.instance_pre.instantiate_async(&mut store).await?;
            Exports::load(&mut store, &instance, &inner.handle, inner.batch.as_ref())
        };
        match instantiated.await {
            Ok(exports) => Ok(WarmInstance {
                store,
                exports,
                uses: 0,
            }),
            Err(err) => {
                let trap = classify(&err, &mut store, inner.panics_logged);
                let data = store.into_data();
                let mut call = data.call;
                let (err_out, dropped) = data.stderr.drain();
                call.push_output(LogLevel::Warn, &err_out, dropped);
                Err((
                    Trap {
                        kind: trap.kind,
                        message: format!("instantiation failed: {}", trap.message),
                    },
                    call,
                ))
            }
        }
    }

    /// The engine this actor was compiled for.
    #[doc(hidden)]
    pub fn engine(&self) -> &Engine {
        &self.inner.engine.engine
    }
}

/// The trap of a call still blocked in a host call past its deadline.
fn blocked_past_deadline(timeout: Duration) -> Trap {
    Trap {
        kind: TrapKind::Deadline,
        message: format!(
            "the call was still blocked after its {} ms deadline",
            timeout.as_millis()
        ),
    }
}

/// Turns a call error into a classified trap. The guest's stderr (where a
/// Rust panic writes its message) is the best description of a panic; for
/// a component without a stderr (`panics_logged`, a lean Rust build) it is
/// the panic hook's log line ([`logged_panic`]).
fn classify(err: &wasmtime::Error, store: &mut Store<HostState>, panics_logged: bool) -> Trap {
    if err
        .chain()
        .any(|cause| cause.is::<wasmtime::PoolConcurrencyLimitError>())
    {
        return Trap {
            kind: TrapKind::PoolExhausted,
            message: format!("every instance slot of the host is in use: {err:#}"),
        };
    }
    let data = store.data_mut();
    if data.limiter.hit {
        data.limiter.hit = false;
        return Trap {
            kind: TrapKind::MemoryLimit,
            message: format!(
                "the instance tried to grow its memory past {} bytes",
                data.call.limits.memory_bytes
            ),
        };
    }
    if let Some(message) = data.call.host_error.take() {
        return Trap {
            kind: TrapKind::Other,
            message,
        };
    }
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        // `exit()`/`os._exit()`/`process.exit()` in the guest: wasi:cli's
        // exit ends the call (WASI p2 reports only success or failure, so
        // any non-zero status arrives as 1).
        return Trap {
            kind: TrapKind::Other,
            message: format!(
                "the actor exited (status {}) instead of returning an outcome",
                exit.0
            ),
        };
    }
    let trap = err.downcast_ref::<wasmtime::Trap>().copied();
    match trap {
        Some(wasmtime::Trap::Interrupt) => Trap {
            kind: TrapKind::Deadline,
            message: format!(
                "the call ran past its {} ms deadline and was interrupted",
                data.call.limits.call_timeout.as_millis()
            ),
        },
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            // Peek at stderr without consuming it: the caller drains it
            // into the logs afterwards.
            let (stderr, dropped) = data.stderr.drain();
            let text = String::from_utf8_lossy(&stderr).to_string();
            let message = panic_message(&text)
                .or_else(|| {
                    panics_logged
                        .then(|| logged_panic(&data.call.logs))
                        .flatten()
                })
                .unwrap_or_else(|| "the guest executed `unreachable` (an abort)".into());
            data.call
                .push_output(LogLevel::Warn, text.as_bytes(), dropped);
            Trap {
                kind: TrapKind::Panic,
                message,
            }
        }
        Some(other) => Trap {
            kind: TrapKind::Other,
            message: other.to_string(),
        },
        None => Trap {
            kind: TrapKind::Other,
            message: truncate(format!("{err:#}")),
        },
    }
}

/// Extracts "panicked at …: message" from a Rust guest's stderr.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at")?;
    let text: Vec<&str> = stderr[start..]
        .lines()
        .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    Some(truncate(text.join(" ").trim().to_string()))
}

/// The panic message a lean Rust guest logged: it has no stderr, so the
/// SDK's panic hook logs `panicked at …` at error level just before the
/// abort (`wactor_sdk`'s `lean` module). Only the call's last log line is
/// read, and only when it *starts* with `panicked at ` (the hook's format),
/// so an error line that merely quotes such text (a payload, say) is not
/// taken for one; the caller asks only for components without a stderr. A
/// call that had used up `limits.max_log_lines` or `max_log_bytes` loses
/// the line, and the trap then says only that the guest aborted.
fn logged_panic(logs: &[LogLine]) -> Option<String> {
    logs.last()
        .filter(|line| line.level == LogLevel::Error && line.message.starts_with("panicked at "))
        .and_then(|line| panic_message(&line.message))
}

/// True when `component` imports `wasi:cli/stderr` (any version): its
/// panics write their message there.
fn imports_stderr(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, _)| name.starts_with("wasi:cli/stderr@"))
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_TRAP_MESSAGE {
        let mut cut = MAX_TRAP_MESSAGE;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn from_wit(outcome: wit::Outcome) -> Outcome {
    match outcome {
        wit::Outcome::Done => Outcome::Done,
        // Reasons enter the host here, and only here: an actor controls
        // their length, so they are cut before anything stores them.
        wit::Outcome::Retry(retry) => Outcome::Retry {
            reason: cut_reason(retry.reason),
            delay: retry.delay_ms.map(Duration::from_millis),
        },
        wit::Outcome::Dead(reason) => Outcome::Dead {
            reason: cut_reason(reason),
        },
    }
}

/// `trap` with the last 1 KiB of `stderr` (the guest's output and log
/// lines of a failed batch call, lossy UTF-8) after its message, when there
/// is any.
fn with_stderr_tail(mut trap: Trap, stderr: &[u8]) -> Trap {
    const TAIL: usize = 1024;
    let text = String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(TAIL)..]);
    let text = text.trim();
    if !text.is_empty() {
        trap.message = format!("{}; stderr: {text}", trap.message);
    }
    trap
}

/// The hostcall fuel of an instance whose linear memory may grow to
/// `memory_bytes`: wasmtime's bound on the bytes one crossing copies from
/// the guest into the host.
fn hostcall_fuel(memory_bytes: u64) -> usize {
    usize::try_from(memory_bytes).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_tells_modules_components_and_garbage_apart() {
        assert!(matches!(
            check_header(b"hello world"),
            Err(RuntimeError::NotWasm(_))
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0rest"),
            Err(RuntimeError::NotAComponent)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0rest").is_ok());
        assert!(matches!(
            check_header(b"\0asm\x02\0\0\0"),
            Err(RuntimeError::NotWasm(_))
        ));
    }

    #[test]
    fn imports_of_an_older_contract_are_recognised_by_version() {
        assert_eq!(
            older_contract_of(&["wasi:io/streams@0.2.0", "wactor:actor/types@0.1.0"]).as_deref(),
            Some("0.1.0")
        );
        assert_eq!(
            older_contract_of(&["wactor:actor/types@0.2.0", "wactor:actor/emit@0.2.0"]),
            None
        );
        assert_eq!(older_contract_of(&["wasi:cli/stdout@0.2.0"]), None);
    }

    #[test]
    fn panic_message_is_extracted_from_rust_stderr() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:9:5:\nfixture trap: boom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("panicked at src/lib.rs:9:5: fixture trap: boom")
        );
        assert_eq!(panic_message("nothing here"), None);
    }

    #[test]
    fn a_logged_panic_is_the_last_line_an_error_that_begins_with_panicked_at() {
        let line = |level, message: &str| LogLine {
            level,
            message: message.to_string(),
        };
        let hook = "panicked at src/lib.rs:9:5:\nboom";
        assert_eq!(
            logged_panic(&[line(LogLevel::Error, hook)]).as_deref(),
            Some("panicked at src/lib.rs:9:5: boom")
        );
        // Text that only quotes a panic (a payload in an error line) is not
        // one; nor is a line before the last, or one of another level.
        let quoted = "upstream said: thread 'main' panicked at foo.rs:1:1: boom";
        assert_eq!(logged_panic(&[line(LogLevel::Error, quoted)]), None);
        assert_eq!(
            logged_panic(&[line(LogLevel::Error, hook), line(LogLevel::Info, "x")]),
            None
        );
        assert_eq!(logged_panic(&[line(LogLevel::Warn, hook)]), None);
        assert_eq!(logged_panic(&[]), None);
    }
}
