"""Runs every benchmark, ours vs torchmultimodal's reference side by side, and prints one table.

Usage::

    python benchmarks/run.py [--only NAME ...] [--json out.json] [--reference-dir PATH] [--quick]
    python -m benchmarks ...            # the same

NAME is one of: processor, text, video, load (model benchmarks), pipeline (end-to-end embedding from
``load_mugen`` + DataLoader), render (MUGEN renderer), recall (Recall@K). ``--reference-dir`` is a checkout
of facebookresearch/multimodal, needed by ``render`` and ``pipeline`` (their reference code is not on PyPI);
without it those rows say they were skipped.

Every figure is a ratio of two runs of the same work in the same process, interleaved (ABBA...) with medians,
because absolute times on a shared machine are noise; every benchmark first checks that both sides computed
the same result (the "max abs diff" column). ``--quick`` cuts repetitions and optional variants (~2 min);
the full run takes under ~10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.common import BenchOptions, Result, format_table, machine_description  # noqa: E402

MODEL_BENCHMARKS = ("processor", "text", "video", "load")
ALL_BENCHMARKS = (*MODEL_BENCHMARKS, "pipeline", "render", "recall")


def run_model(options: BenchOptions, only: tuple[str, ...]) -> list[Result]:
    from benchmarks import bench_model

    return bench_model.run(options, tuple(name for name in only if name in MODEL_BENCHMARKS))


def run_pipeline(options: BenchOptions) -> list[Result]:
    from benchmarks import bench_pipeline

    return bench_pipeline.run(options)


def run_render(options: BenchOptions) -> list[Result]:
    """The renderer benchmark (benchmarks/bench_render.py) at 256: rendering from a loaded game JSON (the goal's
    figure) and the same including reading the JSON file."""
    names = ("MUGEN render, 1 clip of 32 frames at 256", "MUGEN render incl. JSON parse, 1 clip of 32 frames at 256")
    if options.reference_dir is None:
        return [_skipped(names[0], "needs --reference-dir (a facebookresearch/multimodal checkout)", ">= 10x")]
    from benchmarks import bench_render
    from benchmarks.common import check_goal

    clips = 4 if options.quick else 16
    (figures,) = bench_render.run(options.reference_dir, num_clips=clips, warmup_clips=8 if options.quick else 48,
                                  resolutions=(256,))
    results = []
    for name, key, goal in zip(names, ("render", "with_parse"), (">= 10x", "")):
        row = figures[key]
        results.append(Result(
            name=name,
            unit="clips/s",
            ours=row["ours_clips_per_s"],
            reference=row["reference_clips_per_s"],
            ratio=row["ratio"],
            goal=goal,
            goal_met=check_goal(row["ratio"], goal) if goal else None,
            max_abs_diff=float(figures["max_abs_diff"]),
            repeats=clips,
            notes=f"bench_render.py over {clips} clips, interleaved clip by clip, GC paused while timing; diff in "
                  "0-255 pixel units" + (f"; CPU-time ratio {figures['render_cpu']['ratio']:.1f}x" if key == "render" else ""),
            extra={"figures": figures},
        ))
    return results


def run_recall(options: BenchOptions) -> list[Result]:
    """The Recall@K benchmark (benchmarks/bench_recall.py, another engineer's), through its --json output."""
    from benchmarks import bench_recall

    argv = ["--seed", str(options.seed)]
    if options.quick:
        argv += ["--n-compare", "10000", "--skip-large"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "recall.json"
        with contextlib.redirect_stdout(io.StringIO()):
            bench_recall.main([*argv, "--json", str(path)])
        report = json.loads(path.read_text())
    return [_recall_row(entry) for entry in report["results"]]


def _recall_row(entry: dict) -> Result:
    mib = "MiB"
    if entry["case"] == "compare":
        ours, full = entry["ours"], entry["full_matrix"]
        ratio = full["time_s"] / ours["time_s"]
        return Result(
            name=f"Recall@K, N={entry['n']:,} (time; memory in notes)",
            unit="s",
            ours=ours["time_s"],
            reference=full["time_s"],
            ratio=ratio,
            goal="",
            max_abs_diff=0.0 if entry["identical_hits"] else 1.0,
            repeats=1,
            notes=f"peak extra memory ours {ours['peak_extra_mib']:.0f} {mib} vs full matrix "
            f"{full['peak_extra_mib']:.0f} {mib}; diff 0 = identical hits at every k",
            extra=entry,
        )
    peak = entry["peak_extra_mib"]
    return Result(
        name=f"Recall@K, N={entry['n']:,}, ours alone (peak extra memory)",
        unit=mib,
        ours=peak,
        reference=None,
        ratio=None,
        goal="<= 1024 MiB",
        goal_met=peak <= 1024,
        repeats=1,
        notes=f"time {entry['time_total_s']:.0f} s" + (" (extrapolated)" if entry.get("time_is_extrapolated") else ""),
        extra=entry,
    )


def _skipped(name: str, why: str, goal: str = "") -> Result:
    return Result(name=name, unit="", ours=None, reference=None, ratio=None, goal=goal, notes="SKIPPED: " + why)


def _failed(name: str, error: BaseException) -> Result:
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    return Result(name=name, unit="", ours=None, reference=None, ratio=None, notes="FAILED: " + detail)


def _guarded(name: str, function: Callable[[], list[Result]]) -> list[Result]:
    """Runs one benchmark group; a failure becomes a FAILED row instead of ending the run."""
    print(f"[{time.strftime('%H:%M:%S')}] {name} ...", file=sys.stderr, flush=True)
    try:
        return function()
    except Exception as error:  # noqa: BLE001 - every failure is reported in the table
        traceback.print_exc()
        return [_failed(name, error)]


def quiet_libraries() -> None:
    """No progress bars or info logs from transformers / datasets in the benchmark output."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=ALL_BENCHMARKS, default=list(ALL_BENCHMARKS), metavar="NAME")
    parser.add_argument("--json", type=Path, help="write the table, the timings and the machine to this file")
    parser.add_argument("--reference-dir", type=Path, help="checkout of facebookresearch/multimodal")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, no optional variants (~2 min)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    only = tuple(args.only)
    options = BenchOptions(quick=args.quick, reference_dir=args.reference_dir, seed=args.seed)
    quiet_libraries()

    started = time.perf_counter()
    machine_before = machine_description()
    results: list[Result] = []
    if set(only) & set(MODEL_BENCHMARKS):
        results += _guarded("model", lambda: run_model(options, only))
    if "pipeline" in only:
        results += _guarded("pipeline", lambda: run_pipeline(options))
    if "render" in only:
        results += _guarded("render", lambda: run_render(options))
    if "recall" in only:
        results += _guarded("recall", lambda: run_recall(options))
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
    if args.json:
        report = {
            "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
            "quick": args.quick,
            "elapsed_s": elapsed,
            "machine_at_start": machine_before,
            "machine_at_end": machine,
            "results": [result.as_dict() for result in results],
        }
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"wrote {args.json}")
    # A missed goal is a finding, not an error; a benchmark that could not run is.
    return 1 if any(result.notes.startswith("FAILED") for result in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
