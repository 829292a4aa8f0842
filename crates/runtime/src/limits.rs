//! Per-instance limits and the engine configured to enforce them.
//!
//! A guest that loops, allocates without end or receives a huge body costs one request:
//! memory is capped per instance, CPU by epoch interruption at a wall-clock deadline,
//! inbound bodies by size. Spin 3.x/4.x has none of these for WASIp2 guests
//! (docs/spin-compatibility.md).

use crate::admission::Concurrency;
use crate::metrics::ComponentMetrics;
use crate::reuse::ReuseFlags;
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter,
    Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline,
};

/// Bytes of each linear memory kept resident (and reset page by page) between instances: the
/// initial memory our components are linked with (.cargo/config.toml).
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// How often the engine's epoch advances; deadlines are rounded up to it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Epoch ticks a guest may compute before it yields its thread (5 x 10 ms). Yielding at every
/// tick cost about 5 % of the throughput of short requests, measured (BENCHMARKS.md).
const SLICE_TICKS: u64 = 5;

// How long a guest's dependencies may keep it waiting. Each is finite and below the default
// request timeout (30 s), so a dependency that accepts connections but never answers costs a
// request this long and an error the component can name, not the whole deadline. RELIABILITY.md
// ("Faults") lists what each failure answers.

/// Opening a PostgreSQL connection (TCP, TLS, startup): then `connection-failed`, which
/// components answer 503 `database_unavailable`.
pub const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opening a Redis connection (TCP and its handshake), for guests and for
/// `[[trigger.redis]]` subscriptions.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// One Redis command's reply.
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Opening an outbound HTTP connection (TCP, TLS): then `connection-timeout`, which
/// components answer 503 in the callee's `*_unavailable` code.
pub const OUTBOUND_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Kept back from the wait for an outbound HTTP answer (or a chained component's): a request
/// waits for its callee until this long before its own deadline, so it is still running to
/// answer 504 in the callee's `*_timeout` code when the callee never does.
pub const OUTBOUND_ANSWER_RESERVE: Duration = Duration::from_millis(500);

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
    /// Components whose inbound requests run at most so many at once (the rest wait or get
    /// 503); a component not named here has no cap of its own.
    pub component_concurrency: BTreeMap<String, Concurrency>,
    /// How many requests an instance serves before it is dropped, and how long it waits idle
    /// (`spin up`'s reuse flags); what is not given here comes from each component's manifest
    /// section, else one request per instance.
    pub reuse: ReuseFlags,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 4 << 20,
            max_instances: 512,
            component_concurrency: BTreeMap::new(),
            reuse: ReuseFlags::default(),
        }
    }
}

impl Limits {
    /// Epoch ticks until the deadline (at least one).
    pub fn deadline_ticks(&self) -> u64 {
        (self.request_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
    }

    /// Arms `store`'s deadline. A guest that computes for a whole time slice yields to its
    /// thread's other tasks before it goes on: an HTTP worker thread serves many connections,
    /// and one busy guest must not hold them all up until its deadline. At the deadline it is
    /// stopped with [`wasmtime::Trap::Interrupt`].
    pub(crate) fn arm_deadline<T: 'static>(&self, store: &mut Store<T>) {
        let mut ticks_left = self.deadline_ticks();
        let mut slice = ticks_left.min(SLICE_TICKS);
        store.set_epoch_deadline(slice);
        store.epoch_deadline_callback(move |_| {
            ticks_left = ticks_left.saturating_sub(slice);
            slice = ticks_left.min(SLICE_TICKS);
            if slice == 0 {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // tokio's own yield lets the thread's I/O driver run before the guest goes
                // on; a plain wake-up would put the guest straight back in line, and a
                // single-threaded runtime polls I/O only every 61 tasks.
                Ok(UpdateDeadline::YieldCustom(
                    slice,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
    }

    /// The engine shared by every component: Cranelift, epoch interruption, pooling allocator.
    pub fn engine(&self) -> Result<Engine> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // The WASIp2 interfaces we serve are synchronous. With concurrency support on, every
        // store carries a worker fiber that its drop unwinds with a formatted error, which
        // captures a backtrace whenever RUST_BACKTRACE is set: 8 µs per instance, measured.
        config.concurrency_support(false);
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
        // Measured (BENCHMARKS.md, tuning log): resetting a used memory slot costs either a
        // memset of everything kept resident or an madvise, which on a multi-threaded host is a
        // TLB shootdown on every core plus page faults when the next instance touches the pages
        // again. With PAGEMAP_SCAN (Linux 6.7+) only the pages an instance dirtied are reset, by
        // memset, so the whole initial memory of our components (4 MiB, .cargo/config.toml)
        // stays resident and is never unmapped between requests. Without it, keeping memory
        // resident would mean a memset of all of it per instance, so nothing is kept. What an
        // instance grows past that is decommitted with madvise, in batches (one shootdown per
        // 64 memories).
        if pagemap_scan_available() {
            pool.pagemap_scan(Enabled::Yes);
            pool.linear_memory_keep_resident(KEEP_RESIDENT_BYTES);
        } else {
            pool.linear_memory_keep_resident(0);
        }
        pool.decommit_batch_size(64);
        pool.table_keep_resident(1 << 16);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        Ok(Engine::new(&config)?)
    }
}

/// Whether the kernel has the `PAGEMAP_SCAN` ioctl (Linux 6.7 and later).
fn pagemap_scan_available() -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    kernel_at_least(&release, (6, 7))
}

/// `release` is a kernel release string such as `6.18.44-fc` or `5.15.0-91-generic`.
fn kernel_at_least(release: &str, wanted: (u32, u32)) -> bool {
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) >= wanted,
        _ => false,
    }
}

/// One instance's [`StoreLimits`], counting a memory-limit hit the first time the instance is
/// refused memory: a guest that retries smaller allocations is still one instance at its cap.
/// It also adds up the instance's memories, which decides whether it may be reused.
pub(crate) struct InstanceLimits {
    limits: StoreLimits,
    metrics: Arc<ComponentMetrics>,
    refused: bool,
    memory_bytes: usize,
}

impl InstanceLimits {
    pub(crate) fn new(limits: &Limits, metrics: Arc<ComponentMetrics>) -> Self {
        Self {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .build(),
            metrics,
            refused: false,
            memory_bytes: 0,
        }
    }

    /// Whether the instance should not serve another request: it was refused memory, or its
    /// memories together grew past [`crate::reuse::MEMORY_CEILING_BYTES`].
    pub(crate) fn spoiled(&self) -> bool {
        self.refused || self.memory_bytes > crate::reuse::MEMORY_CEILING_BYTES
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
        if allowed {
            self.memory_bytes += desired.saturating_sub(current);
        } else {
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

#[cfg(test)]
mod tests {
    use super::kernel_at_least;

    #[test]
    fn reads_kernel_releases() {
        assert!(kernel_at_least("6.18.44-fc-v1147\n", (6, 7)));
        assert!(kernel_at_least("6.7.0", (6, 7)));
        assert!(kernel_at_least("7.0.1-arch1", (6, 7)));
        assert!(!kernel_at_least("6.6.30-generic", (6, 7)));
        assert!(!kernel_at_least("5.15.0-91-generic", (6, 7)));
        assert!(!kernel_at_least("", (6, 7)));
        assert!(!kernel_at_least("garbage", (6, 7)));
    }
}
