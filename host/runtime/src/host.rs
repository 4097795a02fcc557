//! The store data of one actor instance, and the host side of the
//! `wactor:actor` imports (logging, emit, state, config).
//!
//! An instance's [`HostState`] lives as long as the instance; the part that
//! belongs to one call ([`CallState`]: pending effects, logs, the state
//! reader) is replaced before every call and taken back after it. Effects
//! are only collected here; whether they are applied is decided by the
//! caller from the outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::wactor::actor::{config, emit, logging, state, types as wit};
use crate::http_policy::HostAllowList;
use crate::output::OutputCapture;
use crate::types::{
    Effects, EmittedRecord, EmptyState, Limits, LogLevel, LogLine, StateReader, StateWrite,
};

/// Longest log line kept, in bytes; longer lines are cut.
const MAX_LOG_LINE_BYTES: usize = 4096;

/// Store data of one instance.
pub(crate) struct HostState {
    /// WASI context: no preopens, no env, no network; stdio captured.
    wasi: WasiCtx,
    /// wasi:http context.
    http: WasiHttpCtx,
    /// Resources handed to the guest (streams, requests, pollables).
    table: ResourceTable,
    /// Which hosts outbound HTTP may reach.
    allow_list: HostAllowList,
    /// Memory limit enforcement.
    pub(crate) limiter: MemoryLimiter,
    /// Guest stdout and stderr.
    pub(crate) stdout: OutputCapture,
    pub(crate) stderr: OutputCapture,
    /// The actor's config values (same for every call of this version).
    config: Arc<BTreeMap<String, String>>,
    /// Data of the call in progress.
    pub(crate) call: CallState,
}

/// Effects collected during a call, with the running emit size.
#[derive(Default)]
pub(crate) struct EffectsInProgress {
    pub(crate) emits: Vec<EmittedRecord>,
    pub(crate) state_writes: BTreeMap<String, StateWrite>,
    pub(crate) emit_bytes: usize,
}

impl EffectsInProgress {
    pub(crate) fn into_effects(self) -> Effects {
        Effects {
            emits: self.emits,
            state_writes: self.state_writes,
        }
    }
}

/// The per-call part of [`HostState`].
pub(crate) struct CallState {
    /// Committed state of the actor.
    pub(crate) state: Arc<dyn StateReader>,
    /// Emits and state writes of this call.
    pub(crate) effects: EffectsInProgress,
    /// Log lines of this call.
    pub(crate) logs: Vec<LogLine>,
    /// Log lines that did not fit.
    pub(crate) dropped_logs: usize,
    /// When the call must end; checked on each epoch tick.
    pub(crate) deadline: Instant,
    /// Limits for this call.
    pub(crate) limits: Limits,
    /// Set when a state read failed (the call then traps).
    pub(crate) host_error: Option<String>,
}

impl CallState {
    pub(crate) fn new(state: Arc<dyn StateReader>, limits: Limits, deadline: Instant) -> Self {
        CallState {
            state,
            effects: EffectsInProgress::default(),
            logs: Vec::new(),
            dropped_logs: 0,
            deadline,
            limits,
            host_error: None,
        }
    }

    fn push_log(&mut self, level: LogLevel, mut message: String) {
        if self.logs.len() >= self.limits.max_log_lines {
            self.dropped_logs += 1;
            return;
        }
        if message.len() > MAX_LOG_LINE_BYTES {
            let mut cut = MAX_LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        self.logs.push(LogLine { level, message });
    }

    /// Turns captured stdout/stderr bytes into log lines.
    pub(crate) fn push_output(&mut self, level: LogLevel, bytes: &[u8], dropped: usize) {
        if bytes.is_empty() && dropped == 0 {
            return;
        }
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            self.push_log(level, line.to_string());
        }
        if dropped > 0 {
            self.push_log(level, format!("({dropped} more bytes of output dropped)"));
        }
    }
}

