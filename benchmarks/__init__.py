"""Benchmarks of VideoCLIP vs torchmultimodal's reference pipeline; run from the repository root with
``python -m benchmarks`` (all, one table) or ``python -m benchmarks.bench_<name>`` (one)."""
