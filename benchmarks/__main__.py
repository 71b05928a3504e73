"""Runs every benchmark, ours vs torchmultimodal's reference side by side, into one table::

    python -m benchmarks [--only NAME ...] [--json out.json] [--reference-dir PATH] [--quick]

NAME: processor, text, video, load (model), pipeline (end-to-end embedding), render (MUGEN renderer), recall
(Recall@K), data (game JSON to model input, per core), device (device-side preprocessing; GPU rows), half (bf16 /
fp16 weights), compile (torch.compile), onnx (onnxruntime); ``render``, ``pipeline`` and ``data`` need
``--reference-dir``, a facebookresearch/multimodal checkout (else they are skipped). Each benchmark's own flags
apply here too; ``python -m benchmarks.bench_<name>`` runs one alone. Every figure is a ratio of both sides run
interleaved (ABBA...) in one process, after a check that they computed the same result ("max abs diff");
``--quick`` cuts repetitions and optional variants (the full run takes ~20 min on 2 cores, torch.compile's
compilation of S3D several of them).
"""

from benchmarks.common import main

if __name__ == "__main__":  # not when a spawned worker process re-imports the main module
    names = [f"benchmarks.bench_{name}" for name in ("model", "pipeline", "render", "recall", "scale")]
    raise SystemExit(main(names, description=__doc__))
