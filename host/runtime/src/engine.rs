//! The one wasmtime [`Engine`] of a host, its configuration, and the epoch
//! ticker that makes call deadlines work.
//!
//! - Component model and async support on (a guest blocked on HTTP or a
//!   sleep yields its tokio worker instead of holding it).
//! - The pooling allocator when the machine allows it: instance slots,
//!   memories and stacks are reserved once and reused, and linear memory is
//!   initialized copy-on-write from the compiled image, which is what makes
//!   a fresh instance per event affordable; on Linux 6.7+ a slot's dirty
//!   pages are found with `PAGEMAP_SCAN` and reset in place when its
//!   instance ends, so the next instance takes no page faults and no
//!   `madvise`/TLB shootdown is needed. Where the reservation fails
//!   (low `ulimit -v`, small address spaces) the engine falls back to the
//!   on-demand allocator and says so.
//! - Epoch interruption: a background thread bumps the engine's epoch every
//!   [`EPOCH_TICK`]; a running call yields to tokio on each tick and is
//!   interrupted once its deadline has passed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::{Result, RuntimeError};

/// Interval of the epoch ticker: the resolution of call deadlines and how
/// often a CPU-bound call yields to other tasks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Core instances (and tables) the pool reserves per instance slot: enough
/// for a componentize-py component (14 core instances) with room to spare.
pub const CORE_INSTANCES_PER_SLOT: u32 = 16;

/// How the engine allocates instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocatorChoice {
    /// Pooling if it can be set up, on-demand otherwise.
    #[default]
    Auto,
    /// Always the on-demand allocator.
    OnDemand,
}

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Allocator choice.
    pub allocator: AllocatorChoice,
    /// Instance slots in the pool (concurrent instances of all actors).
    pub pool_instances: u32,
    /// Largest linear memory any instance may have; per-actor limits are
    /// enforced below this by the store's limiter.
    pub max_memory_bytes: u64,
    /// Wasm stack size for guests.
    pub max_wasm_stack: usize,
    /// Bytes of a pooled memory slot's dirty pages that are reset in place
    /// (and stay resident) when an instance ends, where the kernel supports
    /// `PAGEMAP_SCAN`; dirty memory beyond it is decommitted. This is what
    /// makes a fresh instance per event cheap: the next instance in the slot
    /// takes no page faults. It bounds the resident memory an idle slot
    /// keeps. Without `PAGEMAP_SCAN` (older kernels, or `pagemap_reset`
    /// off) wasmtime can only reset the *lowest* bytes of memory in place,
    /// so the value is then capped at [`LOW_KEEP_RESIDENT`].
    pub memory_keep_resident: usize,
    /// Use `PAGEMAP_SCAN` where the kernel has it. On by default; off only
    /// to measure what it saves.
    pub pagemap_reset: bool,
    /// Reuse the store data (WASI context and all) of finished instances
    /// for new instances of the same actor version instead of building it
    /// anew. On by default; off only to measure what it saves.
    pub recycle_host_state: bool,
}

/// Table bytes kept resident per slot (tables are small).
const TABLE_KEEP_RESIDENT: usize = 64 * 1024;

/// Memory bytes reset in place without `PAGEMAP_SCAN`: the lowest bytes of
/// memory are `memset` whether they were used or not, so keep this small.
pub const LOW_KEEP_RESIDENT: usize = 64 * 1024;

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            allocator: AllocatorChoice::Auto,
            pool_instances: 1000,
            max_memory_bytes: 256 * 1024 * 1024,
            max_wasm_stack: 512 * 1024,
            memory_keep_resident: 4 * 1024 * 1024,
            pagemap_reset: true,
            recycle_host_state: true,
        }
    }
}

/// The engine and the thread that drives its epoch.
pub(crate) struct EngineHandle {
    pub(crate) engine: Engine,
    pub(crate) pooling: bool,
    /// Whether finished instances' store data is reused.
    pub(crate) recycle_host_state: bool,
    /// Whether pooled memories are reset in place with `PAGEMAP_SCAN`.
    pub(crate) pagemap_reset: bool,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl EngineHandle {
    pub(crate) fn new(settings: &EngineSettings) -> Result<Self> {
        let (engine, pooling) = match settings.allocator {
            AllocatorChoice::OnDemand => (build(settings, false)?, false),
            AllocatorChoice::Auto => match build(settings, true) {
                Ok(engine) => (engine, true),
                Err(err) => {
                    tracing::warn!(
                        error = %err,
                        "the pooling allocator is not available here; using on-demand allocation"
                    );
                    (build(settings, false)?, false)
                }
            },
        };
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("wactor-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| RuntimeError::Engine(format!("cannot start the epoch thread: {e}")))?
        };
        Ok(EngineHandle {
            engine,
            pooling,
            recycle_host_state: settings.recycle_host_state,
            pagemap_reset: pooling && uses_pagemap(settings),
            stop,
            ticker: Some(ticker),
        })
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

/// Whether pooled memories are reset with `PAGEMAP_SCAN`.
fn uses_pagemap(settings: &EngineSettings) -> bool {
    settings.pagemap_reset
        && settings.memory_keep_resident > 0
        && PoolingAllocationConfig::is_pagemap_scan_available()
}

fn build(settings: &EngineSettings, pooling: bool) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(settings.max_wasm_stack);
    config.memory_init_cow(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        let n = settings.pool_instances;
        pool.total_component_instances(n);
        // A Rust wasip2 guest is one core module plus a few shims (4 core
        // instances, 1 to 3 tables); a componentize-js guest is 4; a
        // componentize-py guest is 14 core instances (CPython and its
        // libraries as separate modules sharing one memory). Core instance
        // and table slots are small (instance state and table metadata, not
        // linear memory), so the pool sizes them for the largest kind:
        // with 4 per slot a pool of 1000 ran out at about 285 concurrent
        // Python instances.
        pool.total_core_instances(n * CORE_INSTANCES_PER_SLOT);
        pool.total_memories(n);
        pool.total_tables(n * CORE_INSTANCES_PER_SLOT);
        pool.total_stacks(n);
        pool.max_memory_size(settings.max_memory_bytes as usize);
        pool.max_memories_per_component(4);
        pool.max_tables_per_component(8);
        pool.table_elements(20_000);
        if uses_pagemap(settings) {
            // Linux 6.7+: on deallocation, find the pages the instance
            // dirtied (PAGEMAP_SCAN) and reset only those with memcpy/memset,
            // keeping them resident: no madvise, no TLB shootdown, no page
            // faults when the slot is reused. Beyond the budget, the rest is
            // decommitted as usual.
            pool.pagemap_scan(Enabled::Yes);
            pool.linear_memory_keep_resident(settings.memory_keep_resident);
            pool.table_keep_resident(settings.memory_keep_resident.min(TABLE_KEEP_RESIDENT));
        } else {
            // Without the scan, keep-resident means "memset the first N
            // bytes", so keep it small.
            pool.linear_memory_keep_resident(settings.memory_keep_resident.min(LOW_KEEP_RESIDENT));
            pool.table_keep_resident(16 * 1024);
        }
        pool.max_unused_warm_slots(n / 10 + 1);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
    if pooling {
        // Reservation happens lazily in some versions; prove the pool works
        // with an empty store so that a failure shows up here, not per event.
        let mut store = wasmtime::Store::new(&engine, ());
        wasmtime::Memory::new(&mut store, wasmtime::MemoryType::new(1, None))
            .map_err(|e| RuntimeError::Engine(format!("pooling allocator unusable: {e:#}")))?;
    }
    Ok(engine)
}
