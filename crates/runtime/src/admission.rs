//! Per-component admission: at most N requests of one component run at once, a bounded line
//! waits for a turn, and everyone beyond it is turned away at once.
//!
//! So one hot component (a flood of password hashing, say) cannot take every core from the
//! others: its excess waits without running, or gets a 503 to retry later.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A component's cap: how many of its requests run at once and how many may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    pub running: usize,
    pub waiting: usize,
}

impl Concurrency {
    /// Parses `<running>` or `<running>:<waiting>`; without a waiting count, the line is
    /// 16 requests per running one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let number = |part: &str| {
            part.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{part}` is not a whole number"))
        };
        let (running, waiting) = match text.split_once(':') {
            Some((running, waiting)) => (number(running)?, Some(number(waiting)?)),
            None => (number(text)?, None),
        };
        if running == 0 {
            return Err("a component must be allowed at least one request at a time".into());
        }
        Ok(Self {
            running,
            waiting: waiting.unwrap_or(running.saturating_mul(16)),
        })
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The waiting line was full.
    LineFull(Concurrency),
    /// It waited its whole patience without a turn.
    WaitedTooLong(Duration),
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Busy::LineFull(cap) => write!(
                f,
                "{} running and {} waiting already",
                cap.running, cap.waiting
            ),
            Busy::WaitedTooLong(patience) => {
                write!(f, "no turn within {} ms", patience.as_millis())
            }
        }
    }
}

#[derive(Debug)]
pub struct Admission {
    cap: Concurrency,
    turns: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl Admission {
    pub fn new(cap: Concurrency) -> Self {
        Self {
            cap,
            turns: Arc::new(Semaphore::new(cap.running)),
            waiting: AtomicUsize::new(0),
        }
    }

    /// A turn to run, held until the permit is dropped; waits at most `patience` in line.
    pub async fn enter(&self, patience: Duration) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(turn) = self.turns.clone().try_acquire_owned() {
            return Ok(turn);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.cap.waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy::LineFull(self.cap));
        }
        let turn = tokio::time::timeout(patience, self.turns.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match turn {
            Ok(Ok(turn)) => Ok(turn),
            // The semaphore is never closed; treat it like a full wait anyway.
            Ok(Err(_)) | Err(_) => Err(Busy::WaitedTooLong(patience)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_parse_with_and_without_a_waiting_line() {
        assert_eq!(
            Concurrency::parse("2"),
            Ok(Concurrency {
                running: 2,
                waiting: 32
            })
        );
        assert_eq!(
            Concurrency::parse("1:0"),
            Ok(Concurrency {
                running: 1,
                waiting: 0
            })
        );
        assert!(Concurrency::parse("0").is_err());
        assert!(Concurrency::parse("x").is_err());
        assert!(Concurrency::parse("1:-1").is_err());
    }

    #[tokio::test]
    async fn beyond_the_running_cap_requests_wait_then_beyond_the_line_are_refused() {
        let admission = Arc::new(Admission::new(Concurrency {
            running: 1,
            waiting: 1,
        }));
        let first = admission.enter(Duration::from_secs(5)).await.unwrap();
        let waiter = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.enter(Duration::from_secs(5)).await.is_ok() })
        };
        // Let the waiter take its place in line.
        while admission.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            admission.enter(Duration::from_secs(5)).await,
            Err(Busy::LineFull(_))
        ));
        drop(first);
        assert!(waiter.await.unwrap(), "the waiter gets the freed turn");
    }

    #[tokio::test]
    async fn a_wait_ends_at_its_patience() {
        let admission = Admission::new(Concurrency {
            running: 1,
            waiting: 4,
        });
        let _held = admission.enter(Duration::from_secs(1)).await.unwrap();
        let refused = admission.enter(Duration::from_millis(20)).await;
        assert_eq!(
            refused.unwrap_err(),
            Busy::WaitedTooLong(Duration::from_millis(20))
        );
        assert_eq!(admission.waiting.load(Ordering::Acquire), 0);
    }
}
