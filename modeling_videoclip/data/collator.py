"""The one collator: dataset rows (a caption and/or a video) -> `VideoCLIPModel` inputs, through the processor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..video_processing_videoclip import is_frame_list


@dataclass
class VideoCLIPDataCollator:
    """Turns dataset rows (mappings with a caption and a video column) into a `VideoCLIPModel` batch.

    A list of captions uses its first (as the reference's evaluation); videos are in any form the video processor
    takes (`row_video`): uint8 arrays or tensors (nested lists are slow: see `numpy_video_format`), a `datasets`
    `Video()` column's decoders, `Video(decode=False)` dicts, paths or URLs. Other columns are ignored. With one
    column `None` only the other is read, and a row that is not a mapping is the value itself (how the embedding
    helpers batch).

    Args:
        processor: the `VideoCLIPProcessor` (tokenizer and video processor).
        text_column: the caption column, `None` for video-only batches. Defaults to `"text"`, `load_mugen`'s.
        video_column: the video column, `None` for text-only batches. Defaults to `"video"`, `load_mugen`'s.
        processor_kwargs: extra keyword arguments for the processor call, e.g. `{"num_frames": 16}`. Defaults to {}.
        return_loss: add `return_loss=True`, so that a plain `Trainer` computes the contrastive loss. Defaults to True.
        defer_video_resize: only sample (decode) the frames: `pixel_values_videos` is then a list of uint8
            `(T, C, H, W)` clips, which `finish_videos` resizes and normalises on the model's device (the GPU path:
            a DataLoader worker's CPU cost drops to decoding). Defaults to False: the processor's full output.

    Returns (when called on a list of rows):
        `input_ids`, `attention_mask` (texts), `pixel_values_videos` (videos), `return_loss=True` (`return_loss`).
    """

    processor: Any
    text_column: str | None = "text"
    video_column: str | None = "video"
    processor_kwargs: dict[str, Any] = field(default_factory=dict)
    return_loss: bool = True
    defer_video_resize: bool = False

    def __call__(self, rows: Sequence[Any]) -> dict[str, Any]:
        if len(rows) == 0:
            raise ValueError("VideoCLIPDataCollator got an empty batch.")
        inputs: dict[str, Any] = {}
        if self.text_column is not None:
            inputs["text"] = [row_text(row, self.text_column, self.video_column) for row in rows]
        if self.video_column is not None:
            inputs["videos"] = [row_video(row, self.video_column, self.text_column) for row in rows]
        if self.defer_video_resize and "videos" in inputs:
            batch = self._sampled_frames(inputs.pop("videos"))
            if inputs:
                text_options = {key: value for key, value in self.processor_kwargs.items() if key in _TEXT_OPTIONS}
                batch |= self.processor(**inputs, return_tensors="pt", **text_options)
        else:
            batch = self.processor(**inputs, return_tensors="pt", **self.processor_kwargs)
        out = {key: batch[key] for key in ("input_ids", "attention_mask", "pixel_values_videos") if key in batch}
        return out | {"return_loss": True} if self.return_loss else out

    def _sampled_frames(self, videos: list[Any]) -> dict[str, Any]:
        """The first half of the video processor: the sampled frames as uint8 `(T, C, H, W)` clips."""
        sampling = {key: value for key, value in self.processor_kwargs.items()
                    if key not in _DEVICE_STAGE_OPTIONS | _TEXT_OPTIONS}
        return dict(self.processor.video_processor(
            videos, do_resize=False, do_normalize=False, return_tensors=None, **sampling
        ))

    def finish_videos(self, batch: dict[str, Any], device: str | torch.device) -> dict[str, Any]:
        """The second half for a `defer_video_resize` batch: its uint8 clips resized and normalised on `device`
        (the same operations as the processor's CPU path) into one `(B, T, C, H, W)` float tensor; a batch whose
        videos are already processed is returned as it is."""
        clips = batch.get("pixel_values_videos")
        if not isinstance(clips, list):
            return batch
        options = {key: value for key, value in self.processor_kwargs.items() if key in _DEVICE_STAGE_OPTIONS}
        pixels = self.processor.video_processor(clips, do_sample_frames=False, device=device, **options)
        return batch | {"pixel_values_videos": pixels["pixel_values_videos"]}


# The video processor's options that apply after frame sampling (run by `finish_videos` on the device).
_DEVICE_STAGE_OPTIONS = frozenset({"do_resize", "size", "do_normalize", "image_mean", "image_std"})
_TEXT_OPTIONS = frozenset({"padding", "truncation", "max_length"})  # the processor's tokenizer options


def _cell(row: Any, column: str, other: str | None) -> Any:
    """`row[column]`; a row that is not a mapping is the value itself when the collator reads one column only."""
    if not hasattr(row, "keys"):
        if other is None:
            return row
        raise ValueError(f"Dataset rows must be mappings with a {column!r} key and a {other!r} key, "
                         f"got {type(row).__name__}.")
    if column not in row:
        raise KeyError(f"Dataset row has no {column!r} column (it has {sorted(row)}). Name the caption and video "
                       f"columns with text_column/video_column; if {column!r} and {other!r} disappeared, Trainer's "
                       f"remove_unused_columns dropped them: use VideoCLIPTrainer or "
                       f"TrainingArguments(remove_unused_columns=False).")
    return row[column]


def row_text(row: Any, column: str = "text", other: str | None = None) -> str:
    """The caption of a dataset row (the first of a list of captions).

    Args:
        row: a mapping, or the caption itself when `other` is None.
        column: the caption column. Defaults to `"text"`.
        other: the video column read alongside (named in errors). Defaults to `None`: only texts are read.
    """
    text = _cell(row, column, other)
    if isinstance(text, (list, tuple)) and text and all(isinstance(t, str) for t in text):
        text = text[0]
    if not isinstance(text, str):
        raise TypeError(f"Column {column!r} must hold strings (or lists of strings), got {type(text).__name__}.")
    return text


def row_video(row: Any, column: str = "video", other: str | None = None) -> Any:
    """The video of a dataset row, in a form the video processor takes: arrays and tensors (nested lists become
    uint8 arrays; widened integer pixels are narrowed back to uint8), torchcodec decoders (`datasets.Video()`),
    ``{"path", "bytes"}`` dicts (`Video(decode=False)`), paths and URLs, lists of PIL frames.

    Args:
        row: a mapping, or the video itself when `other` is None.
        column: the video column. Defaults to `"video"`.
        other: the caption column read alongside (named in errors). Defaults to `None`: only videos are read.
    """
    video = _cell(row, column, other)
    if isinstance(video, (list, tuple)) and video and not is_frame_list(video):  # nested lists of numbers
        video = np.asarray(video, dtype=np.uint8)
    if video is None:
        raise TypeError(f"Column {column!r} holds None where a video should be.")
    is_array = isinstance(video, (np.ndarray, torch.Tensor))
    if is_array and (video.ndim != 4 or 3 not in (video.shape[1], video.shape[-1])):
        raise ValueError(f"Column {column!r} must hold (T, H, W, 3) arrays (frames, height, width, RGB) or (T, 3, H, "
                         f"W) ones, got shape {tuple(video.shape)}.")
    if isinstance(video, np.ndarray) and video.dtype != np.uint8 and np.issubdtype(video.dtype, np.integer):
        # `datasets`' numpy formatting can widen uint8 Array4D columns; the processor expects uint8 pixels.
        if video.size and (video.min() < 0 or video.max() > 255):
            raise ValueError(f"Column {column!r} holds integer pixels outside [0, 255].")
        video = video.astype(np.uint8)
    return video
