"""At-scale paths, each against its reference in the same run (issue 15):

* ``data``: game JSON -> model-ready tensor per core: a ``load_mugen`` row (JSON read and render) through our
  processor vs the reference ``MUGENDataset`` row through ``VideoTransform``, one thread each (needs
  ``--reference-dir``);
* ``device``: device-side preprocessing (workers yield uint8 clips, ``finish_videos`` resizes and normalises where
  the model runs) vs the collator's full preprocessing, on the CPU (same numbers); the CUDA rows need a GPU;
* ``half``: a model loaded with ``dtype=bfloat16`` / ``float16`` vs float32 (embedding cosine; Recall@K on the
  synthetic sample, bf16 vs fp32);
* ``compile``: ``torch.compile`` (inductor) of each tower vs eager, outputs within 1e-5; graph breaks counted;
* ``onnx``: ``videoclip export-onnx``'s files in onnxruntime vs eager PyTorch, within 1e-4;
* ``distributed``: ``videoclip evaluate`` over 2 processes (torchrun, gloo) vs 1: the same metrics and embeddings.

Run alone: ``python -m benchmarks.bench_scale [--quick] [--only data device half compile onnx distributed]
[--reference-dir PATH]``. The model is `benchmarks.reference.model_pair`'s (random weights, non-trivial BatchNorm
statistics)."""

from __future__ import annotations

import contextlib
import copy
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torchmultimodal.transforms.video_transform import VideoTransform

from benchmarks.bench_model import TEXT_CAPTIONS, TOWER_TOLERANCE, caption_token_ids, random_clips
from benchmarks.bench_pipeline import make_sample, reference_dataset
from benchmarks.common import (
    BenchOptions,
    Result,
    checked_speed_result,
    cpu_flags,
    main,
    max_abs_diff,
    require_close,
    skipped,
    speed_result,
    timed,
)
from benchmarks.reference import model_pair
from modeling_videoclip import VideoCLIPVideoProcessor
from modeling_videoclip.cli.export import (
    ONNX_INPUTS,
    ONNX_TOLERANCE,
    OnnxExportOptions,
    export_onnx,
    onnx_session,
    tower_for_export,
)
from modeling_videoclip.data import VideoCLIPDataCollator, captions
from modeling_videoclip.mugen import load_mugen

NAMES = ("data", "device", "half", "compile", "onnx", "distributed")
NO_GPU = "no GPU lent to this run (torch.cuda.is_available() is False)"
DEVICE_CLIPS, DEVICE_FRAMES, DEVICE_SIZE = 8, 32, 256  # as the processor row of bench_model
VIDEO_CLIPS = 4
# Dense S3D forward FLOPs of one 32x224x224 clip (multiply-adds x 2), from torch.utils.flop_counter on this model.
S3D_GFLOP_PER_CLIP = 72.0


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def bench_data_side(options: BenchOptions) -> list[Result]:
    """A MUGEN clip from its game JSON to the model's input, per core: ours (``load_mugen`` row + our processor)
    vs the reference (``MUGENDataset`` row + ``VideoTransform``), both one thread, as one DataLoader worker."""
    num_clips = 2 if options.quick else 8
    name = f"data side, game JSON -> model-ready (1, 32, 3, 224, 224) tensor, {num_clips} MUGEN clips, one core"
    if options.reference_dir is None:
        return [skipped(name, "needs --reference-dir (a facebookresearch/multimodal checkout)")]
    with tempfile.TemporaryDirectory(prefix="videoclip-bench-data-") as folder:
        sample, release = make_sample(Path(folder), num_clips, options.seed)
        reference = reference_dataset(options.reference_dir, sample, release)
        ours = load_mugen(sample, "test", start="fixed", annotation="manual")
        processor, transform = VideoCLIPVideoProcessor(), VideoTransform()

        def ours_clips() -> torch.Tensor:
            return torch.cat([processor([ours[i]["video"]])["pixel_values_videos"] for i in range(num_clips)])

        def reference_clips() -> torch.Tensor:
            videos = [transform(reference[i]["video"][None]) for i in range(num_clips)]
            return torch.cat(videos).transpose(1, 2)  # (B, C, T, H, W) to our layout

        with torch_threads(1):
            return [checked_speed_result(
                name, ours_clips, reference_clips, 1e-6, options.repeats(3, 1), notes="torch.set_num_threads(1); the "
                "rows are read (JSON parse included) and rendered inside the timing, as a DataLoader worker does; "
                "diff 0: pixel-exact render, bit-identical processor", per_call_items=num_clips, item_name="clips",
            )]


