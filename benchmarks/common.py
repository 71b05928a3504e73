"""Timing, comparison and memory helpers shared by the benchmarks.

Every figure the benchmarks report is a RATIO of two runs of the same work in the same process: on a
shared machine absolute times are noise, but interleaving the two sides (A B B A A B ...) exposes both to
the same background load, and the median of the per-side times discards the outliers.
"""

from __future__ import annotations

import gc
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class BenchOptions:
    """Settings every benchmark receives.

    Attributes:
        quick: fewer repetitions and the optional variants skipped (a smoke run, ~2 minutes in all).
        reference_dir: a checkout of facebookresearch/multimodal, for the benchmarks whose reference code is
            not on PyPI (MUGEN renderer and dataset); those are skipped, with a note, without it.
        seed: seed of every random input.
    """

    quick: bool = False
    reference_dir: Path | None = None
    seed: int = 0

    def repeats(self, full: int, quick: int) -> int:
        """Timed repetitions per side: `quick` in quick mode, else `full`."""
        return quick if self.quick else full


@dataclass
class Result:
    """One row of the benchmark table.

    Attributes:
        name: what was measured (e.g. "video processor, 8 clips 32x256x256").
        unit: unit of `ours` and `reference` ("s", "clips/s", "MB"...).
        ours: our median (time or throughput, see `unit`).
        reference: the reference's median, or None when only our side runs.
        ratio: the figure the goal is about: speed-up (reference time / our time) unless `ratio_kind` says
            otherwise.
        ratio_kind: "speedup" (higher is better) or "time ratio" (ours / reference, lower is better).
        goal: the goal as text (">= 2.0x", "<= 1.0x").
        goal_met: whether `ratio` meets the goal (None when there is no goal or no ratio).
        max_abs_diff: largest absolute difference between the two sides' outputs (checked before timing).
        repeats: timed repetitions per side.
        notes: anything a reader needs to interpret the row (options, why a side could not run...).
        extra: additional figures (all timings, peak memory...), kept in the JSON only.
    """

    name: str
    unit: str
    ours: float | None
    reference: float | None
    ratio: float | None
    goal: str = ""
    goal_met: bool | None = None
    max_abs_diff: float | None = None
    ratio_kind: str = "speedup"
    repeats: int = 0
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_goal(ratio: float | None, goal: str) -> bool | None:
    """Evaluates a goal written as ">= 2.0x" or "<= 1.0x" against `ratio`."""
    if ratio is None or not goal:
        return None
    operator, value = goal.split()[0], float(goal.split()[1].rstrip("x"))
    if operator == ">=":
        return ratio >= value
    if operator == "<=":
        return ratio <= value
    raise ValueError(f"Unknown goal {goal!r}; write '>= 2x' or '<= 1x'.")


@dataclass
class PairTimings:
    """Per-repetition wall times (seconds) of the two sides of an interleaved A/B measurement."""

    ours: list[float]
    reference: list[float]

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours)

    @property
    def reference_median(self) -> float:
        return statistics.median(self.reference)

    @property
    def speedup(self) -> float:
        """reference time / our time (> 1 means ours is faster)."""
        return self.reference_median / self.ours_median

    @property
    def time_ratio(self) -> float:
        """our time / reference time (< 1 means ours is faster)."""
        return self.ours_median / self.reference_median


