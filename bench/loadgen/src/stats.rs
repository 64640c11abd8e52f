//! Exact percentiles: every sample is kept and sorted once at the end (wrk's histogram
//! rounds; at a few million samples, keeping them all costs a few tens of megabytes).

use std::time::Duration;

use serde_json::{Value, json};

/// The nearest-rank `p`th percentile (0 < p <= 100) of `sorted`, ascending.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank: the smallest value with at least p % of the samples at or below it.
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Sorts `samples` (milliseconds) and summarises them: p50, p90, p99, max, min, mean, in ms
/// rounded to microseconds; nulls when there are none.
pub(crate) fn summary(samples: &mut [f64]) -> Value {
    samples.sort_by(f64::total_cmp);
    let mean = if samples.is_empty() {
        None
    } else {
        Some(samples.iter().sum::<f64>() / samples.len() as f64)
    };
    json!({
        "p50": percentile(samples, 50.0).map(round),
        "p90": percentile(samples, 90.0).map(round),
        "p99": percentile(samples, 99.0).map(round),
        "max": samples.last().copied().map(round),
        "min": samples.first().copied().map(round),
        "mean": mean.map(round),
    })
}

/// `duration` in milliseconds.
pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `value` rounded to three decimals (a microsecond, for milliseconds).
pub(crate) fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(50.0));
        assert_eq!(percentile(&sorted, 99.0), Some(99.0));
        assert_eq!(percentile(&sorted, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[1.0, 2.0], 50.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summary_sorts() {
        let mut samples = vec![3.0, 1.0, 2.0];
        let s = summary(&mut samples);
        assert_eq!(s["p50"], 2.0);
        assert_eq!(s["max"], 3.0);
        assert_eq!(s["min"], 1.0);
    }
}