def bench_device_preprocessing(options: BenchOptions) -> list[Result]:
    """The device-side path on the CPU vs the collator's full preprocessing (the CPU default), then the CUDA rows."""
    clips = list(random_clips(DEVICE_CLIPS, DEVICE_FRAMES, DEVICE_SIZE, options.seed).numpy())
    processor = _processor()
    rows = [{"video": clip} for clip in clips]
    deferred = VideoCLIPDataCollator(processor, None, "video", return_loss=False, defer_video_resize=True)
    full = VideoCLIPDataCollator(processor, None, "video", return_loss=False)
    name = f"device-side preprocessing, {DEVICE_CLIPS} clips {DEVICE_FRAMES}x{DEVICE_SIZE}x{DEVICE_SIZE} uint8"
    results = [checked_speed_result(
        f"{name}, on the CPU: uint8 batch + finish_videos vs full collator", lambda: deferred.finish_videos(
            deferred(rows), "cpu")["pixel_values_videos"], lambda: full(rows)["pixel_values_videos"], 0.0,
        options.repeats(5, 2), notes="the path embed_* take on CUDA, run on the CPU: same numbers (diff must be 0); "
        "the split costs nothing", per_call_items=DEVICE_CLIPS, item_name="clips",
    )]
    if not torch.cuda.is_available():
        return results + [
            skipped(f"{name}, on CUDA vs on the CPU (largest difference)", NO_GPU),
            skipped(f"video tower on CUDA, {VIDEO_CLIPS} clips 32x224x224 vs the S3D FLOP floor "
                    f"({S3D_GFLOP_PER_CLIP:.0f} GFLOP a clip)", NO_GPU),
        ]
    return results + _cuda_rows(options, name, deferred, full, rows)


def _processor():
    """A `VideoCLIPProcessor` with the default video processor and a small WordPiece vocabulary (offline)."""
    from modeling_videoclip.common.models import TOKENIZER_FROM_DATA, build_processor, load_tokenizer

    return build_processor(load_tokenizer(TOKENIZER_FROM_DATA, texts=["Mugen jumps onto a ledge."]))


def _cuda_rows(options: BenchOptions, name: str, deferred, full, rows) -> list[Result]:
    """On a GPU: device-side preprocessing vs the CPU path (speed, largest difference), and the video tower's
    throughput vs the S3D FLOP floor (the device's peak bf16/fp32 rate is not known here: clips/s and TFLOP/s)."""
    device = torch.device("cuda")

    def on_gpu() -> torch.Tensor:
        pixels = deferred.finish_videos(deferred(rows), device)["pixel_values_videos"]
        torch.cuda.synchronize()
        return pixels.cpu()

    results = [checked_speed_result(f"{name}, on CUDA vs on the CPU", on_gpu, lambda: full(rows)[
        "pixel_values_videos"], None, options.repeats(5, 2), notes="diff: CUDA's antialiased resize vs the CPU's",
        per_call_items=len(rows), item_name="clips")]
    _, ours = model_pair(options.seed)
    model = copy.deepcopy(ours).to(device)
    pixels = VideoCLIPVideoProcessor()(list(random_clips(VIDEO_CLIPS, 32, 224, options.seed).numpy()))[
        "pixel_values_videos"].to(device)

    def tower() -> torch.Tensor:
        with torch.inference_mode():
            output = model.get_video_features(pixels).pooler_output
        torch.cuda.synchronize()
        return output

    tower()
    seconds = min(timed(tower)[1] for _ in range(options.repeats(10, 3)))
    throughput = VIDEO_CLIPS / seconds
    floor = f"{throughput * S3D_GFLOP_PER_CLIP / 1000:.1f} TFLOP/s at {S3D_GFLOP_PER_CLIP:.0f} GFLOP a clip"
    results.append(Result(f"video tower on CUDA, {VIDEO_CLIPS} clips 32x224x224 (fp32)", "clips/s", throughput,
                          repeats=options.repeats(10, 3), notes=floor))
    return results


