#!/usr/bin/env python
"""Benchmark: blocked Recall@K (modeling_videoclip.retrieval) vs the reference's full-matrix computation.

The reference (``examples/mugen/retrieval/model.py`` in facebookresearch/multimodal) builds the whole N x N
similarity matrix and asks torchmetrics for Recall@k, i.e. ``topk`` of each row (and of each column, on
the transposed matrix) against an identity target. That needs 4 * N**2 bytes for the matrix alone
(40 GB at N = 100,000; torchmetrics adds an N x N integer target on top, not counted here). Ours walks
the matrix in square blocks.

Cases (each measured in a fresh subprocess, so peak memory figures do not see each other's leftovers):

1. ``compare``: ours and the full-matrix computation at the same N, same process, same embeddings; prints
   the time and memory ratios and checks that every query's hit/miss at every k is identical. The full
   matrix must fit in RAM: if the requested N (100,000 by default) does not fit, the largest N that does
   is used for the comparison and ours is also run alone at the requested N (case ``ours``).
2. ``large``: ours alone at N = 1,000,000. Its peak extra memory is measured on the first row blocks
   (``--large-row-blocks``, 2 by default); memory does not grow with more blocks (the state carried
   between blocks is O(N)), and the total time is extrapolated from the measured blocks unless
   ``--large-full`` runs them all (hours on a 2-core CPU, minutes on a GPU).

Peak extra memory = peak resident memory during the call minus the resident memory just before it (the
embeddings themselves are not counted). On Linux the kernel's peak counter (VmHWM) is reset before each
call through /proc/self/clear_refs, so the peak is exact; elsewhere RSS is sampled every 2 ms. On CUDA,
``torch.cuda.max_memory_allocated`` is used.

Usage: python benchmarks/bench_recall.py [--n-compare 100000] [--n-large 1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_videoclip import retrieval as R  # noqa: E402

KS = R.DEFAULT_KS
MIB = 1024**2


# ----------------------------------------------------------------------------------------------------
# Memory measurement
# ----------------------------------------------------------------------------------------------------


def _proc_status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _rss() -> int:
    value = _proc_status("VmRSS")
    if value is not None:
        return value
    import psutil  # only off Linux

    return psutil.Process().memory_info().rss


class PeakMemory:
    """Context manager measuring the peak extra memory of its body (bytes), see the module docstring."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_extra = 0
        self.method = ""

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            self.method = "torch.cuda.max_memory_allocated"
            return self
        self.base = _rss()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            self.method = "VmHWM (reset via /proc/self/clear_refs)"
            self._sampler = None
        except OSError:
            self.method = "RSS sampled every 2 ms"
            self._samples = [self.base]
            self._stop = threading.Event()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._samples.append(_rss())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_extra = torch.cuda.max_memory_allocated() - self.base
        elif self._sampler is None:
            self.peak_extra = _proc_status("VmHWM") - self.base
        else:
            self._stop.set()
            self._sampler.join()
            self.peak_extra = max(self._samples) - self.base


# ----------------------------------------------------------------------------------------------------
# Workloads
# ----------------------------------------------------------------------------------------------------


