"""What every benchmark shares: its options, its result row, timing, the same-result check, memory and the CLI.

A benchmark module exposes ``NAMES`` (what ``--only`` selects in it), ``run(options) -> list[Result]`` and optionally
``add_arguments(parser)``, whose flags `run` reads from `options`; `main` runs such modules into one table.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import operator
import os
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

MIB = 1024**2
_GOAL_COMPARISONS = {">=": operator.ge, "<=": operator.le}
Timings = tuple[list[float], list[float]]  # per-repetition seconds: (ours, reference)

# Offline and quiet; huggingface_hub reads these when it is first imported, which no benchmark does before this.
for _name, _value in (("HF_HUB_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"), ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(_name, _value)


class BenchOptions(argparse.Namespace):
    """The parsed command line every benchmark receives: `main`'s flags (``quick``, ``reference_dir``, ``seed``,
    ``only``, ``json``; see their help) and those of every module's ``add_arguments``."""

    quick: bool  # annotations only: a class attribute would stand in for argparse's default
    reference_dir: Path | None
    seed: int
    only: list[str] | None

    def repeats(self, full: int, quick: int) -> int:
        """Timed repetitions per side: `quick` in quick mode, else `full`."""
        return quick if self.quick else full

    def wants(self, name: str) -> bool:
        return self.only is None or name in self.only


@dataclass
class Result:
    """One row of the benchmark table.

    Attributes:
        name, unit: what was measured (e.g. "video processor, 8 clips 32x256x256"); the unit of `ours`, `reference`.
        ours, reference: the medians (time or throughput, see `unit`); `reference` None when only ours runs.
        ratio, ratio_kind: "speedup" (reference time / our time, higher is better) or "time ratio" (the inverse).
        goal, goal_met: the goal as text (">= 2x", "<= 1x", "<= 1024 MiB"); met? (None: no goal or nothing to check).
        max_abs_diff: largest absolute difference between the two sides' outputs (checked before timing).
        repeats: timed repetitions per side.
        notes: anything a reader needs to interpret the row (options, why a side could not run...).
        extra: additional figures (all timings, peak memory...), kept in the JSON only.
    """

    name: str
    unit: str = ""
    ours: float | None = None
    reference: float | None = None
    ratio: float | None = None
    goal: str = ""
    goal_met: bool | None = None
    max_abs_diff: float | None = None
    ratio_kind: str = "speedup"
    repeats: int = 0
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def skipped(name: str, why: str, goal: str = "") -> Result:
    return Result(name, goal=goal, notes="SKIPPED: " + why)


def check_goal(value: float | None, goal: str) -> bool | None:
    """Evaluates a goal written as ">= 2x", "<= 1x" or "<= 1024 MiB" against `value`."""
    if value is None or not goal:
        return None
    comparison, bound = goal.split()[:2]
    if comparison not in _GOAL_COMPARISONS:
        raise ValueError(f"Unknown goal {goal!r}; write '>= 2x' or '<= 1x'.")
    return _GOAL_COMPARISONS[comparison](value, float(bound.rstrip("x")))


