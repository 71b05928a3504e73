"""``videoclip export-onnx``: the text and the video tower as two ONNX files (projected, unnormalised embeddings;
dynamic batch, sequence and frame count), each checked with onnxruntime against PyTorch before success is
reported."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..common.errors import CommandError, ExitCode, writing
from . import shared

TOWERS = ("text", "video")
ONNX_FILES = {"text": "text.onnx", "video": "video.onnx"}
ONNX_INPUTS = {"text": ("input_ids", "attention_mask"), "video": ("pixel_values_videos",)}
ONNX_OUTPUTS = {"text": "text_embeds", "video": "video_embeds"}
# onnxruntime and PyTorch run the same graph with different kernels: agreement to this is "the same model".
ONNX_TOLERANCE = 1e-4
_MIN_FRAMES = 13  # S3D's smallest input in time (see `modeling_videoclip._check_pixel_values`)
_CHECK_CAPTIONS = ("Mugen jumps onto a ledge.", "Mugen climbs up a ladder, collects a coin and kills a bee.", "A")


@dataclass(frozen=True)
class OnnxExportOptions:
    """What `export_onnx` writes.

    Args:
        towers: "text", "video" or both (the default).
        opset: the ONNX opset; `None` (default) is the exporter's (torch.onnx's dynamo exporter).
        tolerance: the largest |onnxruntime - PyTorch| accepted by `check_onnx`. Defaults to `ONNX_TOLERANCE`, 1e-4.
    """

    towers: tuple[str, ...] = TOWERS
    opset: int | None = None
    tolerance: float = ONNX_TOLERANCE


class TextTowerForExport(nn.Module):
    """``(input_ids, attention_mask) -> get_text_features(...).pooler_output`` (projected, not normalised)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output


class VideoTowerForExport(nn.Module):
    """``pixel_values_videos -> get_video_features(...).pooler_output`` (projected, not normalised)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        return self.model.get_video_features(pixel_values_videos=pixel_values_videos).pooler_output


def tower_for_export(model: nn.Module, tower: str) -> nn.Module:
    """`model`'s `tower` ("text" or "video") as a module of tensors to one tensor, in eval mode."""
    return (TextTowerForExport if tower == "text" else VideoTowerForExport)(model).eval()


def example_inputs(processor: Any, tower: str, batch_size: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Processor outputs for `tower`: `batch_size` captions of different lengths (padded), or random uint8 clips of
    the processor's frame count at its size (normalised, as real clips are)."""
    if tower == "text":
        texts = [_CHECK_CAPTIONS[i % len(_CHECK_CAPTIONS)] for i in range(batch_size)]
        encoded = processor(text=texts, return_tensors="pt")
        return {name: encoded[name] for name in ONNX_INPUTS["text"]}
    video_processor = processor.video_processor
    size = video_processor.size
    shape = (batch_size, video_processor.num_frames, size["height"], size["width"], 3)
    clips = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    return {"pixel_values_videos": video_processor(list(clips), return_tensors="pt")["pixel_values_videos"]}


def _dynamic_shapes(tower: str) -> dict[str, dict[int, Any]]:
    batch = torch.export.Dim("batch", min=1)
    if tower == "text":
        sequence = torch.export.Dim("sequence", min=1)
        return {name: {0: batch, 1: sequence} for name in ONNX_INPUTS["text"]}
    return {"pixel_values_videos": {0: batch, 1: torch.export.Dim("frames", min=_MIN_FRAMES)}}


def export_onnx(
    model: nn.Module, processor: Any, out_dir: str | os.PathLike, options: OnnxExportOptions = OnnxExportOptions()
) -> dict[str, Path]:
    """Writes ``text.onnx`` and/or ``video.onnx`` (each self-contained) into `out_dir` with torch.onnx's dynamo
    exporter; inputs and outputs are named as `ONNX_INPUTS` / `ONNX_OUTPUTS`, the batch, sequence length and frame
    count dynamic. Returns the written paths by tower. Does not check them: see `check_onnx`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for tower in options.towers:
        inputs = example_inputs(processor, tower)
        paths[tower] = out_dir / ONNX_FILES[tower]
        torch.onnx.export(
            tower_for_export(model, tower), tuple(inputs.values()), paths[tower], input_names=list(inputs),
            output_names=[ONNX_OUTPUTS[tower]], dynamic_shapes=_dynamic_shapes(tower), opset_version=options.opset,
            dynamo=True, external_data=False, verbose=False,
        )
    return paths


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU `InferenceSession` of `path` (`threads` intra-op threads; None: onnxruntime's default)."""
    import onnxruntime

    settings = onnxruntime.SessionOptions()
    if threads is not None:
        settings.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), settings, providers=["CPUExecutionProvider"])