def _min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return F.cosine_similarity(a.float(), b.float(), dim=-1).min().item()


def bench_half_precision(options: BenchOptions) -> list[Result]:
    """Models loaded in bfloat16 / float16 (``from_pretrained(dtype=...)``) vs float32, on float32 processor output."""
    from transformers import AutoModel

    _, ours = model_pair(options.seed)
    input_ids = caption_token_ids(TEXT_CAPTIONS, options.seed)
    attention_mask = (input_ids != 0).long()
    native_bf16 = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    clips, frames = (VIDEO_CLIPS, 32) if native_bf16 else (1, 16)  # emulated bf16 is slow: one short clip then
    pixels = VideoCLIPVideoProcessor()(list(random_clips(clips, frames, 224, options.seed + 1).numpy()))[
        "pixel_values_videos"]
    results = []
    with tempfile.TemporaryDirectory(prefix="videoclip-bench-half-") as folder:
        ours.save_pretrained(folder)
        halves = {dtype: AutoModel.from_pretrained(folder, dtype=dtype).eval() for dtype in (torch.bfloat16,
                                                                                              torch.float16)}
    with torch.inference_mode():
        for dtype, model in halves.items():
            short = str(dtype).removeprefix("torch.")
            cases = [("text", f"text tower, {TEXT_CAPTIONS} captions", TEXT_CAPTIONS, "captions",
                      lambda m: m.get_text_features(input_ids, attention_mask).pooler_output, options.repeats(5, 2))]
            if dtype == torch.bfloat16:
                cases.append(("video", f"video tower, {clips} clip(s) {frames}x224x224", clips, "clips",
                              lambda m: m.get_video_features(pixels).pooler_output, 1))
            for _, what, count, unit, run, repeats in cases:
                half_output, full_output = run(model), run(ours)
                cosine = _min_cosine(half_output, full_output)
                row = speed_result(
                    f"{what}, {short} weights vs float32 (min cosine {cosine:.5f})", lambda m=model, r=run: r(m),
                    lambda r=run: r(ours), repeats, "", max_abs_diff(half_output.float(), full_output),
                    f"from_pretrained(dtype={dtype}) on the processor's float32 output (cast inside the model); cpu "
                    f"capability {torch.backends.cpu.get_cpu_capability()}"
                    + ("" if native_bf16 or dtype != torch.bfloat16 else ", no native bf16 (emulated)")
                    + "; diff over projected embeddings", count, unit,
                )
                row.extra["min_cosine"] = cosine
                results.append(row)
            if dtype == torch.float16:
                results.append(skipped(f"video tower, {short} weights vs float32", "float16 3D convolutions are "
                                       "emulated on CPUs (~1 min for one 16-frame clip); a GPU row"))
    results.append(_half_precision_recall(options, halves[torch.bfloat16], ours))
    return results


