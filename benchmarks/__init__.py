"""Benchmarks of VideoCLIP vs torchmultimodal's reference pipeline; entry point: ``python benchmarks/run.py``."""
