//! Write pacing: a cap on requests in flight plus an optional token bucket, so that
//! thousands of simulated nodes do not flood the API server they are meant to exercise.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// One lane of writes (pod status, heartbeats), each with its own limits so that a burst
/// in one can never starve the other: a starved Lease would get a live node declared dead.
#[derive(Debug)]
pub struct Limiter {
    inflight: Semaphore,
    bucket: Option<Mutex<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Limiter {
    /// At most `inflight` concurrent requests; at most `qps` per second when positive.
    pub fn new(inflight: usize, qps: f64) -> Limiter {
        let bucket = (qps > 0.0).then(|| {
            let burst = qps.max(1.0);
            Mutex::new(Bucket {
                qps,
                burst,
                tokens: burst,
                last: Instant::now(),
            })
        });
        Limiter {
            inflight: Semaphore::new(inflight.max(1)),
            bucket,
        }
    }

    /// Waits for a token and a slot; the slot is held until the permit drops.
    pub async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        if let Some(b) = &self.bucket {
            loop {
                let wait = {
                    let mut b = b.lock();
                    let now = Instant::now();
                    let elapsed = now.duration_since(b.last).as_secs_f64();
                    b.last = now;
                    b.tokens = (b.tokens + elapsed * b.qps).min(b.burst);
                    if b.tokens >= 1.0 {
                        b.tokens -= 1.0;
                        None
                    } else {
                        Some(Duration::from_secs_f64((1.0 - b.tokens) / b.qps))
                    }
                };
                match wait {
                    None => break,
                    Some(d) => tokio::time::sleep(d).await,
                }
            }
        }
        self.inflight.acquire().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_paces_after_burst() {
        let l = Limiter::new(4, 10.0);
        let start = Instant::now();
        for _ in 0..10 {
            drop(l.acquire().await);
        }
        // The burst is free; the eleventh token needs a tenth of a second of refill.
        assert_eq!(Instant::now(), start);
        drop(l.acquire().await);
        assert!(Instant::now() >= start + Duration::from_millis(99));
    }

    #[tokio::test]
    async fn inflight_is_capped() {
        let l = Limiter::new(2, 0.0);
        let a = l.acquire().await;
        let b = l.acquire().await;
        assert!(a.is_some() && b.is_some());
        assert_eq!(l.inflight.available_permits(), 0);
        drop(a);
        assert_eq!(l.inflight.available_permits(), 1);
    }
}
