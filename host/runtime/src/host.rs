//! The store data of one actor instance, and the host side of the
//! `wactor:actor` imports (logging, emit, state, config).
//!
//! An instance's [`HostState`] lives as long as the instance; the part that
//! belongs to one call ([`CallState`]: pending effects, logs, the state
//! reader) is replaced before every call and taken back after it. Effects
//! are only collected here; whether they are applied is decided by the
//! caller from the outcome.
//!
//! # What one call can make the host hold
//!
//! Everything an actor hands the host during a call is bounded, so that
//! no actor can grow the host's memory without bound (the limits are
//! documented for users in docs/actors.md):
//!
//! - emits: [`Limits::max_emits`] records, [`Limits::max_emit_bytes`]
//!   bytes, topic names checked by [`check_emit_topic`];
//! - state writes: [`Limits::max_state_writes`] distinct keys,
//!   [`Limits::max_state_bytes`] bytes, keys of at most
//!   [`MAX_STATE_KEY_BYTES`];
//! - log lines: [`Limits::max_log_lines`] lines, [`Limits::max_log_bytes`]
//!   bytes, each line cut at [`MAX_LOG_LINE_BYTES`];
//! - stdout/stderr: 64 KiB per stream per call (`output`);
//! - WASI and wasi:http resources (streams, pollables, requests, fields):
//!   at most [`MAX_RESOURCES`] per instance, header fields at most
//!   [`MAX_HTTP_FIELDS_BYTES`] per set, outgoing body writes buffered at
//!   most 2 × [`MAX_HTTP_BODY_CHUNK`] per body (`http_policy`);
//! - `wasi:random` byte requests: at most [`MAX_RANDOM_BYTES`] each.
//!
//! A record or state write over its limit is refused with an error that
//! goes back to the actor (`emit.send`, `state.set`/`delete` return
//! `result<_, string>`) and names the limit; it changes nothing the call
//! has staged, and the call goes on.
//!
//! Values an actor passes in (a state value, a log message, a record) are
//! copied out of its linear memory before the host can look at them, so a
//! refused value costs, briefly, at most the actor's memory limit. Config
//! values come from the manifest, not from the actor.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::wactor::actor::{config, emit, logging, state, types as wit};
use crate::http_policy::{HostAllowList, OutboundHooks, OutboundTrace};
use crate::output::OutputCapture;
use crate::topics::check_emit_topic;
use crate::types::{Effects, EmittedRecord, Limits, LogLevel, LogLine, StateReader, StateWrite};

/// Longest log line kept, in bytes; longer lines are cut.
pub const MAX_LOG_LINE_BYTES: usize = 4096;

/// Longest state key, in bytes. A longer key is refused on write and
/// reads as absent (it cannot have been written).
pub const MAX_STATE_KEY_BYTES: usize = 4096;

/// Most resources (streams, pollables, HTTP requests and responses, header
/// fields) one instance may hold at once. Creating one more fails the host
/// call, which traps the instance.
pub const MAX_RESOURCES: usize = 1024;

/// Largest set of HTTP header fields an actor may build, in bytes.
pub const MAX_HTTP_FIELDS_BYTES: usize = 64 * 1024;

/// Largest single write to an outgoing HTTP body, in bytes; a body buffers
/// at most two such writes until the connection takes them.
pub const MAX_HTTP_BODY_CHUNK: usize = 64 * 1024;

/// Largest `wasi:random` request, in bytes (a larger one traps).
pub const MAX_RANDOM_BYTES: u64 = 1024 * 1024;

/// Longest piece of an actor-chosen string (a state key) quoted in an error.
const QUOTE_BYTES: usize = 64;