def check_onnx(
    paths: dict[str, Path], model: nn.Module, processor: Any, tolerance: float = ONNX_TOLERANCE
) -> dict[str, float]:
    """Runs every exported tower in onnxruntime and in PyTorch on inputs of another batch size than the export's
    (3 captions of different lengths, 1 clip) and returns the max abs difference per tower.

    Raises:
        CommandError: a tower differs by more than `tolerance`.
    """
    differences = {}
    for tower, path in paths.items():
        inputs = example_inputs(processor, tower, batch_size=3 if tower == "text" else 1, seed=1)
        (onnx_output,) = onnx_session(path).run(None, {name: value.numpy() for name, value in inputs.items()})
        with torch.inference_mode():
            expected = tower_for_export(model, tower)(*inputs.values()).float().numpy()
        differences[tower] = float(np.abs(onnx_output - expected).max())
        if not differences[tower] <= tolerance:
            raise CommandError(f"{path}: onnxruntime and PyTorch differ by {differences[tower]:.3g} (> {tolerance:g})"
                               f"; the export is wrong, do not use it (please report this)")
    return differences


def register(subparsers) -> None:
    parser = shared.add_command(
        subparsers, "export-onnx", "export the text and video towers to ONNX",
        "Write OUT_DIR/text.onnx (inputs input_ids, attention_mask) and OUT_DIR/video.onnx (input "
        "pixel_values_videos, the processor's output), each giving the projected, unnormalised embeddings "
        "(get_*_features().pooler_output) with a dynamic batch, sequence length and frame count; both are run in "
        "onnxruntime and compared with PyTorch (max abs diff <= 1e-4) before success is reported. Needs "
        "pip install 'videoclip-hf[onnx]'.",
    )
    parser.add_argument("model", metavar="MODEL", help="a saved VideoCLIP (folder or Hub id)")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write text.onnx and video.onnx into")
    parser.add_argument("--towers", nargs="+", choices=TOWERS, default=list(TOWERS),
                        help="which towers to export. Default: both")
    parser.add_argument("--opset", type=shared.positive_int, help="ONNX opset. Default: the exporter's")
    parser.add_argument("--overwrite", action="store_true", help="replace existing text.onnx / video.onnx")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from ..common.models import load_pretrained

    _require_onnx_packages()
    options = OnnxExportOptions(towers=tuple(dict.fromkeys(args.towers)), opset=args.opset)
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CommandError(f"OUT_DIR {args.out_dir!r} is a file; give a folder", ExitCode.USAGE)
    existing = [out_dir / ONNX_FILES[tower] for tower in options.towers if (out_dir / ONNX_FILES[tower]).exists()]
    if existing and not args.overwrite:
        raise CommandError(f"{', '.join(map(str, existing))} already exist(s); pass --overwrite to replace",
                           ExitCode.USAGE)
    model, processor = load_pretrained(args.model, "cpu")
    with writing(out_dir):
        paths = export_onnx(model, processor, out_dir, options)
    try:
        differences = check_onnx(paths, model, processor, options.tolerance)
    except CommandError:
        _remove(paths.values())
        raise
    for tower, path in paths.items():
        print(f"Wrote {path} (inputs {', '.join(ONNX_INPUTS[tower])}; output {ONNX_OUTPUTS[tower]}; onnxruntime vs "
              f"PyTorch max abs diff {differences[tower]:.2g})")
    return 0


def _require_onnx_packages() -> None:
    missing = [name for name in ("onnx", "onnxruntime", "onnxscript") if not _importable(name)]
    if missing:
        raise CommandError(f"export-onnx needs {', '.join(missing)}: pip install 'videoclip-hf[onnx]'")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
