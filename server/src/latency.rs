//! Latency histograms, one kind for every measurement meshscope reports
//! (request timings in `/api/perf`, chunk holds, the bench): microseconds
//! from 1 µs to 1 hour at 3 significant digits (above is clamped), read
//! back in milliseconds (whole microseconds, so nothing under 10 µs reads 0).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(
            Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .unwrap_or_else(|_| unreachable!("static histogram bounds are valid")),
        )
    }
}

/// Microseconds to milliseconds.
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.0
            .saturating_record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1));
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q` quantile (0-1) in ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        ms(self.0.value_at_quantile(q))
    }

    pub fn max_ms(&self) -> f64 {
        ms(self.0.max())
    }

    /// p50, p95, p99 and max, in ms.
    pub fn quantiles_ms(&self) -> [f64; 4] {
        [
            self.quantile_ms(0.50),
            self.quantile_ms(0.95),
            self.quantile_ms(0.99),
            self.max_ms(),
        ]
    }
}

/// A latency summary as reports print it: how many, p50/p95/p99/max in ms.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub n: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// The summary of `samples` (all zero for none).
    pub fn of(samples: &[Duration]) -> Summary {
        let mut h = Latencies::default();
        for s in samples {
            h.record(*s);
        }
        let [p50_ms, p95_ms, p99_ms, max_ms] = if h.is_empty() {
            [0.0; 4]
        } else {
            h.quantiles_ms()
        };
        Summary {
            n: h.len(),
            p50_ms,
            p95_ms,
            p99_ms,
            max_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_to_the_histograms_precision() {
        let mut l = Latencies::default();
        assert!(l.is_empty());
        for us in [4u64, 1_000, 2_000, 12_345] {
            l.record(Duration::from_micros(us));
        }
        assert_eq!(l.len(), 4);
        // 3 significant digits: 12,345 µs reads back within 0.1%.
        assert!((l.max_ms() - 12.345).abs() < 0.013, "{}", l.max_ms());
        assert_eq!(l.quantile_ms(0.5), 1.0);
        assert_eq!(l.quantile_ms(0.0), 0.004);
    }
}
