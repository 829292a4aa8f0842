//! Instance reuse: how many requests one instance of a component serves, one after another,
//! before it is dropped, and how long an idle instance is kept for the next one.
//!
//! The knobs are `spin up`'s, with the same names, values and defaults: a count or a half-open
//! range `A..B` (a value drawn from it for each new instance), durations with `s`, `ms`, `us`
//! or `ns` (a bare number is seconds). Spin 4.0.2 ignores reuse for WASIp2 guests; this host
//! honours it for them, one request at a time. A component can ask for reuse itself in its
//! manifest section, `[component.<id>.tool.detailing]`, which Spin ignores; a flag given on the
//! command line applies to every component and wins.
//!
//! Without either, every request gets a fresh instance, as in Spin. An instance that trapped,
//! ran out of time, was refused memory or grew its memories past [`MEMORY_CEILING_BYTES`] is
//! never reused.

use crate::state::InstanceState;
use anyhow::{bail, Context, Result};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

/// An instance whose memories together grew past this is dropped after its request, not
/// reused: our components start with 4 MiB (.cargo/config.toml), and the pooling allocator
/// keeps that much of a slot resident; whatever an instance grows beyond it stays mapped for as
/// long as the instance lives.
pub const MEMORY_CEILING_BYTES: usize = 8 << 20;

/// The manifest table a component's reuse settings live in (`[component.<id>.tool.<TOOL>]`).
pub const TOOL: &str = "detailing";

/// A value, or a half-open range `start..end` from which each new instance draws one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range<T> {
    Value(T),
    Bounds(T, T),
}

impl<T> Range<T> {
    fn parse_with(text: &str, one: impl Fn(&str) -> Result<T, String>) -> Result<Self, String> {
        let text = text.trim();
        match text.split_once("..") {
            Some((start, end)) => Ok(Range::Bounds(one(start.trim())?, one(end.trim())?)),
            None => Ok(Range::Value(one(text)?)),
        }
    }
}

impl Range<u32> {
    /// `N` or `A..B`, counts of requests; zero and empty ranges are refused.
    pub fn parse_count(text: &str) -> Result<Self, String> {
        let range = Self::parse_with(text, |one| {
            one.parse::<u32>()
                .map_err(|e| format!("expected a count or a range A..B, got {text:?}: {e}"))
        })?;
        match range {
            Range::Value(0) => Err(format!("{text:?}: a count must be at least 1")),
            Range::Bounds(start, end) if start == 0 || start >= end => Err(format!(
                "{text:?}: a range A..B needs 1 <= A < B (B itself is never drawn)"
            )),
            range => Ok(range),
        }
    }

    fn draw(self) -> u32 {
        match self {
            Range::Value(value) => value,
            Range::Bounds(start, end) => start + (random() % u64::from(end - start)) as u32,
        }
    }

    /// The largest value this range can draw.
    pub fn most(self) -> u32 {
        match self {
            Range::Value(value) => value,
            Range::Bounds(_, end) => end - 1,
        }
    }
}

impl Range<Duration> {
    /// `1s`, `250ms`, `500us`, `10ns`, a bare number of seconds, or a range of them.
    pub fn parse_duration(text: &str) -> Result<Self, String> {
        let range = Self::parse_with(text, |one| parse_one_duration(one, text))?;
        match range {
            Range::Bounds(start, end) if start >= end => {
                Err(format!("{text:?}: a range A..B needs A < B"))
            }
            range => Ok(range),
        }
    }

    fn draw(self) -> Duration {
        match self {
            Range::Value(value) => value,
            Range::Bounds(start, end) => {
                let span = (end - start).as_nanos().min(u128::from(u64::MAX)) as u64;
                start + Duration::from_nanos(random() % span.max(1))
            }
        }
    }
}

fn parse_one_duration(one: &str, whole: &str) -> Result<Duration, String> {
    let error = || {
        format!("expected a duration such as 1s, 250ms, 500us or 10ns (a bare number is seconds), got {whole:?}")
    };
    let (digits, unit): (&str, fn(u64) -> Duration) = if let Ok(secs) = one.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    } else if let Some(n) = one.strip_suffix("ms") {
        (n, Duration::from_millis)
    } else if let Some(n) = one.strip_suffix("us").or(one.strip_suffix("μs")) {
        (n, Duration::from_micros)
    } else if let Some(n) = one.strip_suffix("ns") {
        (n, Duration::from_nanos)
    } else if let Some(n) = one.strip_suffix('s') {
        (n, Duration::from_secs)
    } else {
        return Err(error());
    };
    digits.parse::<u64>().map(unit).map_err(|_| error())
}

/// A pseudo-random number, enough to spread instance lifetimes (not for secrets).
fn random() -> u64 {
    RandomState::new().hash_one(Instant::now())
}

