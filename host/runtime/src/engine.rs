//! The one wasmtime [`Engine`] of a host, its configuration, and the epoch
//! ticker that makes call deadlines work.
//!
//! - Component model and async support on (a guest blocked on HTTP or a
//!   sleep yields its tokio worker instead of holding it).
//! - The pooling allocator when the machine allows it: instance slots,
//!   memories and stacks are reserved once and reused, and linear memory is
//!   initialized copy-on-write from the compiled image, which is what makes
//!   a fresh instance per event affordable. Where the reservation fails
//!   (low `ulimit -v`, small address spaces) the engine falls back to the
//!   on-demand allocator and says so.
//! - Epoch interruption: a background thread bumps the engine's epoch every
//!   [`EPOCH_TICK`]; a running call yields to tokio on each tick and is
//!   interrupted once its deadline has passed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::{Result, RuntimeError};

/// Interval of the epoch ticker: the resolution of call deadlines and how
/// often a CPU-bound call yields to other tasks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

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
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            allocator: AllocatorChoice::Auto,
            pool_instances: 1000,
            max_memory_bytes: 256 * 1024 * 1024,
            max_wasm_stack: 512 * 1024,
        }
    }
}

/// The engine and the thread that drives its epoch.
pub(crate) struct EngineHandle {
    pub(crate) engine: Engine,
    pub(crate) pooling: bool,
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
        // A Rust wasip2 guest is one core module plus a few shims.
        pool.total_core_instances(n * 4);
        pool.total_memories(n);
        pool.total_tables(n * 4);
        pool.total_stacks(n);
        pool.max_memory_size(settings.max_memory_bytes as usize);
        pool.max_memories_per_component(4);
        pool.max_tables_per_component(8);
        pool.table_elements(20_000);
        // Keep some pages resident between uses of a slot so that reusing
        // it does not fault them in again.
        pool.linear_memory_keep_resident(64 * 1024);
        pool.table_keep_resident(16 * 1024);
        pool.max_unused_warm_slots(n / 10 + 1);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    let engine =
        Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
    if pooling {
        // Reservation happens lazily in some versions; prove the pool works
        // with an empty store so that a failure shows up here, not per event.
        let mut store = wasmtime::Store::new(&engine, ());
        wasmtime::Memory::new(&mut store, wasmtime::MemoryType::new(1, None))
            .map_err(|e| RuntimeError::Engine(format!("pooling allocator unusable: {e:#}")))?;
    }
    Ok(engine)
}
