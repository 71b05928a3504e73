"""Model-side benchmarks: ours vs torchmultimodal's reference, side by side in one process.

* video processor vs ``VideoTransform``: 8 clips of 32x256x256 uint8; goal >= 2x at max abs diff <= 1e-6;
* text tower, 64 captions: our DistilBERT with SDPA vs the reference composition with eager attention; >= 1.2x;
* video tower, 4 clips of 32x224x224: >= 1.0x; bf16 autocast and ``channels_last_3d`` weights as options;
* load time: ``AutoModel.from_pretrained`` (safetensors) vs ``torch.load`` + ``load_state_dict`` of the
  torchmultimodal checkpoint; goal: time ratio <= 1.0x.

The reference model is the one the tests build (``tests/reference_videoclip.py``): torchmultimodal-nightly's
``CLIP`` around torchvision's ``S3D`` and transformers' ``DistilBertModel``, with the reference's wrappers.
Ours is converted from its state dict, so both sides hold the same weights.

Run alone: ``python benchmarks/bench_model.py [--quick] [--only processor text video load]``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from benchmarks.common import (  # noqa: E402
    BenchOptions,
    Result,
    check_goal,
    cpu_flags,
    interleaved_timings,
    require_close,
    speed_result,
)

PROCESSOR_CLIPS, PROCESSOR_FRAMES, PROCESSOR_SIZE = 8, 32, 256
TEXT_CAPTIONS = 64
VIDEO_CLIPS, VIDEO_FRAMES, VIDEO_SIZE = 4, 32, 224
# The towers compute the same function in a different order of float operations (SDPA vs eager attention,
# channels-last convolutions): agreement to this is "the same result" (the conversion test's tolerance).
TOWER_TOLERANCE = 1e-5


@dataclass
class ModelPair:
    """The reference VideoCLIP and ours, holding the same random weights, both in eval mode."""

    reference: torch.nn.Module
    ours: torch.nn.Module

    @classmethod
    @functools.lru_cache(maxsize=1)
    def build(cls, seed: int = 0) -> "ModelPair":
        """Builds the pair once per seed and process (several benchmarks share it; none modifies it)."""
        from reference_videoclip import build_reference_videoclip, randomize_batch_norm_stats

        from modeling_videoclip.convert_torchmultimodal import convert_torchmultimodal_checkpoint

        torch.manual_seed(seed)
        reference = build_reference_videoclip(attn_implementation="eager").eval()
        randomize_batch_norm_stats(reference, seed=seed)  # non-trivial BatchNorm statistics
        ours = convert_torchmultimodal_checkpoint(reference.state_dict()).eval()
        return cls(reference=reference, ours=ours)


# ----------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------


def random_clips(count: int, frames: int, size: int, seed: int) -> torch.Tensor:
    """uint8 clips (B, T, H, W, C), the layout both processors accept."""
    generator = np.random.default_rng(seed)
    return torch.from_numpy(generator.integers(0, 256, (count, frames, size, size, 3), dtype=np.uint8))


def caption_token_ids(count: int, seed: int, vocab_size: int = 30522) -> torch.Tensor:
    """Token ids shaped like tokenised MUGEN captions: [CLS] 10-38 word pieces [SEP], padded with 0 to the
    longest (the reference's BertTextTransform output). Random ids: the towers' cost does not depend on them."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(10, 39, (count,), generator=generator)
    ids = torch.zeros((count, int(lengths.max()) + 2), dtype=torch.long)
    for row, length in enumerate(lengths.tolist()):
        ids[row, 0] = 101
        ids[row, 1 : length + 1] = torch.randint(1000, vocab_size, (length,), generator=generator)
        ids[row, length + 1] = 102
    return ids


# ----------------------------------------------------------------------------------------------------------
# Benchmarks
# ----------------------------------------------------------------------------------------------------------


def bench_video_processor(options: BenchOptions) -> list[Result]:
    """VideoCLIPVideoProcessor vs torchmultimodal's VideoTransform on the same uint8 clips."""
    from torchmultimodal.transforms.video_transform import VideoTransform

    from modeling_videoclip import VideoCLIPVideoProcessor

    clips = random_clips(PROCESSOR_CLIPS, PROCESSOR_FRAMES, PROCESSOR_SIZE, options.seed)
    reference, ours = VideoTransform(), VideoCLIPVideoProcessor()

    def run_ours() -> torch.Tensor:
        return ours(clips)["pixel_values_videos"]  # (B, T, C, H, W)

    def run_reference() -> torch.Tensor:
        return reference(clips)  # (B, C, T, H, W)

    difference = require_close(run_ours().transpose(1, 2), run_reference(), 1e-6, "video processor")
    # The check above was each side's warm-up call.
    timings = interleaved_timings(run_ours, run_reference, repeats=options.repeats(7, 3), warmup=0)
    name = f"video processor, {PROCESSOR_CLIPS} clips {PROCESSOR_FRAMES}x{PROCESSOR_SIZE}x{PROCESSOR_SIZE} uint8"
    return [
        speed_result(
            name, timings, ">= 2x", difference, per_call_items=PROCESSOR_CLIPS, item_name="clips",
            notes="VideoCLIPVideoProcessor vs torchmultimodal VideoTransform (same torchvision); diff is exact 0 "
            "when bit-identical",
        )
    ]


def bench_text_tower(options: BenchOptions, models: ModelPair) -> list[Result]:
    """Our text tower (DistilBERT, SDPA) vs the reference's (DistilBERT, eager) on 64 padded captions."""
    input_ids = caption_token_ids(TEXT_CAPTIONS, options.seed)
    attention_mask = (input_ids != 0).long()
    attention = models.ours.text_model.config._attn_implementation

    def run_ours() -> torch.Tensor:
        return models.ours.get_text_features(input_ids, attention_mask).pooler_output

    def run_reference() -> torch.Tensor:
        return models.reference.encoder_a(input_ids)  # builds its mask from the pad id

    with torch.inference_mode():
        difference = require_close(run_ours(), run_reference(), TOWER_TOLERANCE, "text tower")
        timings = interleaved_timings(run_ours, run_reference, repeats=options.repeats(7, 2), warmup=0)
    name = f"text tower, {TEXT_CAPTIONS} captions x {input_ids.shape[1]} tokens"
    return [
        speed_result(
            name, timings, ">= 1.2x", difference, per_call_items=TEXT_CAPTIONS, item_name="captions",
            notes=f"ours attn_implementation={attention} vs reference eager; projected, unnormalised embeddings",
        )
    ]


def bench_video_tower(options: BenchOptions, models: ModelPair) -> list[Result]:
    """Our video tower vs the reference's on 4 clips of 32x224x224, plus options.

    Each side gets its own preprocessing's output for the same uint8 clips: ours our processor's (B, T, C, H, W)
    tensor, the reference ``VideoTransform``'s (B, C, T, H, W) one (contiguous). Options (full mode): the
    reference given ``channels_last_3d`` input (what our encoder does internally on CPU: it shows where our
    gain comes from), ours with ``channels_last_3d`` weights (vs ours), ours under bf16 autocast.
    In quick mode one repetition is timed.
    """
    from torchmultimodal.transforms.video_transform import VideoTransform

    from modeling_videoclip import VideoCLIPVideoProcessor

    clips = random_clips(VIDEO_CLIPS, VIDEO_FRAMES, VIDEO_SIZE, options.seed + 1)
    ours_pixels = VideoCLIPVideoProcessor()(clips)["pixel_values_videos"]  # (B, T, C, H, W)
    reference_pixels = VideoTransform()(clips)  # (B, C, T, H, W)
    shape = f"{VIDEO_CLIPS} clips {VIDEO_FRAMES}x{VIDEO_SIZE}x{VIDEO_SIZE}"
    repeats = options.repeats(3, 1)

    def ours_on(model: torch.nn.Module, pixels: torch.Tensor) -> Callable[[], torch.Tensor]:
        return lambda: model.get_video_features(pixels).pooler_output

    def reference_on(pixels: torch.Tensor) -> Callable[[], torch.Tensor]:
        return lambda: models.reference.encoder_b(pixels)

    results = []
    with torch.inference_mode():
        channels_last = reference_pixels.contiguous(memory_format=torch.channels_last_3d)
        cases = [
            ("video tower, " + shape, reference_pixels, ">= 1x", "reference input: VideoTransform output (contiguous)"),
            (
                f"video tower, {shape}, option: reference on channels_last_3d input",
                channels_last,
                "",
                "the reference given VideoTransform output converted to channels_last_3d, as our encoder converts "
                "its input on CPU: the gain of the first row is this memory layout",
            ),
        ]
        for index, (name, pixels, goal, note) in enumerate(cases[: 1 if options.quick else 2]):
            # On all clips: the check is also each side's warm-up at the timed shape (oneDNN builds its
            # kernels for each new input shape on the first call).
            difference = require_close(ours_on(models.ours, ours_pixels)(), reference_on(pixels)(), TOWER_TOLERANCE, name)
            timings = interleaved_timings(
                ours_on(models.ours, ours_pixels), reference_on(pixels), repeats=repeats if index == 0 else 2, warmup=0
            )
            results.append(
                speed_result(name, timings, goal, difference, note, per_call_items=VIDEO_CLIPS, item_name="clips")
            )
        if not options.quick:
            option_repeats = 2  # options are informative (no goal): fewer repetitions keep the full run short
            results.append(_channels_last_weights_option(models, ours_pixels, shape, option_repeats))
            results.append(_bf16_autocast_option(models, ours_pixels, reference_pixels))
    return results


def _channels_last_weights_option(models: ModelPair, pixels: torch.Tensor, shape: str, repeats: int) -> Result:
    """Option: ours with its weights in ``channels_last_3d`` memory format (``model.to(memory_format=...)``),
    against ours as loaded (the reference column of this row is OURS with default weights)."""
    model = copy.deepcopy(models.ours).to(memory_format=torch.channels_last_3d)

    def run_option() -> torch.Tensor:
        return model.get_video_features(pixels).pooler_output

    def run_default() -> torch.Tensor:
        return models.ours.get_video_features(pixels).pooler_output

    difference = require_close(run_option(), run_default(), TOWER_TOLERANCE, "video tower, channels_last_3d weights")
    timings = interleaved_timings(run_option, run_default, repeats=repeats, warmup=0)
    return speed_result(
        f"video tower, {shape}, option: ours with channels_last_3d weights vs ours", timings, "", difference,
        "ours after model.to(memory_format=torch.channels_last_3d) vs ours as loaded (our encoder already runs "
        "channels-last activations on CPU); the reference column is ours as loaded",
        per_call_items=VIDEO_CLIPS, item_name="clips",
    )


def _bf16_autocast_option(models: ModelPair, ours_pixels: torch.Tensor, reference_pixels: torch.Tensor) -> Result:
    """Option: ours under ``torch.autocast("cpu", torch.bfloat16)`` vs the fp32 reference, once per side.

    Without native bf16 instructions (AVX512-BF16 / AMX) the CPU emulates bf16 and is many times slower than
    fp32, so on such machines this is measured on ONE clip of 16 frames (S3D's practical minimum) to keep the
    run short; with them, on the 4 clips of 32 frames.
    """
    capability = torch.backends.cpu.get_cpu_capability()
    native_bf16 = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    clips, frames = (VIDEO_CLIPS, VIDEO_FRAMES) if native_bf16 else (1, 16)
    pixels = ours_pixels[:clips, :frames]
    reference_input = reference_pixels[:clips, :, :frames]

    def run_ours() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return models.ours.get_video_features(pixels).pooler_output.float()

    def run_reference() -> torch.Tensor:
        return models.reference.encoder_b(reference_input)

    reference_out, ours_out = run_reference(), run_ours()  # warm-up and outputs
    timings = interleaved_timings(run_ours, run_reference, repeats=1, warmup=0)
    difference = float((ours_out - reference_out).abs().max())
    return speed_result(
        f"video tower, {clips} clip(s) {frames}x{VIDEO_SIZE}x{VIDEO_SIZE}, option: ours under bf16 autocast",
        timings, "", difference,
        f"torch.autocast('cpu', bfloat16) vs the fp32 reference; cpu capability {capability}"
        + ("" if native_bf16 else ", no native bf16 (emulated)") + "; the diff is bf16 rounding",
        per_call_items=clips, item_name="clips",
    )


def bench_load_time(options: BenchOptions, models: ModelPair) -> list[Result]:
    """``AutoModel.from_pretrained`` of our safetensors folder vs building the reference module and
    ``load_state_dict(torch.load(videoclip_mugen.pt))``, as torchmultimodal's ``videoclip(pretrained=True)``."""
    from reference_videoclip import build_reference_videoclip
    from transformers import AutoModel

    import modeling_videoclip  # noqa: F401  (registers the Auto classes)
    from modeling_videoclip.convert_torchmultimodal import convert_state_dict

    with tempfile.TemporaryDirectory(prefix="videoclip-bench-load-") as folder:
        ours_dir, reference_file = Path(folder) / "ours", Path(folder) / "videoclip_mugen.pt"
        models.ours.save_pretrained(ours_dir)
        torch.save(models.reference.state_dict(), reference_file)

        def load_ours() -> torch.nn.Module:
            return AutoModel.from_pretrained(ours_dir).eval()

        def load_reference() -> torch.nn.Module:
            model = build_reference_videoclip(attn_implementation="eager")
            model.load_state_dict(torch.load(reference_file, weights_only=True, map_location="cpu"))
            return model.eval()

        difference = _state_dict_difference(load_ours(), convert_state_dict(load_reference().state_dict()))
        timings = interleaved_timings(load_ours, load_reference, repeats=options.repeats(7, 3), warmup=0)
    ratio = timings.time_ratio
    return [
        Result(
            name="load time, full model (fp32)",
            unit="s",
            ours=timings.ours_median,
            reference=timings.reference_median,
            ratio=ratio,
            ratio_kind="time ratio",
            goal="<= 1x",
            goal_met=check_goal(ratio, "<= 1x"),
            max_abs_diff=difference,
            repeats=len(timings.ours),
            notes="AutoModel.from_pretrained(safetensors) vs build reference + torch.load + load_state_dict; "
            "ratio = our time / reference time; files in the page cache for both",
            extra={"ours_times_s": timings.ours, "reference_times_s": timings.reference},
        )
    ]


def _state_dict_difference(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> float:
    """Max abs difference over all tensors of `model` vs `expected` (same keys required)."""
    state = model.state_dict()
    missing = set(expected) - set(state)
    if missing:
        raise AssertionError(f"Loaded model lacks {sorted(missing)[:5]}...")
    return max(float((state[k].double() - v.double()).abs().max()) if v.numel() else 0.0 for k, v in expected.items())


BENCHMARKS = ("processor", "text", "video", "load")


def run(options: BenchOptions, only: tuple[str, ...] = BENCHMARKS) -> list[Result]:
    """Runs the selected model benchmarks and returns their table rows."""
    results = []
    if "processor" in only:
        results += bench_video_processor(options)
    if {"text", "video", "load"} & set(only):
        models = ModelPair.build(options.seed)
        if "text" in only:
            results += bench_text_tower(options, models)
        if "video" in only:
            results += bench_video_tower(options, models)
        if "load" in only:
            results += bench_load_time(options, models)
    return results


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import format_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(format_table(run(BenchOptions(quick=args.quick), tuple(args.only))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
