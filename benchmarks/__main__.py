"""Runs every benchmark, ours vs torchmultimodal's reference side by side, and prints one table.

Usage::

    python -m benchmarks [--only NAME ...] [--json out.json] [--reference-dir PATH] [--quick]

NAME is one of: processor, text, video, load (model benchmarks), pipeline (end-to-end embedding from
``load_mugen`` + DataLoader), render (MUGEN renderer), recall (Recall@K). ``--reference-dir`` is a checkout
of facebookresearch/multimodal, needed by ``render`` and ``pipeline`` (their reference code is not on PyPI);
without it those rows say they were skipped. Each benchmark's own flags (``--num-clips``, ``--n-compare``...)
apply here too; ``python -m benchmarks.bench_render`` (or ``bench_model``, ``bench_pipeline``, ``bench_recall``)
runs one alone.

Every figure is a ratio of two runs of the same work in the same process, interleaved (ABBA...) with medians,
because absolute times on a shared machine are noise; every benchmark first checks that both sides computed
the same result (the "max abs diff" column). ``--quick`` cuts repetitions and optional variants (~2 min);
the full run takes under ~10 minutes on 2 cores.
"""

from benchmarks import bench_model, bench_pipeline, bench_recall, bench_render
from benchmarks.common import main

if __name__ == "__main__":  # not when a spawned worker process re-imports the main module
    raise SystemExit(main([bench_model, bench_pipeline, bench_render, bench_recall], description=__doc__))
