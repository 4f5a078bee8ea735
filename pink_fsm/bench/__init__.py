"""`pink bench`: benchmarks with same-run baselines (JSON keyed by area)."""
