"""Moment search: where inside (long) videos a text happens. A clip-sized window slides over each video; every window
is embedded from the frames it would give as a clip of its own, decoded once in a stream and embedded in batches by
`embed_videos`."""

from __future__ import annotations

import collections
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..video_processing_videoclip import (
    FrameCountMismatch,
    VideoSource,
    as_video_list,
    nearest_frame_indices,
    open_video,
)
from .embedding import embed_texts, embed_videos

# MUGEN's clip: 32 frames taken every 3rd frame of its 30 fps game videos (torchmultimodal's MUGEN data module),
# so a clip spans 32 * 3 / 30 = 3.2 seconds; `search_moments` slides a window of that length by default.
MUGEN_GAME_FPS = 30
MUGEN_FRAME_STRIDE = 3
_WINDOWS_PER_BATCH = 8  # windows per forward pass: the tutorial's batch size, as `embed_videos`

__all__ = ["Moment", "MomentWindow", "moment_windows", "search_moments"]


@dataclass(frozen=True)
class MomentWindow:
    """One window of one video: `start`/`end` in seconds and the decode-order indices of the frames its clip uses."""

    video_index: int
    start: float
    end: float
    frames: tuple[int, ...]


@dataclass(frozen=True)
class Moment:
    """A hit: `video` (the path or URL given, else its index), the window, and `score`, the cosine similarity of the
    normalised text and window embeddings. `to_dict()` gives the plain dict `search_moments` returns."""

    video: str | int
    window: MomentWindow
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video, "video_index": self.window.video_index, "start": self.window.start,
                "end": self.window.end, "score": self.score, "frames": list(self.window.frames)}


def moment_windows(
    total_frames: int, fps: float, num_frames: int, window_seconds: float, stride_seconds: float, video_index: int = 0,
) -> list[MomentWindow]:
    """The windows over a video of `total_frames` frames at `fps`: starts every `stride_seconds`, plus one ending at
    the video's end when the stride leaves a tail (a video shorter than a window is one window); each window's frames
    are those whose timestamps ``i / fps`` fall in ``[start, end)``, resampled to `num_frames` as the processor
    samples a clip (`nearest_frame_indices`)."""
    if not (window_seconds > 0 and stride_seconds > 0 and fps > 0):
        raise ValueError(f"window_seconds, stride_seconds and fps must be positive, got {window_seconds}, "
                         f"{stride_seconds}, {fps}")
    duration = total_frames / fps
    last_start = max(duration - window_seconds, 0.0)
    starts = [step * stride_seconds for step in range(int(last_start / stride_seconds + 1e-9) + 1)]
    if starts[-1] < last_start - 1e-9:
        starts.append(last_start)
    windows = []
    for start in starts:
        end = min(start + window_seconds, duration)
        first = min(math.ceil(start * fps - 1e-6), total_frames - 1)
        stop = max(min(math.ceil(end * fps - 1e-6), total_frames), first + 1)
        picked = nearest_frame_indices(stop - first, num_frames) + first
        windows.append(MomentWindow(video_index, round(start, 6), round(end, 6), tuple(picked.tolist())))
    return windows


