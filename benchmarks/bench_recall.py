"""Blocked Recall@K (modeling_videoclip.retrieval) vs the reference's full-matrix computation.

The reference (``examples/mugen/retrieval/model.py`` in facebookresearch/multimodal) builds the whole N x N
similarity matrix and asks torchmetrics for Recall@k, i.e. ``topk`` of each row (and of each column, on
the transposed matrix) against an identity target. That needs 4 * N**2 bytes for the matrix alone
(40 GB at N = 100,000; torchmetrics adds an N x N integer target on top, not counted here). Ours walks
the matrix in square blocks.

Cases (each measured in a fresh process, so peak memory figures do not see each other's leftovers):

1. ``compare``: ours and the full-matrix computation at the same N, same process, same embeddings; the time
   and memory ratios, and a check that every query's hit/miss at every k is identical. The full matrix must
   fit in RAM: if the requested N (100,000 by default; 10,000 with ``--quick``) does not fit, the largest N
   that does is used for the comparison and ours is also run alone at the requested N (case ``ours``).
2. ``large``: ours alone at N = 1,000,000 (skipped with ``--quick``). Its peak extra memory is measured on the
   first row blocks (``--large-row-blocks``, 2 by default); memory does not grow with more blocks (the state
   carried between blocks is O(N)), and the total time is extrapolated from the measured blocks unless
   ``--large-full`` runs them all (hours on a 2-core CPU, minutes on a GPU).

Peak extra memory is `benchmarks.common.PeakMemory`'s: the peak during the call minus the memory just before it
(the embeddings themselves are not counted).

Run alone: ``python -m benchmarks.bench_recall [--quick] [--n-compare 100000] [--n-large 1000000] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import time

import torch

from benchmarks.common import MIB, BenchOptions, PeakMemory, Result, check_goal, main, mem_available, timed

NAMES = ("recall",)
MEMORY_GOAL = "<= 1024 MiB"


def make_embeddings(n: int, dim: int, seed: int, device: torch.device, noise: float = 3.0):
    """Unit-norm paired embeddings, video i = normalise(text i + noise), filled in slices so that making
    them does not leave a transient peak above the embeddings themselves. With noise 3 in 256-d the true
    pair is far from certain to win (Recall@1 well below 100% at these N), like a real model."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    text, video = torch.empty(n, dim, device=device), torch.empty(n, dim, device=device)
    step = 65536
    for start in range(0, n, step):
        t = torch.randn(min(step, n - start), dim, generator=generator)
        v = t + noise * torch.randn(t.shape, generator=generator)
        text[start : start + len(t)] = torch.nn.functional.normalize(t, dim=1).to(device)
        video[start : start + len(t)] = torch.nn.functional.normalize(v, dim=1).to(device)
    return text, video


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def full_matrix_hits(text: torch.Tensor, video: torch.Tensor, ks) -> dict:
    """The reference's way: whole similarity matrix, torch.topk per query row (and on the transpose for
    video queries, as ``Recall(preds=similarity_matrix.T)``), identity target."""
    with torch.inference_mode():
        sim = text @ video.T
        target = torch.arange(sim.shape[0], device=sim.device)[:, None]
        return {
            name: {k: (matrix.topk(k, dim=1).indices == target).any(dim=1).cpu() for k in ks}
            for name, matrix in (("text_to_video", sim), ("video_to_text", sim.T))
        }


