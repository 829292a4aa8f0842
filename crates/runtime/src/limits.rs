//! Per-instance limits and the engine configured to enforce them.
//!
//! A guest that loops, allocates without end or receives a huge body costs one request:
//! memory is capped per instance, CPU by epoch interruption at a wall-clock deadline,
//! inbound bodies by size. Spin 3.x/4.x has none of these for WASIp2 guests (SPIN_BEHAVIOUR.md).

use crate::metrics::ComponentMetrics;
use anyhow::Result;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter,
    StoreLimits, StoreLimitsBuilder,
};

/// How often the engine's epoch advances; deadlines are rounded up to it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest linear memory one instance may grow to.
    pub memory_bytes: usize,
    /// Wall-clock budget of one request, guest CPU and awaited I/O together.
    pub request_timeout: Duration,
    /// Largest inbound request body; larger ones get 413 before any guest runs.
    pub max_body_bytes: usize,
    /// Instances alive at once across all components (the pooling allocator's size).
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 4 << 20,
            max_instances: 512,
        }
    }
}

impl Limits {
    /// Epoch ticks until the deadline (at least one).
    pub fn deadline_ticks(&self) -> u64 {
        (self.request_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
    }

    /// The engine shared by every component: Cranelift, epoch interruption, pooling allocator.
    pub fn engine(&self) -> Result<Engine> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let mut pool = PoolingAllocationConfig::default();
        // A spin-sdk component wrapped with the preview1 adapter has a handful of core
        // instances and two memories; leave headroom for larger guests.
        pool.total_component_instances(self.max_instances);
        pool.total_core_instances(self.max_instances * 8);
        pool.total_memories(self.max_instances * 3);
        pool.total_tables(self.max_instances * 4);
        pool.total_stacks(self.max_instances);
        pool.max_memories_per_component(4);
        pool.max_tables_per_component(8);
        pool.max_core_instances_per_component(16);
        pool.max_memory_size(self.memory_bytes);
        // Measured (BENCHMARKS.md, "tuning"): keeping the first 1 MiB of each memory resident
        // meant a 1 MiB memset per instance (the guest's stack lives there), 17 % of the CPU
        // of a GET /api/cars/{id} load and 470 MB RSS at 256 connections. Decommitting with
        // madvise instead, in batches (one TLB shootdown per 64 memories), serves ~35 % more
        // requests at a quarter of the memory.
        pool.linear_memory_keep_resident(0);
        pool.decommit_batch_size(64);
        pool.table_keep_resident(1 << 16);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        Ok(Engine::new(&config)?)
    }
}

/// One instance's [`StoreLimits`], counting a memory-limit hit the first time the instance is
/// refused memory: a guest that retries smaller allocations is still one instance at its cap.
pub(crate) struct InstanceLimits {
    limits: StoreLimits,
    metrics: Arc<ComponentMetrics>,
    refused: bool,
}

impl InstanceLimits {
    pub(crate) fn new(limits: &Limits, metrics: Arc<ComponentMetrics>) -> Self {
        Self {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .build(),
            metrics,
            refused: false,
        }
    }

    fn memory_refused(&mut self) {
        if !self.refused {
            self.refused = true;
            self.metrics.memory_limit_hit();
        }
    }
}

impl ResourceLimiter for InstanceLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.memory_refused();
        }
        Ok(allowed)
    }

    /// Growth the limiter allowed but the pooling allocator could not provide.
    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_refused();
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// Advances the engine's epoch until the engine is dropped.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .expect("cannot start the epoch ticker thread");
}