def timed(function: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(function(), wall seconds, CPU seconds of this process)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    output = function()
    return output, time.perf_counter() - wall, time.process_time() - cpu


def interleaved_timings(ours: Callable[[], Any], reference: Callable[[], Any], repeats: int) -> Timings:
    """Wall times (seconds) of `ours` and `reference`, called alternately ABBA ABBA ...: each side gets the first
    slot of a pair equally often, so a drift in background load or a cache warmed by the previous call favours
    neither. Garbage is collected before each call so that neither side pays for the other's."""
    ours_times, reference_times = [], []
    order = [(ours_times, ours), (reference_times, reference)]
    for repetition in range(repeats):
        for times, function in order[::-1] if repetition % 2 else order:
            gc.collect()
            times.append(timed(function)[1])
    return ours_times, reference_times


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute elementwise difference, computed in float64; shapes must match."""
    if a.shape != b.shape:
        raise AssertionError(f"Outputs differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}.")
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def require_close(a: torch.Tensor, b: torch.Tensor, tolerance: float, what: str) -> float:
    """The max abs diff of both sides' results; raises `AssertionError` (before any timing: timing different
    computations would be meaningless) when it exceeds `tolerance`."""
    difference = max_abs_diff(a, b)
    if not difference <= tolerance:
        raise AssertionError(f"{what}: outputs differ by {difference:.3g} > {tolerance:g}; not timing.")
    return difference


def speed_result(
    name: str, ours: Callable[[], Any], reference: Callable[[], Any], repeats: int, goal: str,
    difference: float | None, notes: str = "", per_call_items: int | None = None, item_name: str = "items",
    ratio_kind: str = "speedup",
) -> Result:
    """A table row for `interleaved_timings` of `ours` and `reference` (whose results the caller has compared:
    `difference`): median seconds, or throughputs (`item_name`/s) with `per_call_items`; the ratio is reference time
    / our time (``ratio_kind="time ratio"``: our time / the reference's)."""
    timings = interleaved_timings(ours, reference, repeats)
    our_time, reference_time = statistics.median(timings[0]), statistics.median(timings[1])
    ratio = reference_time / our_time if ratio_kind == "speedup" else our_time / reference_time
    values, unit = [our_time, reference_time], "s"
    if per_call_items:
        values, unit = [per_call_items / value for value in values], f"{item_name}/s"
    return Result(
        name=name, unit=unit, ours=values[0], reference=values[1], ratio=ratio, goal=goal,
        goal_met=check_goal(ratio, goal), max_abs_diff=difference, ratio_kind=ratio_kind, repeats=len(timings[0]),
        notes=notes, extra={"ours_times_s": timings[0], "reference_times_s": timings[1]},
    )


def checked_speed_result(
    name: str, ours: Callable[[], torch.Tensor], reference: Callable[[], torch.Tensor], tolerance: float | None,
    repeats: int, goal: str = "", notes: str = "", per_call_items: int | None = None, item_name: str = "items",
) -> Result:
    """`speed_result` after one call of each side (also its warm-up) is compared: with `require_close` at
    `tolerance`, or (None) only reported."""
    outputs = ours(), reference()
    difference = max_abs_diff(*outputs) if tolerance is None else require_close(*outputs, tolerance, name)
    return speed_result(name, ours, reference, repeats, goal, difference, notes, per_call_items, item_name)


def _proc_field(path: str, key: str) -> str | None:
    """What follows the colon on `path`'s first line starting with `key` (None where unreadable)."""
    try:
        with open(path) as lines:
            return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(key)), None)
    except OSError:
        return None


def _proc_bytes(path: str, key: str) -> int | None:
    """A /proc figure in kB (``VmRSS:  1234 kB``) in bytes (None off Linux)."""
    value = _proc_field(path, key + ":")
    return None if value is None else int(value.split()[0]) * 1024


def resident_set_size() -> int:
    """This process's resident memory, in bytes."""
    value = _proc_bytes("/proc/self/status", "VmRSS")
    if value is None:
        import psutil  # only off Linux

        value = psutil.Process().memory_info().rss
    return value


def mem_available() -> int | None:
    """Memory available to a new allocation, in bytes (None when unknown)."""
    value = _proc_bytes("/proc/meminfo", "MemAvailable")
    if value is not None:
        return value
    try:
        import psutil

        return psutil.virtual_memory().available
    except ImportError:
        return None


class PeakMemory:
    """Peak extra memory of its body in bytes (`peak_extra`): the peak during the block minus the usage at entry.
    On CUDA, ``torch.cuda.max_memory_allocated``; on Linux the kernel's peak counter (VmHWM), reset on entry through
    /proc/self/clear_refs, so exact; elsewhere resident memory sampled every 2 ms by a thread (missing spikes)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.peak_extra = 0
        self.method = ""
        self._sampler: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            self.method = "torch.cuda.max_memory_allocated"
            return self
        self.base = resident_set_size()
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # resets VmHWM to the current RSS
            self.method = "VmHWM (reset via /proc/self/clear_refs)"
        except OSError:
            self.method = "RSS sampled every 2 ms"
            self._samples = [self.base]
            self._stop = threading.Event()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._samples.append(resident_set_size())

    def __exit__(self, *exc_info) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_extra = torch.cuda.max_memory_allocated() - self.base
        elif self._sampler is None:
            self.peak_extra = _proc_bytes("/proc/self/status", "VmHWM") - self.base
        else:
            self._stop.set()
            self._sampler.join()
            self.peak_extra = max(self._samples) - self.base


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where unavailable)."""
    return set((_proc_field("/proc/cpuinfo", "flags") or "").split())


