//! The relay's numbers for whoever exposes metrics: counters of what moved and a sample of
//! what waits in the outbox. The relay only counts; the embedder decides how to publish them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A cheap handle: clones share the same numbers.
#[derive(Debug, Clone, Default)]
pub struct RelayMetrics(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    published: AtomicU64,
    acked: AtomicU64,
    dead_lettered: AtomicU64,
    retried: AtomicU64,
    /// Written about once a second by the publisher, read on a scrape: a lock is no cost here
    /// and keeps depth, age and the time they were taken consistent with each other.
    outbox: Mutex<Option<Sample>>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    depth: u64,
    oldest_age: Duration,
    taken: Instant,
}

/// The numbers at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Events the broker confirmed and the outbox marked sent.
    pub published: u64,
    /// Deliveries bonus-service took (2xx) and the broker got the ack for.
    pub acked: u64,
    /// Deliveries given up on, into the dead-letter queue.
    pub dead_lettered: u64,
    /// Failed delivery attempts that were retried.
    pub retried: u64,
    /// Unsent outbox rows and the age of the oldest, once the publisher has looked.
    pub outbox: Option<Outbox>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outbox {
    pub depth: u64,
    /// Age of the oldest unsent row now: its age when sampled plus the time since, because
    /// a row stuck while the broker is down keeps ageing between samples.
    pub lag: Duration,
}

impl RelayMetrics {
    pub fn snapshot(&self) -> Snapshot {
        let outbox = self
            .0
            .outbox
            .lock()
            .expect("outbox sample lock")
            .map(|s| Outbox {
                depth: s.depth,
                lag: if s.depth == 0 {
                    Duration::ZERO
                } else {
                    s.oldest_age + s.taken.elapsed()
                },
            });
        Snapshot {
            published: self.0.published.load(Relaxed),
            acked: self.0.acked.load(Relaxed),
            dead_lettered: self.0.dead_lettered.load(Relaxed),
            retried: self.0.retried.load(Relaxed),
            outbox,
        }
    }

    pub(crate) fn published(&self, events: usize) {
        self.0.published.fetch_add(events as u64, Relaxed);
    }

    pub(crate) fn acked(&self) {
        self.0.acked.fetch_add(1, Relaxed);
    }

    pub(crate) fn dead_lettered(&self) {
        self.0.dead_lettered.fetch_add(1, Relaxed);
    }

    pub(crate) fn retried(&self) {
        self.0.retried.fetch_add(1, Relaxed);
    }

    pub(crate) fn outbox_sampled(&self, depth: u64, oldest_age: Duration) {
        *self.0.outbox.lock().expect("outbox sample lock") = Some(Sample {
            depth,
            oldest_age,
            taken: Instant::now(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_keeps_growing_between_samples_and_is_zero_for_an_empty_outbox() {
        let metrics = RelayMetrics::default();
        assert_eq!(metrics.snapshot().outbox, None);
        metrics.outbox_sampled(3, Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(20));
        let outbox = metrics.clone().snapshot().outbox.unwrap();
        assert_eq!(outbox.depth, 3);
        assert!(outbox.lag >= Duration::from_millis(5_020), "{outbox:?}");
        metrics.outbox_sampled(0, Duration::ZERO);
        assert_eq!(metrics.snapshot().outbox.unwrap().lag, Duration::ZERO);
    }

    #[test]
    fn clones_count_together() {
        let metrics = RelayMetrics::default();
        let clone = metrics.clone();
        clone.published(2);
        metrics.acked();
        clone.retried();
        metrics.dead_lettered();
        let snapshot = metrics.snapshot();
        assert_eq!(
            (
                snapshot.published,
                snapshot.acked,
                snapshot.retried,
                snapshot.dead_lettered
            ),
            (2, 1, 1, 1)
        );
    }
}
