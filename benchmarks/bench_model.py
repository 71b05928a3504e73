"""Model-side benchmarks: ours vs torchmultimodal's reference, side by side in one process.

* ``processor``: video processor vs ``VideoTransform``, 8 clips of 32x256x256 uint8; goal >= 2x at max abs diff
  <= 1e-6;
* ``text``: text tower, 64 captions: our DistilBERT with SDPA vs the reference composition with eager attention;
  >= 1.2x;
* ``video``: video tower, 4 clips of 32x224x224: >= 1.0x; bf16 autocast and ``channels_last_3d`` weights as options;
* ``load``: ``AutoModel.from_pretrained`` (safetensors) vs ``torch.load`` + ``load_state_dict`` of the
  torchmultimodal checkpoint; goal: time ratio <= 1.0x.

The reference model is `benchmarks.reference.model_pair`'s (the one the conversion tests build). Ours is converted
from its state dict, so both sides hold the same weights.

Run alone: ``python -m benchmarks.bench_model [--quick] [--only processor text video load]``.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import BenchOptions, Result, cpu_flags, interleaved_timings, main, require_close, speed_result
from benchmarks.reference import build_reference_videoclip, model_pair

NAMES = ("processor", "text", "video", "load")
PROCESSOR_CLIPS, PROCESSOR_FRAMES, PROCESSOR_SIZE = 8, 32, 256
TEXT_CAPTIONS = 64
VIDEO_CLIPS, VIDEO_FRAMES, VIDEO_SIZE = 4, 32, 224
# The towers compute the same function in a different order of float operations (SDPA vs eager attention,
# channels-last convolutions): agreement to this is "the same result" (the conversion test's tolerance).
TOWER_TOLERANCE = 1e-5


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
    timings = interleaved_timings(run_ours, run_reference, repeats=options.repeats(7, 3))
    name = f"video processor, {PROCESSOR_CLIPS} clips {PROCESSOR_FRAMES}x{PROCESSOR_SIZE}x{PROCESSOR_SIZE} uint8"
    notes = "VideoCLIPVideoProcessor vs torchmultimodal VideoTransform (same torchvision); diff is exact 0 when "
    notes += "bit-identical"
    return [speed_result(name, timings, ">= 2x", difference, notes, PROCESSOR_CLIPS, "clips")]


def bench_text_tower(options: BenchOptions, reference: torch.nn.Module, ours: torch.nn.Module) -> list[Result]:
    """Our text tower (DistilBERT, SDPA) vs the reference's (DistilBERT, eager) on 64 padded captions."""
    input_ids = caption_token_ids(TEXT_CAPTIONS, options.seed)
    attention_mask = (input_ids != 0).long()

    def run_ours() -> torch.Tensor:
        return ours.get_text_features(input_ids, attention_mask).pooler_output

    def run_reference() -> torch.Tensor:
        return reference.encoder_a(input_ids)  # builds its mask from the pad id

    with torch.inference_mode():
        difference = require_close(run_ours(), run_reference(), TOWER_TOLERANCE, "text tower")
        timings = interleaved_timings(run_ours, run_reference, repeats=options.repeats(7, 2))
    name = f"text tower, {TEXT_CAPTIONS} captions x {input_ids.shape[1]} tokens"
    notes = f"ours attn_implementation={ours.text_model.config._attn_implementation} vs reference eager; projected, "
    notes += "unnormalised embeddings"
    return [speed_result(name, timings, ">= 1.2x", difference, notes, TEXT_CAPTIONS, "captions")]


def bench_video_tower(options: BenchOptions, reference: torch.nn.Module, ours: torch.nn.Module) -> list[Result]:
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

    def ours_on(model: torch.nn.Module, pixels: torch.Tensor) -> Callable[[], torch.Tensor]:
        return lambda: model.get_video_features(pixels).pooler_output

    def reference_on(pixels: torch.Tensor) -> Callable[[], torch.Tensor]:
        return lambda: reference.encoder_b(pixels)

    results = []
    with torch.inference_mode():
        cases = [
            (f"video tower, {shape}", reference_pixels, ">= 1x", "reference input: VideoTransform output, contiguous"),
            (
                f"video tower, {shape}, option: reference on channels_last_3d input",
                reference_pixels.contiguous(memory_format=torch.channels_last_3d),
                "",
                "the reference given VideoTransform output converted to channels_last_3d, as our encoder converts "
                "its input on CPU: the gain of the first row is this memory layout",
            ),
        ]
        for index, (name, pixels, goal, note) in enumerate(cases[: 1 if options.quick else 2]):
            # On all clips: the check is also each side's warm-up at the timed shape (oneDNN builds its
            # kernels for each new input shape on the first call).
            difference = require_close(ours_on(ours, ours_pixels)(), reference_on(pixels)(), TOWER_TOLERANCE, name)
            repeats = options.repeats(3, 1) if index == 0 else 2
            timings = interleaved_timings(ours_on(ours, ours_pixels), reference_on(pixels), repeats)
            results.append(speed_result(name, timings, goal, difference, note, VIDEO_CLIPS, "clips"))
        if not options.quick:
            # Options are informative (no goal): 2 repetitions keep the full run short.
            channels_last = copy.deepcopy(ours).to(memory_format=torch.channels_last_3d)
            name = "video tower, channels_last_3d weights"
            difference = require_close(
                ours_on(channels_last, ours_pixels)(), ours_on(ours, ours_pixels)(), TOWER_TOLERANCE, name
            )
            timings = interleaved_timings(ours_on(channels_last, ours_pixels), ours_on(ours, ours_pixels), 2)
            results.append(
                speed_result(
                    f"video tower, {shape}, option: ours with channels_last_3d weights vs ours",
                    timings, "", difference,
                    "ours after model.to(memory_format=torch.channels_last_3d) vs ours as loaded (our encoder already "
                    "runs channels-last activations on CPU); the reference column is ours as loaded",
                    VIDEO_CLIPS, "clips",
                )
            )
            results.append(_bf16_autocast_option(reference, ours, ours_pixels, reference_pixels))
    return results