/// Store data of one instance.
pub(crate) struct HostState {
    /// WASI context: no preopens, no env, no network; stdio captured.
    wasi: WasiCtx,
    /// wasi:http context.
    http: WasiHttpCtx,
    /// Resources handed to the guest (streams, requests, pollables).
    table: ResourceTable,
    /// Which hosts outbound HTTP may reach, and how the current call's
    /// requests are traced.
    pub(crate) hooks: OutboundHooks,
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

/// Effects collected during a call, with their running sizes.
#[derive(Default)]
pub(crate) struct EffectsInProgress {
    pub(crate) emits: Vec<EmittedRecord>,
    pub(crate) state_writes: BTreeMap<String, StateWrite>,
    /// Bytes of `emits` (topics, keys, payloads, headers).
    pub(crate) emit_bytes: usize,
    /// Bytes of `state_writes` (keys and values).
    pub(crate) state_bytes: usize,
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
    /// Committed state of the actor; `None` between calls (reads find
    /// nothing), so parking an instance allocates nothing.
    pub(crate) state: Option<Arc<dyn StateReader>>,
    /// Emits and state writes of this call.
    pub(crate) effects: EffectsInProgress,
    /// Log lines of this call.
    pub(crate) logs: Vec<LogLine>,
    /// Bytes of the messages in `logs`.
    pub(crate) log_bytes: usize,
    /// Log lines that did not fit.
    pub(crate) dropped_logs: usize,
    /// When the call must end; checked on each epoch tick.
    pub(crate) deadline: Instant,
    /// Limits for this call.
    pub(crate) limits: Limits,
    /// Set when a state read failed (the call then traps).
    pub(crate) host_error: Option<String>,
    /// The batch this call works through, when it is a `handle-batch`.
    pub(crate) batch: Option<Box<BatchInProgress>>,
}

/// One event's share of a batch call: what the actor made between
/// `begin-event(index)` and the next `begin-event` (or the end).
pub(crate) struct EventPart {
    /// The event's position in the batch.
    pub(crate) index: u32,
    /// Its emits and state writes.
    pub(crate) effects: EffectsInProgress,
    /// Its log lines and output.
    pub(crate) logs: Vec<LogLine>,
    /// Time from its `begin-event` to the next one (or the call's end).
    pub(crate) duration: Duration,
}

/// The `handle-batch` call in progress (see `wactor:actor/batch`).
pub(crate) struct BatchInProgress {
    /// How many events the batch holds.
    len: u32,
    /// The event being worked on: `None` before the first `begin-event`.
    current: Option<u32>,
    /// When the current event began.
    current_started: Instant,
    /// The events finished so far, in increasing index order.
    pub(crate) parts: Vec<EventPart>,
    /// How each event's outbound HTTP requests are traced, taken as the
    /// event begins.
    traces: Vec<Option<OutboundTrace>>,
}

impl BatchInProgress {
    /// A batch of `traces.len()` events.
    pub(crate) fn new(traces: Vec<Option<OutboundTrace>>) -> Self {
        BatchInProgress {
            len: u32::try_from(traces.len()).unwrap_or(u32::MAX),
            current: None,
            current_started: Instant::now(),
            parts: Vec::with_capacity(traces.len()),
            traces,
        }
    }

    /// True once the actor called `begin-event`.
    pub(crate) fn begun(&self) -> bool {
        self.current.is_some()
    }
}

impl CallState {
    /// The state between calls: no state reader (reads find nothing).
    pub(crate) fn idle(limits: Limits, deadline: Instant) -> Self {
        CallState {
            state: None,
            effects: EffectsInProgress::default(),
            logs: Vec::new(),
            log_bytes: 0,
            dropped_logs: 0,
            deadline,
            limits,
            host_error: None,
            batch: None,
        }
    }

