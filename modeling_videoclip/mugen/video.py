"""Writing rendered clips to mp4 (PyAV) and GIF (Pillow)."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
from PIL import Image

__all__ = ["render_clip_to_mp4", "render_clip_to_gif", "CLIP_FPS"]

CLIP_FPS = 10  # MUGEN clips are 30 fps game frames sampled every 3rd frame


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be a uint8 array of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return frames


def render_clip_to_mp4(frames: np.ndarray, path: str | os.PathLike, fps: int = CLIP_FPS, crf: int = 18) -> Path:
    """Encode frames as an H.264 mp4 (yuv420p, playable everywhere) with PyAV.

    Args:
        frames: ``uint8`` array ``(T, H, W, 3)``, e.g. a ``video`` from :func:`~modeling_videoclip.mugen.load_mugen`.
        path: output file.
        fps: frames per second (10: MUGEN's 30 fps sampled every 3rd frame plays in real time).
        crf: x264 quality, lower is better (18, visually lossless).

    Returns:
        The path written.
    """
    frames = _check_frames(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def render_clip_to_gif(frames: np.ndarray, path: str | os.PathLike, fps: int = CLIP_FPS) -> Path:
    """Write frames as a looping GIF.

    Args:
        frames: ``uint8`` array ``(T, H, W, 3)``.
        path: output file.
        fps: frames per second (10, see :func:`render_clip_to_mp4`).

    Returns:
        The path written.
    """
    frames = _check_frames(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)
    return path
