//! What the criterion benches share.

use std::time::Duration;

use criterion::Criterion;

/// Criterion settings that keep each bench to a few seconds: these benches compare changes on
/// one machine, they do not need criterion's default five-second measurements.
pub(crate) fn short(sample_size: usize) -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(sample_size)
}
