//! When to try a failed request again: exponential backoff with jitter, or exactly what the
//! server's `Retry-After` asks for.

use std::time::Duration;

use super::ModelError;

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub max_retries: u32,
    /// The first backoff; each further one doubles.
    pub initial: Duration,
    /// The longest backoff, and the longest `Retry-After` honoured.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 4, initial: Duration::from_secs(1), max_delay: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first) after `error`, or `None` when
    /// the error is not worth retrying or the retries are used up.
    pub fn delay(&self, retry: u32, error: &ModelError) -> Option<Duration> {
        if retry >= self.max_retries || !error.is_retryable() {
            return None;
        }
        if let Some(asked) = error.retry_after() {
            return Some(asked.min(self.max_delay));
        }
        let base = self.initial.saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX)).min(self.max_delay);
        // Jitter over the upper half: clients that failed together do not come back together.
        let half = base / 2;
        Some(half + half.mul_f64(fastrand::f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, retry_after: Option<Duration>) -> ModelError {
        ModelError::Status { url: "u".into(), status, message: String::new(), retry_after }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let p = RetryPolicy { max_retries: 10, initial: Duration::from_millis(100), max_delay: Duration::from_millis(1000) };
        for (retry, (lo, hi)) in [(0, (50, 100)), (1, (100, 200)), (2, (200, 400)), (6, (500, 1000))] {
            for _ in 0..50 {
                let d = p.delay(retry, &status(503, None)).unwrap().as_millis();
                assert!((lo..=hi).contains(&d), "retry {retry}: {d}ms");
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = RetryPolicy { max_retries: 3, initial: Duration::from_millis(100), max_delay: Duration::from_secs(5) };
        assert_eq!(p.delay(0, &status(429, Some(Duration::from_secs(2)))), Some(Duration::from_secs(2)));
        assert_eq!(p.delay(0, &status(429, Some(Duration::from_secs(500)))), Some(Duration::from_secs(5)));
    }

    #[test]
    fn fatal_errors_and_spent_retries_stop() {
        let p = RetryPolicy { max_retries: 2, ..RetryPolicy::default() };
        assert_eq!(p.delay(0, &status(401, None)), None);
        assert_eq!(p.delay(2, &status(500, None)), None);
        assert!(p.delay(1, &status(500, None)).is_some());
    }
}
