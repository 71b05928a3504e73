"""The embedding loop at scale: `videoclip evaluate` over 2 processes (torchrun, gloo) reports exactly the
one-process metrics and embeddings, and the device-side preprocessing path (uint8 clips from the workers, resize
and normalisation where the model runs) gives the CPU path's numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from tiny_videoclip import CAPTIONS, TINY_NUM_FRAMES, random_videos, save_tiny, tiny_model, tiny_processor

from modeling_videoclip import cli
from modeling_videoclip.data.collator import VideoCLIPDataCollator
from modeling_videoclip.mugen import make_mugen_sample
from modeling_videoclip.retrieval import embed_dataset
from modeling_videoclip.retrieval.embedding import shard_bounds

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> str:
    return save_tiny(tmp_path_factory.mktemp("tiny-videoclip"))


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("mugen-sample")
    make_mugen_sample(folder, num_clips=12, seed=0, with_audio=False)  # test split: 3 clips with manual captions
    return str(folder)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 7])
def test_shards_cover_every_item_once_in_order(world_size):
    for total in (0, 1, 3, 10, 11):
        blocks = [shard_bounds(total, rank, world_size) for rank in range(world_size)]
        items = [i for start, stop in blocks for i in range(start, stop)]
        assert items == list(range(total))
        assert max(stop - start for start, stop in blocks) - min(stop - start for start, stop in blocks) <= 1


def test_two_process_evaluate_reports_the_one_process_metrics(tiny_dir, sample_dir, tmp_path, monkeypatch):
    """3 clips over 2 ranks (2 + 1: uneven); rank 0 alone prints and writes; metrics and embeddings identical."""
    monkeypatch.setenv("VIDEOCLIP_CACHE", str(tmp_path / "cache"))
    common = ["evaluate", "--model", tiny_dir, "--data", sample_dir, "--split", "test", "--batch-size", "2",
              "--device", "cpu"]
    single, multi = tmp_path / "single", tmp_path / "multi"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank below: the same kernels, so identical embeddings (the shards' batches,
    try:  # [0, 1] and [2], are the one process's)
        assert cli.main([*common, "--json", str(single / "m.json"), "--save-embeddings", str(single / "e.npz")]) == 0
    finally:
        torch.set_num_threads(threads)

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "modeling_videoclip", *common, "--json", str(multi / "m.json"), "--save-embeddings",
         str(multi / "e.npz")],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("Test metric") == 1 and result.stdout.count("Wrote ") == 2, result.stdout

    one, two = (json.loads((folder / "m.json").read_text()) for folder in (single, multi))
    assert two["metrics"] == one["metrics"] and one["metrics"]["num_pairs"] == 3
    with np.load(single / "e.npz") as first, np.load(multi / "e.npz") as second:
        assert first["ids"].tolist() == second["ids"].tolist()
        assert first["texts"].tolist() == second["texts"].tolist()
        for key in ("text_embeds", "video_embeds"):
            assert second[key].shape == first[key].shape == (3, 256)
            np.testing.assert_array_equal(second[key], first[key])


def test_device_side_preprocessing_gives_the_cpu_numbers():
    """preprocess_on_device=True (the CUDA default) run on the CPU: workers yield uint8 sampled clips, the loop
    resizes and normalises them; embeddings bit-identical to the collator's full CPU preprocessing."""
    model, processor = tiny_model(), tiny_processor()
    videos = random_videos(2, frames=20, size=240, seed=3)  # 240 -> 224: the resize runs in the second stage
    rows = [{"text": text, "video": video} for text, video in zip(CAPTIONS, videos)]
    collate = VideoCLIPDataCollator(processor, defer_video_resize=True, return_loss=False)
    deferred = collate(rows)
    clips = deferred["pixel_values_videos"]
    assert [(clip.dtype, tuple(clip.shape)) for clip in clips] == [(torch.uint8, (TINY_NUM_FRAMES, 3, 240, 240))] * 2
    full = VideoCLIPDataCollator(processor, return_loss=False)(rows)
    finished = collate.finish_videos(deferred, "cpu")
    assert torch.equal(finished["pixel_values_videos"], full["pixel_values_videos"])
    assert torch.equal(finished["input_ids"], full["input_ids"])

    on_device = embed_dataset(model, processor, rows[:1], progress=False, preprocess_on_device=True)
    in_workers = embed_dataset(model, processor, rows[:1], progress=False, preprocess_on_device=False)
    for a, b in zip(on_device, in_workers):
        assert torch.equal(a, b)
