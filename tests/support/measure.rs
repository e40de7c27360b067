//! Figures the benchmarks and timing tests print.

use std::time::Duration;

/// The `p` quantile (0 to 1) of `sorted`, by the nearest-rank method; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1);
    sorted.get(i).copied().unwrap_or_default()
}
