//! Chunk sizing: how many ids the next chunk covers so that it holds the
//! writer for about the time budget. Learns the cost per id from recent
//! chunks (an exponential moving average, so one slow chunk — a checkpoint,
//! a cold page — does not halve throughput) and grows at most 2x per chunk.

use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct BatchSizer {
    batch: i64,
    min: i64,
    max: i64,
    budget_ns: f64,
    ns_per_id: Option<f64>,
}

/// Weight of the newest chunk in the moving average.
const ALPHA: f64 = 0.3;

impl BatchSizer {
    pub(crate) fn new(budget: Duration, min: i64, max: i64) -> BatchSizer {
        BatchSizer {
            batch: min.max(1),
            min: min.max(1),
            max: max.max(min.max(1)),
            budget_ns: budget.as_nanos() as f64,
            ns_per_id: None,
        }
    }

    /// Ids the next chunk should cover.
    pub(crate) fn batch(&self) -> i64 {
        self.batch
    }

    /// At the smallest size: a chunk this size is never stopped early.
    pub(crate) fn at_floor(&self) -> bool {
        self.batch <= self.min
    }

    /// Learns from a chunk over `ids` ids stopped (rolled back) after
    /// `took`, before its end: it cost more than `took / ids` per id, so the
    /// cost estimate at least doubles and the next chunk is a quarter the size.
    pub(crate) fn interrupted(&mut self, ids: i64, took: Duration) {
        if ids <= 0 {
            return;
        }
        let seen = (took.as_nanos() as f64 / ids as f64).max(1.0);
        let cost = self.ns_per_id.map_or(seen, |prev| (prev * 2.0).max(seen));
        self.ns_per_id = Some(cost);
        self.batch = (self.batch / 4).clamp(self.min, self.max);
    }

    /// Writer time for `ids` ids at the learnt cost, in seconds (0 before
    /// anything was learnt).
    pub(crate) fn seconds_for(&self, ids: i64) -> f64 {
        self.ns_per_id.unwrap_or(0.0) * ids.max(0) as f64 / 1e9
    }

    /// Learns from a chunk that covered `ids` ids in `took`.
    pub(crate) fn observe(&mut self, ids: i64, took: Duration) {
        if ids <= 0 {
            return;
        }
        let sample = (took.as_nanos() as f64 / ids as f64).max(1.0);
        let cost = match self.ns_per_id {
            None => sample,
            Some(prev) => prev * (1.0 - ALPHA) + sample * ALPHA,
        };
        self.ns_per_id = Some(cost);
        let target = (self.budget_ns / cost) as i64;
        self.batch = target
            .min(self.batch.saturating_mul(2))
            .clamp(self.min, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_to_the_budget_within_bounds() {
        let mut s = BatchSizer::new(Duration::from_millis(10), 100, 100_000);
        assert_eq!(s.batch(), 100);
        // 1 µs per id: the budget fits 10,000 ids; growth is at most 2x a step.
        let mut seen = vec![];
        for _ in 0..20 {
            let b = s.batch();
            s.observe(b, Duration::from_micros(b as u64));
            seen.push(s.batch());
        }
        assert_eq!(seen[0], 200);
        assert_eq!(*seen.last().unwrap(), 10_000);
        // A much slower phase shrinks the batch quickly.
        for _ in 0..10 {
            let b = s.batch();
            s.observe(b, Duration::from_micros(b as u64 * 10));
        }
        assert!(s.batch() < 1_500, "{}", s.batch());
        // Bounds hold.
        s.observe(10, Duration::from_secs(5));
        assert!(s.batch() >= 100);
        let mut fast = BatchSizer::new(Duration::from_millis(10), 1, 5_000);
        for _ in 0..30 {
            let b = fast.batch();
            fast.observe(b, Duration::from_nanos(b as u64));
        }
        assert_eq!(fast.batch(), 5_000);
    }

    #[test]
    fn an_interrupted_chunk_shrinks_the_next_and_raises_the_cost() {
        let mut s = BatchSizer::new(Duration::from_millis(10), 100, 100_000);
        for _ in 0..20 {
            let b = s.batch();
            s.observe(b, Duration::from_micros(b as u64));
        }
        assert_eq!(s.batch(), 10_000);
        assert!((s.seconds_for(1_000_000) - 1.0).abs() < 0.01);
        // Stopped after 25 ms without finishing 10,000 ids.
        s.interrupted(10_000, Duration::from_millis(25));
        assert_eq!(s.batch(), 2_500);
        assert!(s.seconds_for(1_000_000) >= 2.5);
        // Never below the floor.
        for _ in 0..10 {
            s.interrupted(s.batch(), Duration::from_millis(25));
        }
        assert_eq!(s.batch(), 100);
    }
}
