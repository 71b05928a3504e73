"""Blocked Recall@K (modeling_videoclip.retrieval) vs the reference's full-matrix computation.

The reference (``examples/mugen/retrieval/model.py``) builds the N x N similarity matrix (40 GB at N = 100,000) and
asks torchmetrics for Recall@k (``topk`` of each row and column against an identity target); ours walks the matrix in
square blocks. Each case runs in a fresh process; peak extra memory is `benchmarks.common.PeakMemory`'s. Cases:
``compare``, both at one N on the same embeddings: time, memory, and every query's hit/miss at every k identical (if
the requested N, 100,000 or 10,000 with ``--quick``, does not fit in RAM, the largest N that does is compared and
ours also runs alone at the requested N); ``large``, ours alone at N = 1,000,000 (not with ``--quick``), measured on
the first ``--large-row-blocks`` row blocks (the state carried between them is O(N)), its time extrapolated unless
``--large-full``.

Run alone: ``python -m benchmarks.bench_recall [--quick] [--n-compare 100000] [--n-large 1000000] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import time

import torch

from benchmarks.common import MIB, BenchOptions, PeakMemory, Result, check_goal, main, mem_available, timed
from modeling_videoclip.retrieval import DEFAULT_KS, metrics_from_ranks, retrieval_ranks
from modeling_videoclip.retrieval.metrics import _DEFAULT_CHUNK_SIZE, _iter_rank_blocks

NAMES = ("recall",)
MEMORY_GOAL = "<= 1024 MiB"


def make_embeddings(n: int, dim: int, seed: int, device: torch.device, noise: float = 3.0):
    """Unit-norm pairs, video i = normalise(text i + noise), filled in slices (no transient peak above the
    embeddings). With noise 3 in 256-d the true pair often loses (Recall@1 well below 100%), like a real model."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    text, video = torch.empty(n, dim, device=device), torch.empty(n, dim, device=device)
    step = 65536
    for start in range(0, n, step):
        t = torch.randn(min(step, n - start), dim, generator=generator)
        v = t + noise * torch.randn(t.shape, generator=generator)
        text[start : start + len(t)] = torch.nn.functional.normalize(t, dim=1).to(device)
        video[start : start + len(t)] = torch.nn.functional.normalize(v, dim=1).to(device)
    return text, video


def full_matrix_hits(text: torch.Tensor, video: torch.Tensor, ks) -> dict:
    """The reference's way: whole similarity matrix, torch.topk per query row (on the transpose for video
    queries, as ``Recall(preds=similarity_matrix.T)``), identity target."""
    with torch.inference_mode():
        sim = text @ video.T
        target = torch.arange(sim.shape[0], device=sim.device)[:, None]
        return {
            name: {k: (matrix.topk(k, dim=1).indices == target).any(dim=1).cpu() for k in ks}
            for name, matrix in (("text_to_video", sim), ("video_to_text", sim.T))
        }


def run_compare(n: int, dim: int, seed: int, device: str, chunk_size: int | None, note: str) -> Result:
    """Ours and the full matrix at `n`, on the same embeddings (`note`: why `n` is not the requested N)."""
    device = torch.device(device)
    text, video = make_embeddings(n, dim, seed, device)  # PeakMemory synchronizes CUDA on entry

    def ours() -> tuple[dict, dict]:
        # normalize=False: the inputs are unit-norm already, and the reference ranks raw ``text @ video.T``.
        ranks = retrieval_ranks(text, video, chunk_size=chunk_size, normalize=False)
        ranks = dict(zip(("text_to_video", "video_to_text"), ranks))
        metrics = {name: metrics_from_ranks(direction_ranks, DEFAULT_KS) for name, direction_ranks in ranks.items()}
        if device.type == "cuda":
            torch.cuda.synchronize()
        return ranks, metrics

    with PeakMemory(device) as ours_memory:
        (ranks, metrics), ours_time, _ = timed(ours)
    with PeakMemory(device) as full_memory:  # its hits are copied to the CPU: the device is done when it returns
        hits, full_time, _ = timed(lambda: full_matrix_hits(text, video, DEFAULT_KS))
    ours_mib, full_mib = ours_memory.peak_extra / MIB, full_memory.peak_extra / MIB
    identical = all(torch.equal(ranks[name].cpu() <= k, hits[name][k]) for name in ranks for k in DEFAULT_KS)
    figures = {
        "case": "compare", "n": n,
        "ours": {"time_s": ours_time, "peak_extra_mib": ours_mib, "memory_method": ours_memory.method},
        "full_matrix": {"time_s": full_time, "peak_extra_mib": full_mib}, "identical_hits": identical,
        "recall_ours": {name: m.recall for name, m in metrics.items()},
        "recall_full_matrix": {name: {k: 100.0 * int(hits[name][k].sum()) / n for k in DEFAULT_KS} for name in hits},
        "median_rank": {name: m.median_rank for name, m in metrics.items()},
        "mean_rank": {name: m.mean_rank for name, m in metrics.items()},
    }
    return Result(
        name=f"Recall@K, N={n:,} (time; memory in notes)", unit="s", ours=ours_time, reference=full_time,
        ratio=full_time / ours_time, max_abs_diff=0.0 if identical else 1.0, repeats=1,
        notes=f"peak extra memory ours {ours_mib:.0f} MiB vs full matrix {full_mib:.0f} MiB; diff 0 = identical hits "
        "at every k" + (f"; {note}" if note else ""),
        extra=figures,
    )


