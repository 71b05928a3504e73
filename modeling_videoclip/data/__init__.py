"""Data for VideoCLIP: loading splits (MUGEN, the synthetic sample, `datasets`) and the one collator."""

from .collator import VideoCLIPDataCollator, row_text, row_video
from .splits import (
    SAMPLE_NUM_CLIPS,
    SAMPLE_SEED,
    captions,
    describe_split,
    ensure_mugen_sample,
    epoch_setter,
    load_split,
    numpy_video_format,
)

__all__ = [
    "SAMPLE_NUM_CLIPS", "SAMPLE_SEED", "VideoCLIPDataCollator", "captions", "describe_split", "ensure_mugen_sample",
    "epoch_setter", "load_split", "numpy_video_format", "row_text", "row_video"
]
