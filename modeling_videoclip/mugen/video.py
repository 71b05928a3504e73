"""Writing rendered clips to mp4 (PyAV) and GIF (Pillow)."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
from PIL import Image

__all__ = ["render_clip_to_mp4", "render_clip_to_gif", "CLIP_FPS"]

CLIP_FPS = 10  # MUGEN clips are 30 fps game frames sampled every 3rd frame


def _prepare(frames: np.ndarray, path: str | os.PathLike) -> tuple[np.ndarray, Path]:
    """The checked frames and the output path, its folder created."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be a uint8 array of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return frames, path


def render_clip_to_mp4(frames: np.ndarray, path: str | os.PathLike, fps: int = CLIP_FPS, crf: int = 18) -> Path:
    """Encode frames as an H.264 mp4 (yuv420p, playable everywhere) with PyAV; returns the path written.

    Args:
        frames: ``uint8`` array ``(T, H, W, 3)``, e.g. a ``video`` from :func:`~modeling_videoclip.mugen.load_mugen`.
        path: output file.
        fps: frames per second (10: MUGEN's 30 fps sampled every 3rd frame plays in real time).
        crf: x264 quality, lower is better (18, visually lossless).
    """
    frames, path = _prepare(frames, path)
    h, w = frames.shape[1:3]
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = w + (w % 2), h + (h % 2)  # yuv420p needs even sizes
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf)}
        for frame in frames:
            if w % 2 or h % 2:
                frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())  # flush
    return path


def render_clip_to_gif(frames: np.ndarray, path: str | os.PathLike, fps: int = CLIP_FPS) -> Path:
    """Write frames (``uint8`` ``(T, H, W, 3)``) to ``path`` as a looping GIF at ``fps`` (10, as
    :func:`render_clip_to_mp4`); returns the path written."""
    frames, path = _prepare(frames, path)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)
    return path