def run_compare(n: int, dim: int, seed: int, device: str, chunk_size: int | None) -> dict:
    from modeling_videoclip.retrieval import DEFAULT_KS, metrics_from_ranks, retrieval_ranks

    device = torch.device(device)
    text, video = make_embeddings(n, dim, seed, device)
    _synchronize(device)

    def ours() -> tuple[dict, dict]:
        # normalize=False: the inputs are unit-norm already, and the reference ranks raw ``text @ video.T``.
        ranks = retrieval_ranks(text, video, chunk_size=chunk_size, normalize=False)
        ranks = dict(zip(("text_to_video", "video_to_text"), ranks))
        metrics = {name: metrics_from_ranks(direction_ranks, DEFAULT_KS) for name, direction_ranks in ranks.items()}
        _synchronize(device)
        return ranks, metrics

    with PeakMemory(device) as ours_memory:
        (ranks, metrics), ours_time, _ = timed(ours)
    with PeakMemory(device) as full_memory:  # its hits are copied to the CPU: the device is done when it returns
        hits, full_time, _ = timed(lambda: full_matrix_hits(text, video, DEFAULT_KS))
    return {
        "case": "compare",
        "n": n,
        "ours": {
            "time_s": ours_time, "peak_extra_mib": ours_memory.peak_extra / MIB, "memory_method": ours_memory.method
        },
        "full_matrix": {"time_s": full_time, "peak_extra_mib": full_memory.peak_extra / MIB},
        "identical_hits": all(
            torch.equal(ranks[name].cpu() <= k, hits[name][k]) for name in ranks for k in DEFAULT_KS
        ),
        "recall_ours": {name: m.recall for name, m in metrics.items()},
        "recall_full_matrix": {name: {k: 100.0 * int(hits[name][k].sum()) / n for k in DEFAULT_KS} for name in hits},
        "median_rank": {name: m.median_rank for name, m in metrics.items()},
        "mean_rank": {name: m.mean_rank for name, m in metrics.items()},
    }