    /// The state of a call reading `state`, ending at `deadline`.
    pub(crate) fn new(state: Arc<dyn StateReader>, limits: Limits, deadline: Instant) -> Self {
        CallState {
            state: Some(state),
            ..CallState::idle(limits, deadline)
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
        if self.log_bytes + message.len() > self.limits.max_log_bytes {
            self.dropped_logs += 1;
            return;
        }
        self.log_bytes += message.len();
        self.logs.push(LogLine { level, message });
    }

    /// Stages a state write of this call, or says why it is refused (the
    /// limits [`Limits::max_state_writes`], [`Limits::max_state_bytes`] and
    /// [`MAX_STATE_KEY_BYTES`]). A refused write changes nothing; the
    /// reason goes back to the actor as the error of `state.set`/`delete`.
    pub(crate) fn stage_state_write(
        &mut self,
        key: String,
        write: StateWrite,
    ) -> Result<(), String> {
        if key.len() > MAX_STATE_KEY_BYTES {
            return Err(format!(
                "state: the key {} is {} bytes long; the limit is {MAX_STATE_KEY_BYTES}",
                quote(&key),
                key.len()
            ));
        }
        let limits = self.limits;
        let effects = &mut self.effects;
        let size = |key: &str, write: &StateWrite| {
            key.len()
                + match write {
                    StateWrite::Set(value) => value.len(),
                    StateWrite::Delete => 0,
                }
        };
        let replaced = effects.state_writes.get(&key).map(|w| size(&key, w));
        if replaced.is_none() && effects.state_writes.len() >= limits.max_state_writes {
            return Err(format!(
                "state: more than {} keys written in one call (limits.max_state_writes)",
                limits.max_state_writes
            ));
        }
        let total = effects.state_bytes - replaced.unwrap_or(0) + size(&key, &write);
        if total > limits.max_state_bytes {
            return Err(format!(
                "state: writing {} would make this call's state writes {total} bytes; the limit \
                 is {} (limits.max_state_bytes)",
                quote(&key),
                limits.max_state_bytes
            ));
        }
        effects.state_bytes = total;
        effects.state_writes.insert(key, write);
        Ok(())
    }

    /// Adds the line that says how many log lines did not fit, if any did
    /// not, and starts counting again.
    pub(crate) fn flush_dropped_logs(&mut self) {
        if self.dropped_logs > 0 {
            let dropped = std::mem::take(&mut self.dropped_logs);
            self.logs.push(LogLine {
                level: LogLevel::Warn,
                message: format!("({dropped} more log lines dropped)"),
            });
        }
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
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_HTTP_FIELDS_BYTES);
        HostState {
            wasi,
            http,
            table: new_table(),
            hooks: OutboundHooks {
                allow_list,
                trace: None,
            },
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
        self.table = new_table();
        self.hooks.trace = None;
        let _ = self.stdout.drain();
        let _ = self.stderr.drain();
        self.limiter.hit = false;
        let limits = self.call.limits;
        self.call = CallState::idle(limits, Instant::now());
    }
}

impl HostState {
    /// `batch.begin-event(index)`: closes the current event's part and
    /// starts event `index`'s (see `wactor:actor/batch`). Errors (which
    /// trap the batch) when the call is not a batch, when `index` is out of
    /// range or does not increase, and when an emit or state write came
    /// before the first `begin-event` (it could belong to no event).
    pub(crate) fn begin_event(&mut self, index: u32) -> Result<(), String> {
        let Some(batch) = self.call.batch.as_ref() else {
            return Err("batch.begin-event was called outside handle-batch".into());
        };
        if index >= batch.len {
            return Err(format!(
                "batch.begin-event({index}) in a batch of {} events",
                batch.len
            ));
        }
        match batch.current {
            Some(current) if index <= current => {
                return Err(format!(
                    "batch.begin-event({index}) after begin-event({current}): indexes must \
                     increase"
                ));
            }
            None if !self.call.effects.emits.is_empty()
                || !self.call.effects.state_writes.is_empty() =>
            {
                return Err(
                    "an emit or state write came before the first batch.begin-event: it \
                     belongs to no event"
                        .into(),
                );
            }
            _ => {}
        }
        self.finish_event_part();
        if let Some(batch) = self.call.batch.as_mut() {
            batch.current = Some(index);
            batch.current_started = Instant::now();
            self.hooks.trace = batch.traces.get_mut(index as usize).and_then(Option::take);
        }
        Ok(())
    }

    /// Moves what the current event of the batch made (effects, log lines,
    /// captured output) into its part. Nothing when no event has begun:
    /// log lines before the first `begin-event` stay, and go to the first
    /// event. Called once per `begin-event` and once after the call.
    pub(crate) fn finish_event_part(&mut self) {
        let Some(index) = self.call.batch.as_ref().and_then(|b| b.current) else {
            return;
        };
        let (out, out_dropped) = self.stdout.drain();
        let (err, err_dropped) = self.stderr.drain();
        let call = &mut self.call;
        call.push_output(LogLevel::Info, &out, out_dropped);
        call.push_output(LogLevel::Warn, &err, err_dropped);
        call.flush_dropped_logs();
        let effects = std::mem::take(&mut call.effects);
        let logs = std::mem::take(&mut call.logs);
        call.log_bytes = 0;
        if let Some(batch) = call.batch.as_mut() {
            batch.parts.push(EventPart {
                index,
                effects,
                logs,
                duration: batch.current_started.elapsed(),
            });
        }
    }
}

/// A resource table holding at most [`MAX_RESOURCES`] entries.
fn new_table() -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_RESOURCES);
    table
}