/// The host-wide reuse flags of `detailing up`, each `None` when not given.
#[derive(Debug, Clone, Default)]
pub struct ReuseFlags {
    /// `--max-instance-reuse-count`: requests per instance before it is dropped.
    pub max_requests: Option<Range<u32>>,
    /// `--idle-instance-timeout`: how long an idle instance waits for its next request.
    pub idle_timeout: Option<Range<Duration>>,
}

/// What `spin up` defaults to for WASIp2 guests: one request per instance, and 1 s idle.
const DEFAULT_IDLE: Duration = Duration::from_secs(1);

/// One component's reuse, resolved from the flags and its manifest section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReusePolicy {
    pub max_requests: Range<u32>,
    pub idle_timeout: Range<Duration>,
}

impl Default for ReusePolicy {
    fn default() -> Self {
        Self {
            max_requests: Range::Value(1),
            idle_timeout: Range::Value(DEFAULT_IDLE),
        }
    }
}

impl ReusePolicy {
    /// The flags where given, else the component's `tool.detailing` settings, else Spin's
    /// defaults. Unknown keys in that table are refused, so a misspelt one does not go unseen.
    pub fn resolve(flags: &ReuseFlags, tool: Option<&toml::Table>) -> Result<Self> {
        let mut policy = Self::default();
        if let Some(table) = tool {
            for (key, value) in table {
                let text = match value {
                    toml::Value::Integer(n) => n.to_string(),
                    toml::Value::String(s) => s.clone(),
                    other => bail!("`{key}` must be a number or a string, not {other}"),
                };
                match key.as_str() {
                    "max-instance-reuse-count" => {
                        policy.max_requests = Range::parse_count(&text)
                            .map_err(anyhow::Error::msg)
                            .context("max-instance-reuse-count")?;
                    }
                    "idle-instance-timeout" => {
                        policy.idle_timeout = Range::parse_duration(&text)
                            .map_err(anyhow::Error::msg)
                            .context("idle-instance-timeout")?;
                    }
                    other => bail!(
                        "unknown setting `{other}` (known: max-instance-reuse-count, idle-instance-timeout)"
                    ),
                }
            }
        }
        if let Some(max) = flags.max_requests {
            policy.max_requests = max;
        }
        if let Some(idle) = flags.idle_timeout {
            policy.idle_timeout = idle;
        }
        Ok(policy)
    }

    /// Whether an instance may ever serve a second request.
    pub fn reuses(&self) -> bool {
        self.max_requests.most() > 1
    }
}

/// An instance between requests, and what it has left.
pub(crate) struct Idle {
    pub store: Store<InstanceState>,
    pub proxy: Proxy,
    /// Requests it may still serve.
    pub left: u32,
    expires: Instant,
}

/// How many instances the whole app may keep idle: they hold slots of the instance pool, so
/// together they stay below what leaves every request a slot. One budget for all components,
/// so the busy one can keep as many as it has connections.
#[derive(Debug)]
pub(crate) struct IdleBudget {
    idle: AtomicUsize,
    max: usize,
}

impl IdleBudget {
    pub fn new(max: usize) -> Self {
        Self {
            idle: AtomicUsize::new(0),
            max,
        }
    }

    /// Counts one more idle instance, unless the budget is spent.
    fn take(&self) -> bool {
        self.idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |idle| {
                (idle < self.max).then_some(idle + 1)
            })
            .is_ok()
    }

    fn release(&self, count: usize) {
        self.idle.fetch_sub(count, Ordering::AcqRel);
    }
}

/// The idle instances of one version of a component, most recently used last.
pub(crate) struct InstancePool {
    policy: ReusePolicy,
    budget: Arc<IdleBudget>,
    idle: Mutex<Vec<Idle>>,
}

impl InstancePool {
    /// A pool whose idle instances count against the app's `budget`.
    pub fn new(policy: ReusePolicy, budget: Arc<IdleBudget>) -> Self {
        Self {
            policy,
            budget,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn reuses(&self) -> bool {
        self.policy.reuses()
    }

    /// How many requests a new instance may serve, drawn once per instance.
    pub fn draw_requests(&self) -> u32 {
        self.policy.max_requests.draw()
    }

    /// The most recently used idle instance that has not expired. Expired ones met on the way
    /// are dropped outside the lock.
    pub fn take(&self) -> Option<Idle> {
        let now = Instant::now();
        let mut expired = Vec::new();
        let found = {
            let mut idle = self.idle.lock().expect("instance pool lock");
            loop {
                match idle.pop() {
                    Some(instance) if instance.expires <= now => expired.push(instance),
                    other => break other,
                }
            }
        };
        self.budget
            .release(expired.len() + usize::from(found.is_some()));
        drop(expired);
        found
    }

    /// Keeps an instance that served a request and came back sound, unless it has no requests
    /// left (always so for a component that does not reuse: its instances draw one request),
    /// grew its memory past the ceiling, or the app's idle budget is spent.
    pub fn give_back(&self, store: Store<InstanceState>, proxy: Proxy, left: u32) {
        if left == 0 || store.data().limits.spoiled() || !self.budget.take() {
            return;
        }
        let instance = Idle {
            store,
            proxy,
            left,
            expires: Instant::now() + self.policy.idle_timeout.draw(),
        };
        self.idle.lock().expect("instance pool lock").push(instance);
    }

    /// Drops the instances idle past their timeout; the rest keep their order.
    pub fn sweep(&self) {
        let now = Instant::now();
        let expired: Vec<Idle> = {
            let mut idle = self.idle.lock().expect("instance pool lock");
            if idle.iter().all(|instance| instance.expires > now) {
                return;
            }
            let (expired, kept) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|instance| instance.expires <= now);
            *idle = kept;
            expired
        };
        self.budget.release(expired.len());
        drop(expired);
    }

    /// How many instances are idle now.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().expect("instance pool lock").len()
    }