def format_table(results: Sequence[Result]) -> str:
    """The results as a Markdown table: what, ours, reference, ratio, goal, max abs diff, repeats."""
    rows = [("what", "ours", "reference", "ratio", "goal", "max abs diff", "n")]
    for result in results:
        ratio = "-" if result.ratio is None else f"{result.ratio:.2f}x"
        rows.append((
            result.name,
            *("-" if value is None else f"{value:.3g} {result.unit}" for value in (result.ours, result.reference)),
            ratio + (" (time)" if result.ratio is not None and result.ratio_kind != "speedup" else ""),
            _format_goal(result),
            "-" if result.max_abs_diff is None else f"{result.max_abs_diff:.2g}",
            str(result.repeats or "-"),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def _format_goal(result: Result) -> str:
    if not result.goal:
        return "(option)" if "option" in result.name else "-"
    if result.goal_met is None:
        return f"{result.goal} (n/a)"
    return f"{result.goal} {'met' if result.goal_met else 'MISSED'}"


def machine_description() -> dict[str, Any]:
    """CPU model, logical CPUs, torch threads, load average and library versions, for the JSON report."""
    import platform

    import torchvision
    import transformers

    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "load_average_1_5_15": [round(x, 2) for x in load],
        "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "transformers": transformers.__version__,
    }


def main(module_names: Sequence[str], argv: list[str] | None = None, description: str | None = None) -> int:
    """Runs the named benchmark modules (see the module docstring); prints one table, its notes and the machine.

    Args:
        module_names: importable names (``"benchmarks.bench_render"``); `argv` defaults to ``sys.argv[1:]``.

    Returns:
        1 when a benchmark could not run (a FAILED row), else 0: a missed goal is a finding, not an error.
    """
    import datasets
    from transformers.utils import logging as transformers_logging

    modules = [importlib.import_module(name) for name in module_names]
    parser = argparse.ArgumentParser(
        "python -m " + (modules[0].__name__ if len(modules) == 1 else "benchmarks"),
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = [name for module in modules for name in module.NAMES]
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=f"a subset of: {' '.join(names)}")
    parser.add_argument("--json", type=Path, help="write the table, the timings and the machine to this file")
    parser.add_argument("--reference-dir", type=Path, help="checkout of facebookresearch/multimodal")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, no optional variants")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random input (0)")
    for module in modules:
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser.add_argument_group(module.__name__.rsplit(".", 1)[-1]))
    options = parser.parse_args(argv, namespace=BenchOptions())
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()

    started = time.perf_counter()
    machine_before = machine_description()
    results: list[Result] = []
    for module in modules:
        if not any(options.wants(name) for name in module.NAMES):
            continue
        print(f"[{time.strftime('%H:%M:%S')}] {module.__name__} ...", file=sys.stderr, flush=True)
        try:
            results += module.run(options)
        except Exception as error:  # every failure is reported in the table, and the other benchmarks still run
            traceback.print_exc()
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            results.append(Result(module.__name__, notes="FAILED: " + detail))
    elapsed = time.perf_counter() - started

    machine = machine_description()
    print(format_table(results))
    for result in results:
        if result.notes:
            print(f"- {result.name}: {result.notes}")
    print(
        f"\nmachine: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs, torch {machine['torch']} "
        f"({machine['torch_threads']} threads, {machine['cpu_capability']}); load average at start "
        f"{machine_before['load_average_1_5_15'][0]}, at end {machine['load_average_1_5_15'][0]}; {elapsed:.0f} s"
    )
    if options.json:
        report = {
            "command": " ".join([parser.prog, *(argv if argv is not None else sys.argv[1:])]), "quick": options.quick,
            "elapsed_s": elapsed, "machine_at_start": machine_before, "machine_at_end": machine,
            "results": [asdict(result) for result in results],
        }
        options.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"wrote {options.json}")
    return 1 if any(result.notes.startswith("FAILED") for result in results) else 0
