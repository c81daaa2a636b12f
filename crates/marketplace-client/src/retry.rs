//! Retries with exponential backoff, for errors a backend marked transient.

use std::future::Future;
use std::time::Duration;

use marketplace_core::Result;

/// How the client retries a backend call that failed with a transient error
/// ([`marketplace_core::Error::is_transient`]). Other errors are returned at once.
///
/// The delay before retry `n` (1-based) is `initial_backoff × 2^(n-1)`, capped at
/// `max_backoff`, or longer when the service said when to come back
/// ([`marketplace_core::Error::retry_after`], an HTTP `Retry-After`); a wait longer than
/// `max_retry_after` is not waited, the error is returned. Retries sleep with tokio's timer, so
/// the runtime needs time enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retries). Default 3.
    pub max_attempts: u32,
    /// Delay before the first retry. Default 50 ms.
    pub initial_backoff: Duration,
    /// Longest delay. Default 2 s.
    pub max_backoff: Duration,
    /// Longest wait a service may ask for before a retry. Default 30 s.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// `max_attempts` attempts with the given first delay (doubling, capped at 2 s).
    pub fn new(max_attempts: u32, initial_backoff: Duration) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            initial_backoff,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry `retry` (1-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// Runs `call` until it succeeds, fails with an error that is not transient, or the
    /// attempts are used up; `on_retry` sees each transient error that is retried.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        mut call: F,
        mut on_retry: impl FnMut(&marketplace_core::Error),
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if e.is_transient() && attempt < self.max_attempts => {
                    let delay = match e.retry_after() {
                        Some(asked) if asked > self.max_retry_after => return Err(e),
                        Some(asked) => asked.max(self.backoff(attempt)),
                        None => self.backoff(attempt),
                    };
                    on_retry(&e);
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use marketplace_core::{Error, RetryAfter};

    use super::*;

    fn asks_to_wait(seconds: u64) -> Error {
        Error::backend(
            "remote",
            "get",
            RetryAfter {
                message: "429 Too Many Requests".into(),
                after: Duration::from_secs(seconds),
            },
            true,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_waits_as_long_as_the_service_asks() {
        let policy = RetryPolicy::new(3, Duration::from_millis(10));
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result = policy
            .run(
                || async {
                    match calls.fetch_add(1, Ordering::SeqCst) {
                        0 => Err(asks_to_wait(5)),
                        _ => Ok(()),
                    }
                },
                |_| {},
            )
            .await;
        assert!(result.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_longer_than_the_policy_allows_is_not_waited() {
        let policy = RetryPolicy::new(3, Duration::from_millis(10));
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result: Result<()> = policy
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(asks_to_wait(3600))
                },
                |_| {},
            )
            .await;
        assert_eq!(
            result.unwrap_err().retry_after(),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy::new(10, Duration::from_millis(100));
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(200));
        assert_eq!(policy.backoff(3), Duration::from_millis(400));
        assert_eq!(policy.backoff(9), Duration::from_secs(2));
        assert_eq!(policy.backoff(40), Duration::from_secs(2));
    }
}