def _half_precision_recall(options: BenchOptions, half: torch.nn.Module, full: torch.nn.Module) -> Result:
    """Recall@K on the synthetic sample (fixed starts), the bf16 model vs float32: every metric's difference."""
    from modeling_videoclip.common.models import TOKENIZER_FROM_DATA, build_processor, load_tokenizer
    from modeling_videoclip.mugen import make_mugen_sample
    from modeling_videoclip.retrieval import embed_dataset, retrieval_metrics

    num_clips = 4 if options.quick else 8
    name = f"Recall@K on {num_clips} synthetic-sample clips, bfloat16 weights vs float32"
    with tempfile.TemporaryDirectory(prefix="videoclip-bench-recall-") as folder:
        sample = make_mugen_sample(Path(folder), num_clips=2 * num_clips, seed=options.seed, splits=(0.0, 0.5, 0.5),
                                   short_clips=0, with_audio=False)
        dataset = load_mugen(sample, "test", start="fixed", annotation="manual")
        processor = build_processor(load_tokenizer(TOKENIZER_FROM_DATA, texts=captions(dataset)))
        embeddings = [embed_dataset(model, processor, dataset, batch_size=4, progress=False) for model in (half, full)]
    metrics = [retrieval_metrics(*pair).to_dict() for pair in embeddings]
    keys = [key for key in metrics[0] if "/" in key]
    differences = {key: metrics[0][key] - metrics[1][key] for key in keys}
    worst = max(abs(value) for value in differences.values())
    changed = {key: round(value, 2) for key, value in differences.items() if value}
    videos = embeddings[1][1]
    # How far apart the fp32 model puts different clips, against how far bf16 moves one clip: when the first is not
    # much larger than the second, rounding reorders the ranking.
    similarity = videos @ videos.T
    spread = 1 - similarity[~torch.eye(len(videos), dtype=torch.bool)].max().item()
    rounding = 1 - _min_cosine(embeddings[0][1], videos)
    return Result(
        name, "% R@1 t2v", metrics[0]["text_to_video/R@1"], metrics[1]["text_to_video/R@1"], max_abs_diff=worst,
        notes=f"diff: largest difference over R@1/5/10, MdR, MnR both ways; {'unchanged' if not changed else changed}"
        f"; random-weight model (model_pair), whose distinct clips lie within 1 - cos = {spread:.2g} of each other "
        f"while bf16 moves a clip by up to {rounding:.2g}: a numerical comparison, not a retrieval quality figure",
        extra={"bf16": metrics[0], "fp32": metrics[1], "clip_spread": spread, "bf16_rounding": rounding},
    )


def _tower_inputs(options: BenchOptions) -> dict[str, tuple[torch.Tensor, ...]]:
    """Each tower's inputs: ids and mask of 64 padded captions; processed clips of 32x224x224 (4; 2 quick)."""
    input_ids = caption_token_ids(TEXT_CAPTIONS, options.seed)
    clips = list(random_clips(2 if options.quick else VIDEO_CLIPS, 32, 224, options.seed + 1).numpy())
    pixels = VideoCLIPVideoProcessor()(clips)["pixel_values_videos"]
    return {"text": (input_ids, (input_ids != 0).long()), "video": (pixels,)}


def _graph_breaks() -> tuple[int, list[str]]:
    from torch._dynamo.utils import counters

    reasons = counters["graph_break"]
    return sum(reasons.values()), sorted(reasons)


def bench_compile(options: BenchOptions) -> list[Result]:
    """``torch.compile`` (inductor, default mode) of each tower vs eager; outputs within `TOWER_TOLERANCE`."""
    _, ours = model_pair(options.seed)
    inputs = _tower_inputs(options)
    clips = len(inputs["video"][0])
    cases = [("text", f"text tower, {TEXT_CAPTIONS} captions", TEXT_CAPTIONS, "captions", options.repeats(5, 2)),
             ("video", f"video tower, {clips} clips 32x224x224", clips, "clips", options.repeats(3, 1))]
    results = []
    for tower, what, count, unit, repeats in cases:
        from torch._dynamo.utils import counters

        torch._dynamo.reset()
        counters.clear()
        eager = tower_for_export(ours, tower)
        compiled = torch.compile(tower_for_export(copy.deepcopy(ours), tower))
        with torch.inference_mode():
            start = time.perf_counter()
            compiled_output = compiled(*inputs[tower])
            compile_seconds = time.perf_counter() - start
            difference = require_close(compiled_output, eager(*inputs[tower]), TOWER_TOLERANCE, what)
            breaks, reasons = _graph_breaks()
            row = speed_result(
                f"{what}, torch.compile (inductor) vs eager", lambda c=compiled, x=inputs[tower]: c(*x),
                lambda e=eager, x=inputs[tower]: e(*x), repeats, "", difference,
                f"first call (compile) {compile_seconds:.0f} s; graph breaks: {breaks}"
                + (f" ({'; '.join(reasons)})" if reasons else "") + "; under torch.compile the text tower takes "
                "the padded path (the padding skip's token count is data-dependent)", count, unit,
            )
        row.extra.update(compile_seconds=compile_seconds, graph_breaks=breaks, graph_break_reasons=reasons)
        results.append(row)
    torch._dynamo.reset()
    return results


