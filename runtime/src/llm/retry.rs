//! When to retry a failed attempt and how long to wait first: exponential backoff with full
//! jitter, or the server's `Retry-After` when it sends one.

use std::time::{Duration, SystemTime};

pub const DEFAULT_MAX_RETRIES: u32 = 2;
pub const DEFAULT_BACKOFF_MS: u64 = 500;
/// The longest wait between two attempts, whatever the server asks for.
const MAX_DELAY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            backoff: Duration::from_millis(DEFAULT_BACKOFF_MS),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based). `Retry-After` wins over backoff.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(MAX_DELAY);
        }
        let ceiling = self
            .backoff
            .saturating_mul(1u32 << (retry.saturating_sub(1)).min(16))
            .min(MAX_DELAY);
        // Half fixed, half random: retries of parallel calls spread out, yet never come
        // back immediately.
        let half = ceiling / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// HTTP statuses worth another attempt: timeouts, conflicts, rate limits, server errors.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || (500..600).contains(&status)
}

/// `Retry-After` (seconds or an HTTP date), or OpenAI's `retry-after-ms`.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn backoff_doubles_within_jitter() {
        let policy = RetryPolicy {
            max_retries: 5,
            backoff: Duration::from_millis(100),
        };
        for retry in 1..=4 {
            let ceiling = Duration::from_millis(100 << (retry - 1));
            let delay = policy.delay(retry, None);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} for {retry}"
            );
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(policy.delay(1, Some(Duration::from_secs(3600))), MAX_DELAY);
    }

    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
        let mut dated = HeaderMap::new();
        dated.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&dated), Some(Duration::ZERO));
        assert!(retryable_status(429) && retryable_status(503) && retryable_status(408));
        assert!(!retryable_status(400) && !retryable_status(401));
    }
}