def make_embeddings(n: int, dim: int, seed: int, device: torch.device, noise: float = 3.0):
    """Unit-norm paired embeddings, video i = normalise(text i + noise), filled in slices so that making
    them does not leave a transient peak above the embeddings themselves. With noise 3 in 256-d the true
    pair is far from certain to win (Recall@1 well below 100% at these N), like a real model."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    text = torch.empty(n, dim, device=device)
    video = torch.empty(n, dim, device=device)
    step = 65536
    for start in range(0, n, step):
        t = torch.randn(min(step, n - start), dim, generator=generator)
        v = t + noise * torch.randn(t.shape, generator=generator)
        text[start : start + len(t)] = torch.nn.functional.normalize(t, dim=1).to(device)
        video[start : start + len(t)] = torch.nn.functional.normalize(v, dim=1).to(device)
    return text, video


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def full_matrix_hits(text: torch.Tensor, video: torch.Tensor, ks=KS) -> dict:
    """The reference's way: whole similarity matrix, torch.topk per query row (and on the transpose for
    video queries, as ``Recall(preds=similarity_matrix.T)``), identity target."""
    with torch.inference_mode():
        sim = text @ video.T
        target = torch.arange(sim.shape[0], device=sim.device)[:, None]
        hits = {}
        for name, matrix in (("text_to_video", sim), ("video_to_text", sim.T)):
            hits[name] = {k: (matrix.topk(k, dim=1).indices == target).any(dim=1).cpu() for k in ks}
        return hits


def ours_ranks(text: torch.Tensor, video: torch.Tensor, chunk_size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    # normalize=False: the inputs are unit-norm already, and the reference ranks raw ``text @ video.T``.
    return R.retrieval_ranks(text, video, chunk_size=chunk_size, normalize=False)


def run_compare(n: int, dim: int, seed: int, device: torch.device, chunk_size: int | None) -> dict:
    text, video = make_embeddings(n, dim, seed, device)
    synchronize(device)
    with PeakMemory(device) as ours_mem:
        start = time.perf_counter()
        t2v, v2t = ours_ranks(text, video, chunk_size)
        metrics = {
            "text_to_video": R.metrics_from_ranks(t2v, KS),
            "video_to_text": R.metrics_from_ranks(v2t, KS),
        }
        synchronize(device)
        ours_time = time.perf_counter() - start
    with PeakMemory(device) as full_mem:
        start = time.perf_counter()
        hits = full_matrix_hits(text, video)
        synchronize(device)
        full_time = time.perf_counter() - start
    identical = all(
        torch.equal((ranks.cpu() <= k), hits[name][k])
        for name, ranks in (("text_to_video", t2v), ("video_to_text", v2t))
        for k in KS
    )
    full_recall = {
        name: {k: 100.0 * int(hits[name][k].sum()) / n for k in KS} for name in ("text_to_video", "video_to_text")
    }
    return {
        "case": "compare",
        "n": n,
        "ours": {"time_s": ours_time, "peak_extra_mib": ours_mem.peak_extra / MIB, "memory_method": ours_mem.method},
        "full_matrix": {"time_s": full_time, "peak_extra_mib": full_mem.peak_extra / MIB},
        "identical_hits": identical,
        "recall_ours": {name: m.recall for name, m in metrics.items()},
        "recall_full_matrix": full_recall,
        "median_rank": {name: m.median_rank for name, m in metrics.items()},
        "mean_rank": {name: m.mean_rank for name, m in metrics.items()},
    }


def run_ours(n: int, dim: int, seed: int, device: torch.device, chunk_size: int | None, max_row_blocks: int | None) -> dict:
    """Ours alone; with ``max_row_blocks``, only the first row blocks of the matrix (see the docstring)."""
    text, video = make_embeddings(n, dim, seed, device)
    chunk = chunk_size or R._DEFAULT_CHUNK_SIZE
    num_blocks = -(-n // chunk)
    blocks_to_run = num_blocks if max_row_blocks is None else min(max_row_blocks, num_blocks)
    synchronize(device)
    block_times = []
    with PeakMemory(device) as mem, torch.inference_mode():
        start = time.perf_counter()
        blocks = R._iter_rank_blocks(text, video, chunk, normalize=False, ties="optimistic")
        t2v = torch.empty(n, dtype=torch.long, device=device)
        last = start
        for done, (rows, t2v_counts, v2t_counts) in enumerate(blocks, 1):
            t2v[rows] = t2v_counts
            synchronize(device)
            now = time.perf_counter()
            block_times.append(now - last)
            last = now
            if done == blocks_to_run:
                break
        measured = time.perf_counter() - start
    # The first yielded block includes the diagonal pre-pass (one block per row block).
    per_block = (sum(block_times[1:]) / (len(block_times) - 1)) if len(block_times) > 1 else block_times[0]
    prepass = max(0.0, block_times[0] - per_block)
    complete = blocks_to_run == num_blocks
    result = {
        "case": "ours" if complete else "ours_partial",
        "n": n,
        "chunk_size": chunk,
        "row_blocks_run": blocks_to_run,
        "row_blocks_total": num_blocks,
        "time_measured_s": measured,
        "time_total_s": measured if complete else prepass + per_block * num_blocks,
        "time_is_extrapolated": not complete,
        "peak_extra_mib": mem.peak_extra / MIB,
        "memory_method": mem.method,
        "embeddings_mib": 2 * text.numel() * text.element_size() / MIB,
    }
    if complete:
        v2t = v2t_counts + 1
        result["recall"] = {
            "text_to_video": R.metrics_from_ranks(t2v + 1, KS).recall,
            "video_to_text": R.metrics_from_ranks(v2t, KS).recall,
        }
    return result


# ----------------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------------


def mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return psutil.virtual_memory().available
    except ImportError:
        return None


def largest_full_matrix_n(requested: int, dim: int, device: torch.device) -> tuple[int, str]:
    """The largest N (a multiple of 1000, at most `requested`) whose full-matrix run fits in memory."""
    if device.type == "cuda":
        budget = torch.cuda.mem_get_info(device)[0]
    else:
        budget = mem_available()
    if budget is None:
        return requested, "available memory unknown: trying the requested N"
    usable = 0.6 * budget
    # The N x N float32 matrix (topk on its transposed view makes no copy: measured 6,108 MiB at N=40,000,
    # i.e. the matrix alone) plus the embeddings.
    need = lambda n: 4 * n * n + 2 * 4 * n * dim  # noqa: E731
    if need(requested) <= usable:
        return requested, ""
    n = int((usable / 4) ** 0.5) // 1000 * 1000
    return max(1000, n), (
        f"the full N x N matrix at N={requested:,} needs ~{need(requested) / 1024**3:.0f} GiB but "
        f"{budget / 1024**3:.1f} GiB is available: the comparison runs at N={n:,}"
    )


def run_in_subprocess(spec: dict) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark worker failed ({spec}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker(spec: dict) -> None:
    device = torch.device(spec["device"])
    if spec["case"] == "compare":
        result = run_compare(spec["n"], spec["dim"], spec["seed"], device, spec["chunk_size"])
    else:
        result = run_ours(spec["n"], spec["dim"], spec["seed"], device, spec["chunk_size"], spec.get("max_row_blocks"))
    print(json.dumps(result))


def format_table(results: list[dict]) -> str:
    rows = [("case", "N", "method", "time (s)", "peak extra (MiB)", "notes")]
    for r in results:
        if r["case"] == "compare":
            ours, full = r["ours"], r["full_matrix"]
            rows.append(("compare", f"{r['n']:,}", "ours (blocked)", f"{ours['time_s']:.1f}", f"{ours['peak_extra_mib']:.0f}", ""))
            rows.append(
                (
                    "compare",
                    f"{r['n']:,}",
                    "full matrix + topk",
                    f"{full['time_s']:.1f}",
                    f"{full['peak_extra_mib']:.0f}",
                    f"time x{full['time_s'] / ours['time_s']:.2f}, memory x{full['peak_extra_mib'] / max(ours['peak_extra_mib'], 1e-9):.1f} "
                    f"vs ours; identical hits: {'yes' if r['identical_hits'] else 'NO'}",
                )
            )
        else:
            note = (
                f"{r['row_blocks_run']}/{r['row_blocks_total']} row blocks run, total time extrapolated"
                if r["time_is_extrapolated"]
                else "complete"
            )
            note += f"; embeddings {r['embeddings_mib']:.0f} MiB not counted"
            rows.append(
                (r["case"], f"{r['n']:,}", "ours (blocked)", f"{r['time_total_s']:.1f}", f"{r['peak_extra_mib']:.0f}", note)
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-compare", type=int, default=100_000, help="N for ours vs full matrix (100,000)")
    parser.add_argument("--n-large", type=int, default=1_000_000, help="N for ours alone (1,000,000)")
    parser.add_argument("--large-row-blocks", type=int, default=2, help="row blocks measured at --n-large (2: the first includes the diagonal pre-pass)")
    parser.add_argument("--large-full", action="store_true", help="run every row block at --n-large")
    parser.add_argument("--skip-large", action="store_true", help="skip the --n-large case")
    parser.add_argument("--dim", type=int, default=256, help="embedding dim (256, VideoCLIP's)")
    parser.add_argument("--chunk-size", type=int, default=None, help="block side (default: the library's, 4096)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0

    device = torch.device(args.device)
    common = {"dim": args.dim, "seed": args.seed, "device": args.device, "chunk_size": args.chunk_size}
    results, notes = [], []
    n_compare, note = largest_full_matrix_n(args.n_compare, args.dim, device)
    if note:
        notes.append(note)
    print(f"[compare] N={n_compare:,}: ours vs full matrix ...", file=sys.stderr, flush=True)
    results.append(run_in_subprocess({**common, "case": "compare", "n": n_compare}))
    if n_compare != args.n_compare:
        print(f"[ours] N={args.n_compare:,} ...", file=sys.stderr, flush=True)
        results.append(run_in_subprocess({**common, "case": "ours", "n": args.n_compare}))
    if not args.skip_large:
        blocks = None if args.large_full else args.large_row_blocks
        print(f"[large] N={args.n_large:,} ({'all' if blocks is None else blocks} row blocks) ...", file=sys.stderr, flush=True)
        results.append(run_in_subprocess({**common, "case": "ours", "n": args.n_large, "max_row_blocks": blocks}))

    environment = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "mem_available_gib": (mem_available() or 0) / 1024**3,
        "dim": args.dim,
    }
    print(format_table(results))
    for note in notes:
        print(f"note: {note}")
    for r in results:
        if r["case"] == "compare":
            print(f"recall (ours) at N={r['n']:,}: {json.dumps(r['recall_ours'])}")
    print(f"environment: {json.dumps(environment)}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "notes": notes, "environment": environment}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