/// `text` quoted for an error message, cut to a readable length.
fn quote(text: &str) -> String {
    if text.len() <= QUOTE_BYTES {
        return format!("{text:?}");
    }
    let mut cut = QUOTE_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{:?}…", &text[..cut])
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
            hooks: &mut self.hooks,
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
        check_emit_topic(&out.topic)?;
        let limits = self.call.limits;
        let effects = &mut self.call.effects;
        if effects.emits.len() >= limits.max_emits {
            return Err(format!(
                "emit: more than {} records in one call (limits.max_emits)",
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
                "emit: more than {} bytes in one call (limits.max_emit_bytes)",
                limits.max_emit_bytes
            ));
        }
        let headers: Vec<(String, Option<Vec<u8>>)> =
            out.headers.into_iter().map(|h| (h.name, h.value)).collect();
        // A delay directive is checked now (the actor hears what is wrong);
        // its time is fixed when the record is produced.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        crate::delay::due_of(&headers, now_ms)?;
        effects.emit_bytes += size;
        effects.emits.push(EmittedRecord {
            topic: out.topic,
            key: out.key,
            payload: out.payload,
            headers,
        });
        Ok(())
    }
}

impl state::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        if key.len() > MAX_STATE_KEY_BYTES {
            // No write of such a key is ever accepted.
            return Ok(None);
        }
        if let Some(pending) = self.call.effects.state_writes.get(&key) {
            return Ok(match pending {
                StateWrite::Set(value) => Some(value.clone()),
                StateWrite::Delete => None,
            });
        }
        let read = match &self.call.state {
            Some(state) => state.get(&key),
            None => Ok(None),
        };
        match read {
            Ok(value) => Ok(value),
            Err(err) => {
                let message = format!("state read of {} failed: {err}", quote(&key));
                self.call.host_error = Some(message.clone());
                Err(wasmtime::format_err!(message))
            }
        }
    }

    // A refused write is the actor's to handle, as a refused emit is: the
    // reason goes back as the import's error and the call goes on. The
    // outer `Ok` means "no trap" (the interface is trappable for `get`).
    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        Ok(self.call.stage_state_write(key, StateWrite::Set(value)))
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        Ok(self.call.stage_state_write(key, StateWrite::Delete))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn call(limits: Limits) -> CallState {
        CallState::new(Arc::new(crate::types::EmptyState), limits, Instant::now())
    }

    fn set(value: &[u8]) -> StateWrite {
        StateWrite::Set(value.to_vec())
    }

    #[test]
    fn state_writes_beyond_the_key_count_are_refused_but_rewrites_are_not() {
        let mut call = call(Limits {
            max_state_writes: 2,
            ..Limits::default()
        });
        call.stage_state_write("a".into(), set(b"1")).unwrap();
        call.stage_state_write("b".into(), StateWrite::Delete)
            .unwrap();
        let err = call.stage_state_write("c".into(), set(b"3")).unwrap_err();
        assert!(err.contains("max_state_writes"), "{err}");
        call.stage_state_write("a".into(), set(b"again")).unwrap();
        assert_eq!(call.effects.state_writes.len(), 2);
        assert_eq!(call.effects.state_writes.get("a"), Some(&set(b"again")));
    }

    #[test]
    fn state_bytes_count_keys_and_values_and_a_rewrite_gives_bytes_back() {
        let mut call = call(Limits {
            max_state_bytes: 10,
            ..Limits::default()
        });
        call.stage_state_write("k".into(), set(b"12345678"))
            .unwrap(); // 9 bytes
        let err = call.stage_state_write("j".into(), set(b"12")).unwrap_err();
        assert!(err.contains("max_state_bytes"), "{err}");
        // Replacing k's value frees its 9 bytes first.
        call.stage_state_write("k".into(), set(b"123456789"))
            .unwrap(); // 10 bytes
        assert_eq!(call.effects.state_bytes, 10);
        call.stage_state_write("k".into(), StateWrite::Delete)
            .unwrap(); // 1 byte
        call.stage_state_write("j".into(), set(b"1234567")).unwrap(); // 8 bytes
        assert_eq!(call.effects.state_bytes, 9);
    }

    #[test]
    fn a_refused_state_write_changes_nothing() {
        let mut call = call(Limits {
            max_state_bytes: 100,
            ..Limits::default()
        });
        call.stage_state_write("k".into(), set(b"old")).unwrap();
        let big = vec![7u8; 200];
        assert!(call
            .stage_state_write("k".into(), StateWrite::Set(big))
            .is_err());
        assert_eq!(call.effects.state_writes.get("k"), Some(&set(b"old")));
        assert_eq!(call.effects.state_bytes, 4);
    }

    #[test]
    fn an_overlong_state_key_is_refused_with_a_short_quote() {
        let mut call = call(Limits::default());
        let key = "k".repeat(MAX_STATE_KEY_BYTES + 1);
        let err = call.stage_state_write(key, set(b"v")).unwrap_err();
        assert!(err.contains("4097 bytes long"), "{err}");
        assert!(err.len() < 200, "{err}");
        assert!(call.effects.state_writes.is_empty());
    }

    fn host_state(limits: Limits) -> HostState {
        HostState::new(
            Arc::new(BTreeMap::new()),
            HostAllowList::default(),
            64 * 1024 * 1024,
            call(limits),
        )
    }

    #[test]
    fn a_refused_state_set_is_an_error_for_the_actor_not_a_trap() {
        let mut host = host_state(Limits {
            max_state_bytes: 10,
            ..Limits::default()
        });
        let set = |host: &mut HostState, key: &str, value: &[u8]| {
            state::Host::set(host, key.into(), value.to_vec()).unwrap()
        };
        assert_eq!(set(&mut host, "k", b"old"), Ok(()));
        let err = set(&mut host, "k", b"much too long").unwrap_err();
        assert!(err.contains("limits.max_state_bytes"), "{err}");
        // The refused write changed nothing: the earlier one stands, and
        // reads see it.
        assert_eq!(
            state::Host::get(&mut host, "k".into()).unwrap(),
            Some(b"old".to_vec())
        );
        assert_eq!(host.call.effects.state_bytes, 4);
    }

    #[test]
    fn a_refused_state_delete_is_an_error_for_the_actor_not_a_trap() {
        let mut host = host_state(Limits {
            max_state_writes: 1,
            ..Limits::default()
        });
        assert_eq!(state::Host::delete(&mut host, "a".into()).unwrap(), Ok(()));
        let err = state::Host::delete(&mut host, "b".into())
            .unwrap()
            .unwrap_err();
        assert!(err.contains("limits.max_state_writes"), "{err}");
        let key = "k".repeat(MAX_STATE_KEY_BYTES + 1);
        let err = state::Host::set(&mut host, key, b"v".to_vec())
            .unwrap()
            .unwrap_err();
        assert!(err.contains("the limit is 4096"), "{err}");
        assert_eq!(
            host.call.effects.state_writes.keys().collect::<Vec<_>>(),
            ["a"]
        );
    }

    #[test]
    fn log_lines_are_bounded_in_count_and_bytes() {
        let mut call = call(Limits {
            max_log_lines: 3,
            max_log_bytes: 10_000,
            ..Limits::default()
        });
        for _ in 0..5 {
            call.push_log(LogLevel::Info, "x".into());
        }
        assert_eq!((call.logs.len(), call.dropped_logs), (3, 2));

        let mut call = self::call(Limits {
            max_log_lines: 1000,
            max_log_bytes: 10_000,
            ..Limits::default()
        });
        for _ in 0..10 {
            call.push_log(LogLevel::Info, "y".repeat(100_000));
        }
        // Each line is cut to 4 KiB (+ an ellipsis), and only two fit.
        assert_eq!(call.logs.len(), 2);
        assert_eq!(call.dropped_logs, 8);
        assert!(call.log_bytes <= 10_000);
    }
}