def search_moments(
    model: torch.nn.Module, processor: Any, videos: Any, queries: str | Sequence[str], *,
    window_seconds: float | None = None, stride_seconds: float | None = None, top_k: int = 5,
    batch_size: int = _WINDOWS_PER_BATCH, device: str | torch.device | None = None,
) -> list[list[dict[str, Any]]]:
    """The `top_k` moments of `videos` for each text query, best first.

    Args:
        model / processor: a VideoCLIP model and its processor.
        videos: one video or a list, in any form the video processor takes (paths, URLs, torchcodec decoders, video
            dicts; arrays need their frame rate: ``{"array": frames, "video_metadata": {"fps": 30}}``).
        queries: one text or a list of texts.
        window_seconds: window length. Defaults to the model's clip at MUGEN's rate: ``num_frames * 3 / 30`` seconds
            (3.2 s for 32 frames).
        stride_seconds: step between window starts. Defaults to half a window.
        top_k: hits per query, over all windows of all videos. Defaults to 5.
        batch_size: windows per forward pass. Defaults to 8, the tutorial's batch size; memory holds this many
            processed windows plus the decoded frames of the windows in progress, never a whole file.
        device: where to run. Defaults to the model's device.

    Returns:
        Per query, a list of dicts: `video` (path or URL as given, else the index), `video_index`, `start` and `end`
        (seconds), `score` (cosine of the normalised embeddings) and `frames` (decode-order indices of the frames the
        window's embedding used; processing exactly those frames on their own gives the same score).
    """
    queries = [queries] if isinstance(queries, str) else list(queries)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    num_frames = processor.video_processor.num_frames
    window_seconds = window_seconds or num_frames * MUGEN_FRAME_STRIDE / MUGEN_GAME_FPS
    stride_seconds = stride_seconds or window_seconds / 2
    text_embeds = embed_texts(model, processor, queries, device=device, progress=False)
    videos = as_video_list(videos)
    windows: list[MomentWindow] = []

    def window_clips() -> Iterator[torch.Tensor]:  # records each window as its clip goes to the embedding loop
        for index, video in enumerate(videos):
            source = open_video(video, index=index)
            for window, frames in _window_clips(source, index, num_frames, window_seconds, stride_seconds):
                windows.append(window)
                yield frames

    video_embeds = embed_videos(model, processor, window_clips(), batch_size=batch_size, device=device, progress=False)
    scores = text_embeds @ video_embeds.T
    names = [os.fspath(video) if isinstance(video, (str, os.PathLike)) else index for index, video in
             enumerate(videos)]
    results = []
    for query_scores in scores:
        top = torch.topk(query_scores, min(top_k, len(windows)))
        results.append([
            Moment(names[windows[i].video_index], windows[i], float(score)).to_dict()
            for score, i in zip(top.values.tolist(), top.indices.tolist())
        ])
    return results


def _window_clips(
    source: VideoSource, index: int, num_frames: int, window_seconds: float, stride_seconds: float,
) -> Iterator[tuple[MomentWindow, torch.Tensor]]:
    """`(window, (T, C, H, W) frames)` of each window, decoding the video once; a file that declared a wrong frame
    count is planned again from the count found."""
    metadata = source.metadata
    if not metadata.fps:
        raise ValueError(f"{source.name} carries no frame rate, which moment search needs to place windows in time; "
                         f"pass {{'array': frames, 'video_metadata': {{'fps': ...}}}}.")
    done: set[float] = set()
    while True:
        windows = moment_windows(metadata.total_num_frames, metadata.fps, num_frames, window_seconds, stride_seconds,
                                 index)
        try:
            for window, frames in _stream_windows(source, [w for w in windows if w.start not in done]):
                done.add(window.start)
                yield window, frames
            return
        except FrameCountMismatch as short:  # rare: plan again from the true count, keep the windows already given
            if short.count == 0 or short.count >= metadata.total_num_frames:
                raise ValueError(f"{source.name} holds no decodable frame") from None
            metadata.total_num_frames = short.count


def _stream_windows(source: VideoSource, windows: list[MomentWindow]) -> Iterator[tuple[MomentWindow, torch.Tensor]]:
    """Each window's frames as soon as its last frame is decoded; a frame is dropped once no later window uses it.
    `moment_windows` gives windows in order of start with ascending frames, so the first pending window holds the
    oldest frame still needed."""
    needed = sorted({frame for window in windows for frame in window.frames})
    buffer: dict[int, torch.Tensor] = {}
    pending = collections.deque(sorted(windows, key=lambda window: window.frames[-1]))
    for frame_index, frame in source.iter_frames_at(needed):
        buffer[frame_index] = frame
        while pending and pending[0].frames[-1] <= frame_index:
            window = pending.popleft()
            yield window, torch.stack([buffer[i] for i in window.frames])
            oldest = pending[0].frames[0] if pending else frame_index + 1
            for stale in [i for i in buffer if i < oldest]:
                del buffer[stale]