    /// The shortest idle timeout an instance can get: how often the pool is worth sweeping.
    pub fn shortest_idle(&self) -> Duration {
        match self.policy.idle_timeout {
            Range::Value(value) | Range::Bounds(value, _) => value,
        }
    }
}

impl Drop for InstancePool {
    /// A replaced version's idle instances go with it, and give their budget back.
    fn drop(&mut self) {
        let idle = self.idle.get_mut().map_or(0, |idle| idle.len());
        self.budget.release(idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_a_number_or_a_half_open_range() {
        assert_eq!(Range::parse_count("128"), Ok(Range::Value(128)));
        assert_eq!(Range::parse_count(" 1..8 "), Ok(Range::Bounds(1, 8)));
        for bad in ["0", "0..4", "4..4", "8..2", "-1", "many", "1..", ""] {
            assert!(Range::parse_count(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_range_draws_inside_its_bounds() {
        let range = Range::Bounds(3, 6);
        let drawn: std::collections::BTreeSet<u32> = (0..500).map(|_| range.draw()).collect();
        assert_eq!(drawn.into_iter().collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(range.most(), 5);
        let idle = Range::Bounds(Duration::from_millis(10), Duration::from_millis(20));
        for _ in 0..100 {
            let d = idle.draw();
            assert!(d >= Duration::from_millis(10) && d < Duration::from_millis(20));
        }
    }

    #[test]
    fn durations_read_as_spin_reads_them() {
        let one = |s: &str| Range::parse_duration(s).map(|r| r.draw());
        assert_eq!(one("1"), Ok(Duration::from_secs(1)));
        assert_eq!(one("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(one("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(one("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(one("500μs"), Ok(Duration::from_micros(500)));
        assert_eq!(one("10ns"), Ok(Duration::from_nanos(10)));
        assert_eq!(
            Range::parse_duration("1..8s"),
            Ok(Range::Bounds(
                Duration::from_secs(1),
                Duration::from_secs(8)
            ))
        );
        for bad in ["", "1m", "fast", "2s..1s", "ms"] {
            assert!(Range::parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_win_over_the_manifest_and_the_default_is_one_request() {
        assert!(!ReusePolicy::default().reuses());
        let table: toml::Table =
            toml::from_str("max-instance-reuse-count = 64\nidle-instance-timeout = \"250ms\"")
                .unwrap();
        let from_manifest = ReusePolicy::resolve(&ReuseFlags::default(), Some(&table)).unwrap();
        assert_eq!(from_manifest.max_requests, Range::Value(64));
        assert_eq!(
            from_manifest.idle_timeout,
            Range::Value(Duration::from_millis(250))
        );
        assert!(from_manifest.reuses());

        let off = ReuseFlags {
            max_requests: Some(Range::Value(1)),
            ..ReuseFlags::default()
        };
        let overridden = ReusePolicy::resolve(&off, Some(&table)).unwrap();
        assert!(!overridden.reuses());
        assert_eq!(
            overridden.idle_timeout,
            Range::Value(Duration::from_millis(250))
        );
    }

    #[test]
    fn the_idle_budget_counts_up_to_its_maximum_and_back() {
        let budget = IdleBudget::new(2);
        assert!(budget.take());
        assert!(budget.take());
        assert!(!budget.take(), "a third idle instance is over the budget");
        budget.release(1);
        assert!(budget.take());
        budget.release(2);
        assert_eq!(budget.idle.load(Ordering::Acquire), 0);
    }

    #[test]
    fn unknown_or_malformed_manifest_settings_are_refused() {
        for text in [
            "max-instance-reuse = 8",
            "max-instance-reuse-count = 0",
            "max-instance-reuse-count = true",
            "idle-instance-timeout = \"soon\"",
        ] {
            let table: toml::Table = toml::from_str(text).unwrap();
            assert!(
                ReusePolicy::resolve(&ReuseFlags::default(), Some(&table)).is_err(),
                "{text}"
            );
        }
    }
}
