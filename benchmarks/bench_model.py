"""Model-side benchmarks on `benchmarks.reference.model_pair` (ours converted from the reference: same weights):

* ``processor``: video processor vs ``VideoTransform``, 8 uint8 clips of 32x256x256; >= 2x at max abs diff <= 1e-6;
* ``text``: text tower on 64 captions, our DistilBERT with SDPA vs the reference with eager attention; >= 1.2x;
* ``video``: video tower on 4 clips of 32x224x224: >= 1x; channels_last_3d and bf16 autocast as options;
* ``load``: ``AutoModel.from_pretrained`` (safetensors) vs ``torch.load`` + ``load_state_dict``: time ratio <= 1x.

Run alone: ``python -m benchmarks.bench_model [--quick] [--only processor text video load]``.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import torch
from torchmultimodal.transforms.video_transform import VideoTransform

from benchmarks.common import BenchOptions, Result, checked_speed_result, cpu_flags, main, max_abs_diff, speed_result
from benchmarks.reference import build_reference_videoclip, model_pair
from modeling_videoclip import VideoCLIPVideoProcessor  # also registers the Auto classes
from modeling_videoclip.convert_torchmultimodal import convert_state_dict

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
    clips = random_clips(PROCESSOR_CLIPS, PROCESSOR_FRAMES, PROCESSOR_SIZE, options.seed)
    reference, ours = VideoTransform(), VideoCLIPVideoProcessor()
    return [checked_speed_result(
        f"video processor, {PROCESSOR_CLIPS} clips {PROCESSOR_FRAMES}x{PROCESSOR_SIZE}x{PROCESSOR_SIZE} uint8",
        lambda: ours(clips)["pixel_values_videos"].transpose(1, 2),  # (B, T, C, H, W) to the reference's layout
        lambda: reference(clips), 1e-6, options.repeats(7, 3), ">= 2x",
        "VideoCLIPVideoProcessor vs torchmultimodal VideoTransform (same torchvision); diff is exact 0 when "
        "bit-identical", PROCESSOR_CLIPS, "clips",
    )]


def bench_text_tower(options: BenchOptions, reference: torch.nn.Module, ours: torch.nn.Module) -> list[Result]:
    """Our text tower (DistilBERT, SDPA) vs the reference's (DistilBERT, eager) on 64 padded captions."""
    input_ids = caption_token_ids(TEXT_CAPTIONS, options.seed)
    attention_mask = (input_ids != 0).long()
    with torch.inference_mode():
        return [checked_speed_result(
            f"text tower, {TEXT_CAPTIONS} captions x {input_ids.shape[1]} tokens",
            lambda: ours.get_text_features(input_ids, attention_mask).pooler_output,
            lambda: reference.encoder_a(input_ids),  # builds its mask from the pad id
            TOWER_TOLERANCE, options.repeats(7, 2), ">= 1.2x",
            f"ours attn_implementation={ours.text_model.config._attn_implementation} vs reference eager; "
            "projected, unnormalised embeddings", TEXT_CAPTIONS, "captions",
        )]


def bench_video_tower(options: BenchOptions, reference: torch.nn.Module, ours: torch.nn.Module) -> list[Result]:
    """Our video tower vs the reference's on 4 clips of 32x224x224, each on its own processor's output for the same
    uint8 clips; the full run adds options (no goal, 2 repetitions or 1; their notes say what each shows). The check
    runs on all clips: it is also each side's warm-up at the timed shape (oneDNN builds its kernels per shape)."""
    clips = random_clips(VIDEO_CLIPS, VIDEO_FRAMES, VIDEO_SIZE, options.seed + 1)
    ours_pixels = VideoCLIPVideoProcessor()(clips)["pixel_values_videos"]  # (B, T, C, H, W)
    reference_pixels = VideoTransform()(clips)  # (B, C, T, H, W)
    name = f"video tower, {VIDEO_CLIPS} clips {VIDEO_FRAMES}x{VIDEO_SIZE}x{VIDEO_SIZE}"

    def ours_on(model: torch.nn.Module, pixels: torch.Tensor = ours_pixels):
        return lambda: model.get_video_features(pixels).pooler_output

    def reference_on(pixels: torch.Tensor):
        return lambda: reference.encoder_b(pixels)

    # (name, ours, reference, tolerance, repeats, goal, notes, clips): `checked_speed_result`'s arguments.
    cases = [(name, ours_on(ours), reference_on(reference_pixels), TOWER_TOLERANCE, options.repeats(3, 1), ">= 1x",
              "reference input: VideoTransform output, contiguous", VIDEO_CLIPS)]
    if not options.quick:
        channels_last = copy.deepcopy(ours).to(memory_format=torch.channels_last_3d)
        # Without native bf16 (AVX512-BF16 / AMX) the CPU emulates it many times slower than fp32, so it then runs
        # on ONE clip of 16 frames (S3D's practical minimum) to keep the run short.
        native_bf16 = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
        bf16_clips, bf16_frames = (VIDEO_CLIPS, VIDEO_FRAMES) if native_bf16 else (1, 16)

        def ours_bf16() -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return ours.get_video_features(ours_pixels[:bf16_clips, :bf16_frames]).pooler_output.float()

        cases += [
            (f"{name}, option: reference on channels_last_3d input", ours_on(ours),
             reference_on(reference_pixels.contiguous(memory_format=torch.channels_last_3d)), TOWER_TOLERANCE, 2, "",
             "the reference given VideoTransform output converted to channels_last_3d, as our encoder converts "
             "its input on CPU: the gain of the first row is this memory layout", VIDEO_CLIPS),
            (f"{name}, option: ours with channels_last_3d weights vs ours", ours_on(channels_last), ours_on(ours),
             TOWER_TOLERANCE, 2, "", "ours after model.to(memory_format=torch.channels_last_3d) vs ours as loaded (our"
             " encoder already runs channels-last activations on CPU); the reference column is ours as loaded",
             VIDEO_CLIPS),
            (f"video tower, {bf16_clips} clip(s) {bf16_frames}x{VIDEO_SIZE}x{VIDEO_SIZE}, option: ours under bf16 "
             "autocast", ours_bf16, reference_on(reference_pixels[:bf16_clips, :, :bf16_frames]), None, 1, "",
             f"torch.autocast('cpu', bfloat16) vs the fp32 reference; cpu capability "
             f"{torch.backends.cpu.get_cpu_capability()}" + ("" if native_bf16 else ", no native bf16 (emulated)")
             + "; the diff is bf16 rounding", bf16_clips),
        ]
    with torch.inference_mode():
        return [checked_speed_result(*case, "clips") for case in cases]


def bench_load_time(options: BenchOptions, reference: torch.nn.Module, ours: torch.nn.Module) -> list[Result]:
    """``AutoModel.from_pretrained`` of our safetensors folder vs building the reference module and
    ``load_state_dict(torch.load(videoclip_mugen.pt))``, as torchmultimodal's ``videoclip(pretrained=True)``."""
    from transformers import AutoModel

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
        difference = max(max_abs_diff(loaded[key], value) for key, value in expected.items())
        notes = "AutoModel.from_pretrained(safetensors) vs build reference + torch.load + load_state_dict; ratio = "
        notes += "our time / reference time; files in the page cache for both"
        return [speed_result("load time, full model (fp32)", load_ours, load_reference, options.repeats(7, 3), "<= 1x",
                             difference, notes, ratio_kind="time ratio")]


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
    raise SystemExit(main([__spec__.name], description=__doc__))