def time_once(function: Callable[[], Any]) -> float:
    """Wall time of one call, in seconds. Garbage is collected first so neither side pays for the other's."""
    gc.collect()
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def interleaved_timings(
    ours: Callable[[], Any], reference: Callable[[], Any], repeats: int, warmup: int = 1
) -> PairTimings:
    """Times two functions alternately, ABBA ABBA ..., after `warmup` untimed calls of each.

    The ABBA order gives each side the first slot of a pair equally often, so a drift in background load or
    a cache warmed by the previous call favours neither side.
    """
    for _ in range(warmup):
        ours()
        reference()
    timings = PairTimings(ours=[], reference=[])
    for repetition in range(repeats):
        order = (("ours", ours), ("reference", reference))
        if repetition % 2:
            order = order[::-1]
        for side, function in order:
            getattr(timings, side).append(time_once(function))
    return timings


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute elementwise difference, computed in float64; shapes must match."""
    if a.shape != b.shape:
        raise AssertionError(f"Outputs differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}.")
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def require_close(a: torch.Tensor, b: torch.Tensor, tolerance: float, what: str) -> float:
    """Checks that both sides computed the same result (before any timing) and returns the max abs diff.

    Raises:
        AssertionError: the difference exceeds `tolerance`; timing different computations would be meaningless.
    """
    difference = max_abs_diff(a, b)
    if not difference <= tolerance:
        raise AssertionError(f"{what}: outputs differ by {difference:.3g} > {tolerance:g}; not timing.")
    return difference


def speed_result(
    name: str,
    timings: PairTimings,
    goal: str,
    difference: float | None,
    notes: str = "",
    per_call_items: int | None = None,
    item_name: str = "items",
) -> Result:
    """A table row for an interleaved speed measurement (ratio = speed-up of ours over the reference).

    With `per_call_items`, `ours`/`reference` are throughputs (`item_name`/s); otherwise median seconds.
    """
    if per_call_items:
        ours_value, reference_value = per_call_items / timings.ours_median, per_call_items / timings.reference_median
        unit = f"{item_name}/s"
    else:
        ours_value, reference_value, unit = timings.ours_median, timings.reference_median, "s"
    return Result(
        name=name,
        unit=unit,
        ours=ours_value,
        reference=reference_value,
        ratio=timings.speedup,
        goal=goal,
        goal_met=check_goal(timings.speedup, goal),
        max_abs_diff=difference,
        repeats=len(timings.ours),
        notes=notes,
        extra={"ours_times_s": timings.ours, "reference_times_s": timings.reference},
    )


def format_table(results: Sequence[Result]) -> str:
    """The results as a Markdown table: what, ours, reference, ratio, goal, max abs diff, repeats."""
    header = ("what", "ours", "reference", "ratio", "goal", "max abs diff", "n")
    rows = [header]
    for result in results:
        rows.append(
            (
                result.name,
                _format_value(result.ours, result.unit),
                _format_value(result.reference, result.unit),
                "-" if result.ratio is None else f"{result.ratio:.2f}x" + (" (time)" if result.ratio_kind != "speedup" else ""),
                _format_goal(result),
                "-" if result.max_abs_diff is None else f"{result.max_abs_diff:.2g}",
                str(result.repeats or "-"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def _format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3g} s"
    return f"{value:.3g} {unit}"


def _format_goal(result: Result) -> str:
    if not result.goal:
        return "(option)" if "option" in result.name else "-"
    if result.goal_met is None:
        return f"{result.goal} (n/a)"
    return f"{result.goal} {'met' if result.goal_met else 'MISSED'}"


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where unavailable)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resident_set_size() -> int:
    """Current resident set size of this process, in bytes (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class PeakMemory:
    """Peak extra resident memory while a block runs, sampled by a background thread.

    CPU tensors are invisible to ``tracemalloc``, so the process RSS is sampled instead (every
    `interval_s`); the reported figure is ``peak - rss_at_entry``. Short spikes between samples can be
    missed, so allocations that matter should live longer than a few intervals (large matrices do). On CUDA,
    ``torch.cuda.max_memory_allocated`` is recorded as well.

    Example:
        >>> with PeakMemory() as memory:
        ...     work()
        >>> memory.peak_extra_bytes
    """

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s
        self.baseline_bytes = 0
        self.peak_bytes = 0
        self.cuda_peak_bytes: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, resident_set_size())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self.baseline_bytes = self.peak_bytes = resident_set_size()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.peak_bytes = max(self.peak_bytes, resident_set_size())
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if torch.cuda.is_available():
            self.cuda_peak_bytes = torch.cuda.max_memory_allocated()

    @property
    def peak_extra_bytes(self) -> int:
        return max(0, self.peak_bytes - self.baseline_bytes)


def machine_description() -> dict[str, Any]:
    """CPU model, logical CPUs, torch threads, load average and library versions, for the JSON report."""
    import platform

    import torchvision
    import transformers

    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "load_average_1_5_15": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "transformers": transformers.__version__,
    }


__all__ = [
    "BenchOptions",
    "PairTimings",
    "PeakMemory",
    "Result",
    "check_goal",
    "cpu_flags",
    "format_table",
    "interleaved_timings",
    "machine_description",
    "max_abs_diff",
    "require_close",
    "resident_set_size",
    "speed_result",
    "time_once",
]