def run_ours(n: int, dim: int, seed: int, device: str, chunk_size: int | None, max_row_blocks: int | None) -> Result:
    """Ours alone; with ``max_row_blocks``, only the first row blocks of the matrix (see the docstring)."""
    device = torch.device(device)
    text, video = make_embeddings(n, dim, seed, device)
    chunk = chunk_size or _DEFAULT_CHUNK_SIZE
    num_blocks = -(-n // chunk)
    blocks_to_run = num_blocks if max_row_blocks is None else min(max_row_blocks, num_blocks)
    block_times = []
    with PeakMemory(device) as memory, torch.inference_mode():
        start = last = time.perf_counter()
        t2v = torch.empty(n, dtype=torch.long, device=device)
        blocks = _iter_rank_blocks(text, video, chunk, normalize=False, ties="optimistic")
        for done, (rows, t2v_counts, v2t_counts) in enumerate(blocks, 1):
            t2v[rows] = t2v_counts
            if device.type == "cuda":
                torch.cuda.synchronize()
            block_times.append(time.perf_counter() - last)
            last = time.perf_counter()
            if done == blocks_to_run:
                break
        measured = time.perf_counter() - start
    # The first yielded block includes the diagonal pre-pass (one block per row block).
    per_block = sum(block_times[1:]) / (len(block_times) - 1) if len(block_times) > 1 else block_times[0]
    complete = blocks_to_run == num_blocks
    total = measured if complete else max(0.0, block_times[0] - per_block) + per_block * num_blocks
    peak, embeddings_mib = memory.peak_extra / MIB, 2 * text.numel() * text.element_size() / MIB
    figures = {
        "case": "ours" if complete else "ours_partial", "n": n, "chunk_size": chunk,
        "row_blocks_run": blocks_to_run, "row_blocks_total": num_blocks, "time_measured_s": measured,
        "time_total_s": total, "time_is_extrapolated": not complete, "peak_extra_mib": peak,
        "memory_method": memory.method, "embeddings_mib": embeddings_mib,
    }
    if complete:
        ranks = {"text_to_video": t2v + 1, "video_to_text": v2t_counts + 1}
        figures["recall"] = {name: metrics_from_ranks(found, DEFAULT_KS).recall for name, found in ranks.items()}
    return Result(
        name=f"Recall@K, N={n:,}, ours alone (peak extra memory)", unit="MiB", ours=peak, goal=MEMORY_GOAL,
        goal_met=check_goal(peak, MEMORY_GOAL), repeats=1,
        notes=f"time {total:.0f} s" + ("" if complete else " (extrapolated)") + f"; {blocks_to_run}/{num_blocks} "
        f"row blocks run; embeddings {embeddings_mib:.0f} MiB not counted",
        extra=figures,
    )


def largest_full_matrix_n(requested: int, dim: int, device: torch.device) -> tuple[int, str]:
    """The largest N (a multiple of 1000, at most `requested`) whose full-matrix run fits in memory."""
    budget = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else mem_available()
    if budget is None:
        return requested, "available memory unknown: trying the requested N"
    usable = 0.6 * budget
    # The N x N float32 matrix (topk on its transposed view makes no copy: measured 6,108 MiB at N=40,000,
    # i.e. the matrix alone) plus the embeddings.
    need = 4 * requested * requested + 2 * 4 * requested * dim
    if need <= usable:
        return requested, ""
    n = int((usable / 4) ** 0.5) // 1000 * 1000
    return max(1000, n), (
        f"the full N x N matrix at N={requested:,} needs ~{need / 1024**3:.0f} GiB but "
        f"{budget / 1024**3:.1f} GiB is available: the comparison runs at N={n:,}"
    )


def in_fresh_process(function, *args) -> Result:
    """``function(*args)`` in a new spawned process, so its peak memory starts from a clean one."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def add_arguments(parser: argparse._ArgumentGroup) -> None:
    parser.add_argument("--n-compare", type=int, help="N for ours vs full matrix (100,000; --quick: 10,000)")
    parser.add_argument("--n-large", type=int, default=1_000_000, help="N for ours alone (1,000,000)")
    parser.add_argument("--large-row-blocks", type=int, default=2,
                        help="row blocks measured at --n-large (2: the first includes the diagonal pre-pass)")
    parser.add_argument("--large-full", action="store_true", help="run every row block at --n-large")
    parser.add_argument("--skip-large", action="store_true", default=None, help="skip --n-large (as --quick does)")
    parser.add_argument("--dim", type=int, default=256, help="embedding dim (256, VideoCLIP's)")
    parser.add_argument("--chunk-size", type=int, help="block side (default: the library's, 4096)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")


def run(options: BenchOptions) -> list[Result]:
    """The cases of the module docstring as table rows; the settings are `add_arguments`' flags."""
    dim, device, chunk_size, seed = options.dim, options.device, options.chunk_size, options.seed
    requested = options.n_compare or (10_000 if options.quick else 100_000)
    n, note = largest_full_matrix_n(requested, dim, torch.device(device))
    results = [in_fresh_process(run_compare, n, dim, seed, device, chunk_size, note)]
    if n != requested:
        results.append(in_fresh_process(run_ours, requested, dim, seed, device, chunk_size, None))
    if not (options.quick if options.skip_large is None else options.skip_large):
        blocks = None if options.large_full else options.large_row_blocks
        results.append(in_fresh_process(run_ours, options.n_large, dim, seed, device, chunk_size, blocks))
    return results


if __name__ == "__main__":
    raise SystemExit(main([__spec__.name], description=__doc__))
