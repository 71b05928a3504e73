"""Clip audio: decode with PyAV, resample to 22050 Hz stereo float32, fixed length (MUGEN's audio settings)."""

from __future__ import annotations

import os

import av
import numpy as np

__all__ = ["AUDIO_SAMPLE_RATE", "AUDIO_SAMPLE_LENGTH", "load_audio"]

AUDIO_SAMPLE_RATE = 22050  # MUGEN's audio VQ-VAE setting
AUDIO_SAMPLE_LENGTH = int(AUDIO_SAMPLE_RATE * 3.2)  # 70560: one 3.2 s clip


def load_audio(path: str | os.PathLike, sample_rate: int = AUDIO_SAMPLE_RATE,
               num_samples: int = AUDIO_SAMPLE_LENGTH) -> np.ndarray:
    """Read the first audio stream of a file as a stereo ``float32`` array ``(2, num_samples)`` at ``sample_rate``.

    Args:
        path: an audio file PyAV can decode (MUGEN ships wavs).
        sample_rate: output rate (22050, MUGEN's).
        num_samples: output length (70560 = 3.2 s at 22050 Hz, MUGEN's); shorter audio is zero-padded at the end.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file has no audio stream or cannot be decoded.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MUGEN audio file {path} not found (check data_folder, or pass with_audio=False)")
    out = np.zeros((2, num_samples), np.float32)
    filled = 0
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise ValueError(f"{path} has no audio stream")
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=sample_rate)
            frames = (resampler.resample(f) for f in container.decode(audio=0))
            for batch in [*frames, resampler.resample(None)]:  # None flushes the resampler
                for frame in batch:
                    chunk = frame.to_ndarray()
                    take = min(chunk.shape[1], num_samples - filled)
                    out[:, filled:filled + take] = chunk[:, :take]
                    filled += take
                    if filled >= num_samples:
                        return out
    except av.error.FFmpegError as e:
        raise ValueError(f"cannot decode audio file {path}: {e}") from None
    return out