def _bf16_autocast_option(
    reference: torch.nn.Module, ours: torch.nn.Module, ours_pixels: torch.Tensor, reference_pixels: torch.Tensor
) -> Result:
    """Option: ours under ``torch.autocast("cpu", torch.bfloat16)`` vs the fp32 reference, once per side.

    Without native bf16 instructions (AVX512-BF16 / AMX) the CPU emulates bf16 and is many times slower than
    fp32, so on such machines this is measured on ONE clip of 16 frames (S3D's practical minimum) to keep the
    run short; with them, on the 4 clips of 32 frames.
    """
    native_bf16 = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    clips, frames = (VIDEO_CLIPS, VIDEO_FRAMES) if native_bf16 else (1, 16)
    pixels, reference_input = ours_pixels[:clips, :frames], reference_pixels[:clips, :, :frames]

    def run_ours() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return ours.get_video_features(pixels).pooler_output.float()

    def run_reference() -> torch.Tensor:
        return reference.encoder_b(reference_input)

    difference = float((run_ours() - run_reference()).abs().max())  # also each side's warm-up
    return speed_result(
        f"video tower, {clips} clip(s) {frames}x{VIDEO_SIZE}x{VIDEO_SIZE}, option: ours under bf16 autocast",
        interleaved_timings(run_ours, run_reference, repeats=1), "", difference,
        f"torch.autocast('cpu', bfloat16) vs the fp32 reference; cpu capability "
        f"{torch.backends.cpu.get_cpu_capability()}" + ("" if native_bf16 else ", no native bf16 (emulated)")
        + "; the diff is bf16 rounding",
        clips, "clips",
    )


def bench_load_time(options: BenchOptions, reference: torch.nn.Module, ours: torch.nn.Module) -> list[Result]:
    """``AutoModel.from_pretrained`` of our safetensors folder vs building the reference module and
    ``load_state_dict(torch.load(videoclip_mugen.pt))``, as torchmultimodal's ``videoclip(pretrained=True)``."""
    from transformers import AutoModel

    import modeling_videoclip  # noqa: F401  (registers the Auto classes)
    from modeling_videoclip.convert_torchmultimodal import convert_state_dict

    with tempfile.TemporaryDirectory(prefix="videoclip-bench-load-") as folder:
        ours_dir, reference_file = Path(folder) / "ours", Path(folder) / "videoclip_mugen.pt"
        ours.save_pretrained(ours_dir)
        torch.save(reference.state_dict(), reference_file)

        def load_ours() -> torch.nn.Module:
            return AutoModel.from_pretrained(ours_dir).eval()

        def load_reference() -> torch.nn.Module:
            model = build_reference_videoclip(attn_implementation="eager")
            model.load_state_dict(torch.load(reference_file, weights_only=True, map_location="cpu"))
            return model.eval()

        loaded, expected = load_ours().state_dict(), convert_state_dict(load_reference().state_dict())
        if set(expected) - set(loaded):
            raise AssertionError(f"Loaded model lacks {sorted(set(expected) - set(loaded))[:5]}...")
        difference = max(float((loaded[key].double() - value.double()).abs().max()) if value.numel() else 0.0
                         for key, value in expected.items())
        timings = interleaved_timings(load_ours, load_reference, repeats=options.repeats(7, 3))
    notes = "AutoModel.from_pretrained(safetensors) vs build reference + torch.load + load_state_dict; ratio = our "
    notes += "time / reference time; files in the page cache for both"
    return [speed_result("load time, full model (fp32)", timings, "<= 1x", difference, notes, ratio_kind="time ratio")]


def run(options: BenchOptions) -> list[Result]:
    """The selected model benchmarks' table rows."""
    results = bench_video_processor(options) if options.wants("processor") else []
    if any(options.wants(name) for name in ("text", "video", "load")):
        reference, ours = model_pair(options.seed)
        for name, bench in (("text", bench_text_tower), ("video", bench_video_tower), ("load", bench_load_time)):
            if options.wants(name):
                results += bench(options, reference, ours)
    return results


if __name__ == "__main__":
    from benchmarks import bench_model

    raise SystemExit(main([bench_model], description=__doc__))