def bench_onnx(options: BenchOptions) -> list[Result]:
    """``export_onnx``'s two files in onnxruntime (CPU, torch's thread count) vs eager PyTorch, within 1e-4; the
    video file is also checked at 16 frames (the export's example has 32: the frame count is dynamic)."""
    _, ours = model_pair(options.seed)
    inputs = _tower_inputs(options)
    clips = len(inputs["video"][0])
    processor = _processor()
    results = []
    with tempfile.TemporaryDirectory(prefix="videoclip-bench-onnx-") as folder:
        start = time.perf_counter()
        paths = export_onnx(ours, processor, folder, OnnxExportOptions())
        export_seconds = time.perf_counter() - start
        sessions = {tower: onnx_session(path, torch.get_num_threads()) for tower, path in paths.items()}
        short = inputs["video"][0][:1, :16]
        with torch.inference_mode():
            frames_check = max_abs_diff(
                torch.from_numpy(sessions["video"].run(None, {"pixel_values_videos": short.numpy()})[0]),
                ours.get_video_features(short).pooler_output,
            )
        require_close(torch.zeros(1), torch.tensor([frames_check]), ONNX_TOLERANCE, "ONNX video tower at 16 frames")
        cases = [("text", f"text tower, {TEXT_CAPTIONS} captions", TEXT_CAPTIONS, "captions", options.repeats(5, 2)),
                 ("video", f"video tower, {clips} clips 32x224x224", clips, "clips", options.repeats(3, 1))]
        with torch.inference_mode():
            for tower, what, count, unit, repeats in cases:
                feeds = {name: value.numpy() for name, value in zip(ONNX_INPUTS[tower], inputs[tower])}

                def run_onnx(session=sessions[tower], feeds=feeds) -> torch.Tensor:
                    return torch.from_numpy(session.run(None, feeds)[0])

                def run_eager(eager=tower_for_export(ours, tower), tensors=inputs[tower]) -> torch.Tensor:
                    return eager(*tensors)

                difference = require_close(run_onnx(), run_eager(), ONNX_TOLERANCE, what)
                results.append(speed_result(
                    f"{what}, ONNX in onnxruntime vs eager PyTorch", run_onnx, run_eager, repeats, "", difference,
                    f"videoclip export-onnx's files (torch.onnx dynamo exporter, both towers {export_seconds:.0f} s); "
                    f"onnxruntime CPUExecutionProvider, {torch.get_num_threads()} threads; the text tower in ONNX "
                    f"runs the padded path; video also checked at 16 frames: diff {frames_check:.2g}", count, unit,
                ))
    return results


