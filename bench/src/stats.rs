//! Distributions of samples: percentiles and summaries.
//!
//! Percentiles use the nearest-rank method (the value of a real sample, never
//! an interpolation), so `p99` of 100 samples is the 99th smallest and `max`
//! is always a sample that happened.

use serde::Serialize;

/// The summary of a distribution printed in every latency table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Smallest sample.
    pub min: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// Summarises `samples` (any order); `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let sorted = sorted(samples);
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        Some(Summary {
            n: sorted.len(),
            min,
            p50: percentile_sorted(&sorted, 50.0)?,
            p90: percentile_sorted(&sorted, 90.0)?,
            p99: percentile_sorted(&sorted, 99.0)?,
            max,
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        })
    }
}

/// The samples in ascending order; NaNs (which no measurement produces) sort last.
pub fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// Nearest-rank percentile `p` (0–100] of ascending `sorted` samples.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    // Rank ⌈p/100 × n⌉, 1-based.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Median of unsorted samples.
pub fn median(samples: &[f64]) -> Option<f64> {
    percentile_sorted(&sorted(samples), 50.0)
}

/// The empirical CDF as `(value, fraction ≤ value)` points, for plots.
pub fn cdf(samples: &[f64]) -> Vec<(f64, f64)> {
    let sorted = sorted(samples);
    let n = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .map(|(i, v)| (*v, (i + 1) as f64 / n))
        .collect()
}

/// `(measured − expected) / expected` in percent; `None` when `expected` is 0.
pub fn error_percent(measured: f64, expected: f64) -> Option<f64> {
    (expected != 0.0).then(|| (measured - expected) / expected * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_are_real_samples() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let s = Summary::of(&samples).expect("non-empty");
        assert_eq!((s.n, s.min, s.max), (100, 1.0, 100.0));
        assert_eq!((s.p50, s.p90, s.p99), (50.0, 90.0, 99.0));
        assert!((s.mean - 50.5).abs() < 1e-9);
        // Few samples: p99 of 3 is the largest, p50 the middle one.
        let few = Summary::of(&[3.0, 1.0, 2.0]).expect("non-empty");
        assert_eq!((few.p50, few.p99), (2.0, 3.0));
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn percentile_rejects_out_of_range() {
        assert_eq!(percentile_sorted(&[1.0], 0.0), None);
        assert_eq!(percentile_sorted(&[1.0], 101.0), None);
        assert_eq!(percentile_sorted(&[1.0, 2.0], 100.0), Some(2.0));
    }

    #[test]
    fn cdf_ends_at_one_and_is_monotonic() {
        let cdf = cdf(&[5.0, 1.0, 3.0, 3.0]);
        assert_eq!(cdf.first(), Some(&(1.0, 0.25)));
        assert_eq!(cdf.last(), Some(&(5.0, 1.0)));
        assert!(cdf.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
    }

    #[test]
    fn error_percent_is_relative() {
        assert_eq!(error_percent(0.55, 0.5).map(|e| e.round()), Some(10.0));
        assert_eq!(error_percent(1.0, 0.0), None);
    }
}
