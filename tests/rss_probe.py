"""Peak memory of processing one video in a fresh process: ``python rss_probe.py WARMUP_VIDEO VIDEO {sampled,all}``
prints the peak-RSS growth in MB (VmHWM after minus VmRSS before) of the video processor on VIDEO ("sampled": its
default 32 frames) or of decoding every frame ("all"), after one warm-up call on WARMUP_VIDEO."""

from __future__ import annotations

import sys
from pathlib import Path


def memory_mb(field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak since the last reset) of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def main(warmup: str, video: str, mode: str) -> None:
    from modeling_videoclip import VideoCLIPVideoProcessor
    from modeling_videoclip.video_processing_videoclip import read_video_frames

    processor = VideoCLIPVideoProcessor()
    processor(warmup)  # PyAV, the codec, the allocator, an output of the same size
    before = memory_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak, to the current RSS
    if mode == "sampled":
        out = processor(video, return_metadata=True)
        last = out["video_metadata"][0].frames_indices[-1]
    else:
        last = len(read_video_frames(video)) - 1
    print(f"{memory_mb('VmHWM') - before:.1f} {last}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