impl HostState {
    pub(crate) fn new(
        config: Arc<BTreeMap<String, String>>,
        allow_list: HostAllowList,
        memory_limit: u64,
        call: CallState,
    ) -> Self {
        let stdout = OutputCapture::default();
        let stderr = OutputCapture::default();
        // No preopened directories, no environment, no arguments and no
        // socket addresses: the builder's defaults deny all of them.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        HostState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            allow_list,
            limiter: MemoryLimiter::new(memory_limit),
            stdout,
            stderr,
            config,
            call,
        }
    }
}

impl HostState {
    /// Resets the store data of a finished instance so that another
    /// instance of the same actor version can use it.
    ///
    /// What the next guest could observe is reset: the resource table
    /// (streams, requests, pollables) is replaced, the output buffers are
    /// emptied, the limiter forgets a hit and the call state is cleared. What
    /// is kept is configuration that is the same for every instance of the
    /// version (config values, allow-list, memory limit, a WASI context that
    /// grants nothing) and the WASI context's random generators, whose state
    /// simply continues.
    pub(crate) fn recycle(&mut self) {
        self.table = ResourceTable::new();
        let _ = self.stdout.drain();
        let _ = self.stderr.drain();
        self.limiter.hit = false;
        let limits = self.call.limits;
        self.call = CallState::new(Arc::new(EmptyState), limits, Instant::now());
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.allow_list,
        }
    }
}

/// Enforces the per-instance memory limit and remembers that it was hit,
/// so that the resulting trap is reported as a memory-limit trap.
pub(crate) struct MemoryLimiter {
    limit: u64,
    pub(crate) hit: bool,
}

impl MemoryLimiter {
    fn new(limit: u64) -> Self {
        MemoryLimiter { limit, hit: false }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.hit = true;
            wasmtime::bail!(
                "memory limit exceeded: the instance asked for {desired} bytes, the limit is {}",
                self.limit
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl wit::Host for HostState {}

impl logging::Host for HostState {
    fn log(&mut self, level: logging::Level, message: String) {
        let level = match level {
            logging::Level::Trace => LogLevel::Trace,
            logging::Level::Debug => LogLevel::Debug,
            logging::Level::Info => LogLevel::Info,
            logging::Level::Warn => LogLevel::Warn,
            logging::Level::Error => LogLevel::Error,
        };
        self.call.push_log(level, message);
    }
}

impl emit::Host for HostState {
    fn send(&mut self, out: emit::OutgoingRecord) -> Result<(), String> {
        if out.topic.trim().is_empty() {
            return Err("emit: the topic name is empty".into());
        }
        let limits = self.call.limits;
        let effects = &mut self.call.effects;
        if effects.emits.len() >= limits.max_emits {
            return Err(format!(
                "emit: more than {} records in one call",
                limits.max_emits
            ));
        }
        let size = out.topic.len()
            + out.payload.as_ref().map_or(0, Vec::len)
            + out.key.as_ref().map_or(0, Vec::len)
            + out
                .headers
                .iter()
                .map(|h| h.name.len() + h.value.as_ref().map_or(0, Vec::len))
                .sum::<usize>();
        if effects.emit_bytes + size > limits.max_emit_bytes {
            return Err(format!(
                "emit: more than {} bytes in one call",
                limits.max_emit_bytes
            ));
        }
        effects.emit_bytes += size;
        effects.emits.push(EmittedRecord {
            topic: out.topic,
            key: out.key,
            payload: out.payload,
            headers: out.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        });
        Ok(())
    }
}

impl state::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        if let Some(pending) = self.call.effects.state_writes.get(&key) {
            return Ok(match pending {
                StateWrite::Set(value) => Some(value.clone()),
                StateWrite::Delete => None,
            });
        }
        match self.call.state.get(&key) {
            Ok(value) => Ok(value),
            Err(err) => {
                let message = format!("state read of {key:?} failed: {err}");
                self.call.host_error = Some(message.clone());
                Err(wasmtime::format_err!(message))
            }
        }
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<()> {
        self.call
            .effects
            .state_writes
            .insert(key, StateWrite::Set(value));
        Ok(())
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.call
            .effects
            .state_writes
            .insert(key, StateWrite::Delete);
        Ok(())
    }
}

impl config::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    fn get_all(&mut self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