def bench_distributed(options: BenchOptions) -> list[Result]:
    """``videoclip evaluate`` over 2 processes (torchrun, gloo, one thread each) vs 1 process (2 threads), both as
    subprocesses (the same start-up costs) on the same saved model and sample: the metrics must be equal and the
    saved embeddings agree; on 2 cores the gain is nil by construction (this row is the correctness check)."""
    import json
    import os
    import subprocess
    import sys

    import numpy as np

    from modeling_videoclip.common.models import TOKENIZER_FROM_DATA, build_processor, load_tokenizer
    from modeling_videoclip.mugen import make_mugen_sample

    num_clips = 3 if options.quick else 9  # odd: uneven shards
    name = f"videoclip evaluate, {num_clips} synthetic-sample clips: 2 processes (torchrun, gloo) vs 1"
    _, ours = model_pair(options.seed)
    with tempfile.TemporaryDirectory(prefix="videoclip-bench-dist-") as folder:
        folder = Path(folder)
        make_mugen_sample(folder / "sample", num_clips=2 * num_clips, seed=options.seed, splits=(0.0, 0.5, 0.5),
                          short_clips=0, with_audio=False)
        texts = captions(load_mugen(folder / "sample", "test", annotation="manual"))
        ours.save_pretrained(folder / "model")
        build_processor(load_tokenizer(TOKENIZER_FROM_DATA, texts=texts)).save_pretrained(folder / "model")
        command = ["-m", "modeling_videoclip", "evaluate", "--model", str(folder / "model"), "--data",
                   str(folder / "sample"), "--device", "cpu"]
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(),
                                                                                 os.environ.get("PYTHONPATH")])))

        def evaluate(processes: int, threads: int, batch_size: int = 4) -> Path:
            out = folder / f"run-{processes}x{threads}-{batch_size}"
            launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
            subprocess.run(
                [sys.executable, *(launcher if processes > 1 else []), *command, "--batch-size", str(batch_size),
                 "--json", str(out / "m.json"), "--save-embeddings", str(out / "e.npz")],
                check=True, capture_output=True, env=dict(environment, OMP_NUM_THREADS=str(threads)),
            )
            return out

        # The check: one thread in every process and batches of one clip, so that each clip is computed by the same
        # kernels in both runs; the embeddings must then be identical.
        outputs = evaluate(2, 1, 1), evaluate(1, 1, 1)
        metrics = [json.loads((out / "m.json").read_text())["metrics"] for out in outputs]
        if metrics[0] != metrics[1]:
            raise AssertionError(f"{name}: metrics differ: {metrics[0]} vs {metrics[1]}")
        with np.load(outputs[0] / "e.npz") as two, np.load(outputs[1] / "e.npz") as one:
            difference = max(max_abs_diff(torch.from_numpy(two[key]), torch.from_numpy(one[key]))
                             for key in ("text_embeds", "video_embeds"))
        require_close(torch.zeros(1), torch.tensor([difference]), 0.0, name)
        cores = torch.get_num_threads()
        return [speed_result(
            name, lambda: evaluate(2, max(1, cores // 2)), lambda: evaluate(1, cores), options.repeats(1, 1), "",
            difference, f"wall time of the whole command (start-up, model load, render, embed, metrics), each side "
            f"on all {cores} cores (2 x {max(1, cores // 2)} threads vs 1 x {cores}), batches of 4; checked first "
            "with one thread per process and batches of 1: metrics identical, diff over the saved L2-normalised "
            "embeddings (must be 0). With more "
            "threads per process, or shards whose batches differ from one process's, embeddings differ by float "
            "rounding (~1e-7), which can swap near-tied ranks", num_clips, "clips",
        )]


def run(options: BenchOptions) -> list[Result]:
    """The selected rows."""
    benches = {"data": bench_data_side, "device": bench_device_preprocessing, "half": bench_half_precision,
               "compile": bench_compile, "onnx": bench_onnx, "distributed": bench_distributed}
    results = []
    for name, bench in benches.items():
        if options.wants(name):
            try:
                results += bench(options)
            except Exception as error:  # as `benchmarks.common.main` does per module: the other rows still run
                traceback.print_exc()
                detail = "".join(traceback.format_exception_only(type(error), error)).strip()
                results.append(Result(f"{__name__} {name}", notes="FAILED: " + detail))
    return results


if __name__ == "__main__":
    raise SystemExit(main([__spec__.name], description=__doc__))
