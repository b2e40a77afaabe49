//! Waiting longer between tries of something that keeps failing for a
//! reason that clears by itself (a full disk, a lock held elsewhere, a
//! broker that is down): from `min`, doubling to at most `max`, back to
//! `min` once it works. The one rule for every retry loop (the jobs, the
//! bookkeeping writes, the MQTT connection and its stores).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub const fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            next: min,
            min,
            max,
        }
    }

    /// The wait before the next try; the one after doubles.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// It worked: the next wait is the shortest again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let waits: Vec<u64> = (0..5).map(|_| b.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_secs(1));
    }
}