def run_ours(n: int, dim: int, seed: int, device: str, chunk_size: int | None, max_row_blocks: int | None) -> dict:
    """Ours alone; with ``max_row_blocks``, only the first row blocks of the matrix (see the docstring)."""
    from modeling_videoclip.retrieval import DEFAULT_KS, metrics, metrics_from_ranks

    device = torch.device(device)
    text, video = make_embeddings(n, dim, seed, device)
    chunk = chunk_size or metrics._DEFAULT_CHUNK_SIZE
    num_blocks = -(-n // chunk)
    blocks_to_run = num_blocks if max_row_blocks is None else min(max_row_blocks, num_blocks)
    _synchronize(device)
    block_times = []
    with PeakMemory(device) as memory, torch.inference_mode():
        start = last = time.perf_counter()
        t2v = torch.empty(n, dtype=torch.long, device=device)
        blocks = metrics._iter_rank_blocks(text, video, chunk, normalize=False, ties="optimistic")
        for done, (rows, t2v_counts, v2t_counts) in enumerate(blocks, 1):
            t2v[rows] = t2v_counts
            _synchronize(device)
            block_times.append(time.perf_counter() - last)
            last = time.perf_counter()
            if done == blocks_to_run:
                break
        measured = time.perf_counter() - start
    # The first yielded block includes the diagonal pre-pass (one block per row block).
    per_block = sum(block_times[1:]) / (len(block_times) - 1) if len(block_times) > 1 else block_times[0]
    complete = blocks_to_run == num_blocks
    result = {
        "case": "ours" if complete else "ours_partial",
        "n": n,
        "chunk_size": chunk,
        "row_blocks_run": blocks_to_run,
        "row_blocks_total": num_blocks,
        "time_measured_s": measured,
        "time_total_s": measured if complete else max(0.0, block_times[0] - per_block) + per_block * num_blocks,
        "time_is_extrapolated": not complete,
        "peak_extra_mib": memory.peak_extra / MIB,
        "memory_method": memory.method,
        "embeddings_mib": 2 * text.numel() * text.element_size() / MIB,
    }
    if complete:
        result["recall"] = {
            "text_to_video": metrics_from_ranks(t2v + 1, DEFAULT_KS).recall,
            "video_to_text": metrics_from_ranks(v2t_counts + 1, DEFAULT_KS).recall,
        }
    return result


def largest_full_matrix_n(requested: int, dim: int, device: torch.device) -> tuple[int, str]:
    """The largest N (a multiple of 1000, at most `requested`) whose full-matrix run fits in memory."""
    budget = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else mem_available()
    if budget is None:
        return requested, "available memory unknown: trying the requested N"
    usable = 0.6 * budget

    # The N x N float32 matrix (topk on its transposed view makes no copy: measured 6,108 MiB at N=40,000,
    # i.e. the matrix alone) plus the embeddings.
    def need(n: int) -> int:
        return 4 * n * n + 2 * 4 * n * dim

    if need(requested) <= usable:
        return requested, ""
    n = int((usable / 4) ** 0.5) // 1000 * 1000
    return max(1000, n), (
        f"the full N x N matrix at N={requested:,} needs ~{need(requested) / 1024**3:.0f} GiB but "
        f"{budget / 1024**3:.1f} GiB is available: the comparison runs at N={n:,}"
    )


def in_fresh_process(function, *args) -> dict:
    """``function(*args)`` in a new spawned process, so its peak memory starts from a clean one."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def to_row(entry: dict, note: str = "") -> Result:
    """One case's table row."""
    if entry["case"] == "compare":
        ours, full = entry["ours"], entry["full_matrix"]
        return Result(
            name=f"Recall@K, N={entry['n']:,} (time; memory in notes)",
            unit="s",
            ours=ours["time_s"],
            reference=full["time_s"],
            ratio=full["time_s"] / ours["time_s"],
            max_abs_diff=0.0 if entry["identical_hits"] else 1.0,
            repeats=1,
            notes=f"peak extra memory ours {ours['peak_extra_mib']:.0f} MiB vs full matrix "
            f"{full['peak_extra_mib']:.0f} MiB; diff 0 = identical hits at every k" + (f"; {note}" if note else ""),
            extra=entry,
        )
    peak = entry["peak_extra_mib"]
    return Result(
        name=f"Recall@K, N={entry['n']:,}, ours alone (peak extra memory)",
        unit="MiB",
        ours=peak,
        reference=None,
        ratio=None,
        goal=MEMORY_GOAL,
        goal_met=check_goal(peak, MEMORY_GOAL),
        repeats=1,
        notes=f"time {entry['time_total_s']:.0f} s" + (" (extrapolated)" if entry["time_is_extrapolated"] else "")
        + f"; {entry['row_blocks_run']}/{entry['row_blocks_total']} row blocks run; embeddings "
        f"{entry['embeddings_mib']:.0f} MiB not counted",
        extra=entry,
    )


def add_arguments(parser: argparse._ArgumentGroup) -> None:
    parser.add_argument("--n-compare", type=int, help="N for ours vs full matrix (100,000; --quick: 10,000)")
    parser.add_argument("--n-large", type=int, default=1_000_000, help="N for ours alone (1,000,000)")
    parser.add_argument(
        "--large-row-blocks", type=int, default=2,
        help="row blocks measured at --n-large (2: the first includes the diagonal pre-pass)",
    )
    parser.add_argument("--large-full", action="store_true", help="run every row block at --n-large")
    parser.add_argument("--skip-large", action="store_true", default=None, help="skip --n-large (as --quick does)")
    parser.add_argument("--dim", type=int, default=256, help="embedding dim (256, VideoCLIP's)")
    parser.add_argument("--chunk-size", type=int, help="block side (default: the library's, 4096)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")


def run(
    options: BenchOptions,
    n_compare: int | None = None,
    n_large: int = 1_000_000,
    large_row_blocks: int = 2,
    large_full: bool = False,
    skip_large: bool | None = None,
    dim: int = 256,
    chunk_size: int | None = None,
    device: str = "cpu",
) -> list[Result]:
    """The cases of the module docstring as table rows; the settings are `add_arguments`'s flags."""
    requested = n_compare or (10_000 if options.quick else 100_000)
    skip_large = options.quick if skip_large is None else skip_large
    n, note = largest_full_matrix_n(requested, dim, torch.device(device))
    results = [to_row(in_fresh_process(run_compare, n, dim, options.seed, device, chunk_size), note)]
    if n != requested:
        results.append(to_row(in_fresh_process(run_ours, requested, dim, options.seed, device, chunk_size, None)))
    if not skip_large:
        blocks = None if large_full else large_row_blocks
        results.append(to_row(in_fresh_process(run_ours, n_large, dim, options.seed, device, chunk_size, blocks)))
    return results


if __name__ == "__main__":
    from benchmarks import bench_recall

    raise SystemExit(main([bench_recall], description=__doc__))
