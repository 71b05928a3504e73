"""VideoCLIPVideoProcessor: equality with torchmultimodal's VideoTransform, input forms, errors."""


import numpy as np
import pytest
import torch
from tiny_videoclip import random_videos, write_mp4
from torchmultimodal.transforms.video_transform import VideoTransform

from modeling_videoclip import VideoCLIPVideoProcessor
from modeling_videoclip.video_processing_videoclip import nearest_frame_indices, read_video_frames


@pytest.mark.parametrize("size", [256, 224])
@pytest.mark.parametrize("frames", [32, 96, 20])
def test_matches_reference_video_transform(size, frames):
    videos = random_videos(2, frames=frames, size=size, seed=frames + size)
    reference = VideoTransform()(torch.from_numpy(np.stack(videos)))  # (B, C, T, H, W)
    ours = VideoCLIPVideoProcessor()(videos)["pixel_values_videos"]  # (B, T, C, H, W)
    assert ours.shape == (2, 32, 3, 224, 224)
    assert ours.dtype == torch.float32
    assert (ours.transpose(1, 2) - reference).abs().max().item() <= 1e-6


@pytest.mark.parametrize("total", [1, 5, 20, 31, 32, 33, 45, 96, 100, 1000])
def test_frame_indices_equal_nearest_interpolation(total):
    frame_ids = torch.arange(total, dtype=torch.float32).view(1, 1, total, 1, 1)
    expected = torch.nn.functional.interpolate(frame_ids, size=[32, 1, 1]).flatten().long()
    assert torch.equal(nearest_frame_indices(total, 32), expected)


def test_layouts_and_types_give_the_same_result():
    video = random_videos(1, frames=10, size=230)[0]
    processor = VideoCLIPVideoProcessor()
    expected = processor(video)["pixel_values_videos"]
    for variant in (
        torch.from_numpy(video),
        np.ascontiguousarray(video.transpose(0, 3, 1, 2)),  # (T, C, H, W)
        torch.from_numpy(video).permute(0, 3, 1, 2),
        [video],
        video.astype(np.int64),
    ):
        assert torch.equal(processor(variant)["pixel_values_videos"], expected)


def test_batch_of_different_lengths_and_sizes():
    videos = [random_videos(1, frames=t, size=s, seed=t)[0] for t, s in ((5, 256), (40, 224), (96, 300))]
    out = VideoCLIPVideoProcessor()(videos)["pixel_values_videos"]
    assert out.shape == (3, 32, 3, 224, 224)
    for i, video in enumerate(videos):
        assert torch.equal(out[i], VideoCLIPVideoProcessor()(video)["pixel_values_videos"][0])


def test_short_clip_repeats_frames():
    video = np.stack([np.full((224, 224, 3), i * 40, np.uint8) for i in range(4)])
    out = VideoCLIPVideoProcessor(do_normalize=False)(video)["pixel_values_videos"][0]
    assert [int(out[i, 0, 0, 0]) for i in range(0, 32, 8)] == [0, 40, 80, 120]
    assert torch.equal(out[0], out[7])


def test_video_file_is_decoded_with_pyav(tmp_path):
    path = write_mp4(tmp_path / "clip.mp4", random_videos(1, frames=12, size=64)[0])
    decoded = read_video_frames(path)
    assert decoded.shape == (12, 64, 64, 3) and decoded.dtype == np.uint8
    processor = VideoCLIPVideoProcessor()
    assert torch.equal(processor(path)["pixel_values_videos"], processor(decoded)["pixel_values_videos"])


def test_video_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        VideoCLIPVideoProcessor()(str(tmp_path / "missing.mp4"))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video at all" * 10)
    with pytest.raises(ValueError, match="Cannot decode|no video"):
        VideoCLIPVideoProcessor()(str(corrupt))


def test_save_and_load_round_trip(tmp_path):
    processor = VideoCLIPVideoProcessor(num_frames=16, size={"height": 240, "width": 240})
    processor.save_pretrained(tmp_path)
    loaded = VideoCLIPVideoProcessor.from_pretrained(tmp_path)
    video = random_videos(1, frames=20)[0]
    assert loaded.num_frames == 16 and dict(loaded.size) == {"height": 240, "width": 240}
    assert torch.equal(loaded(video)["pixel_values_videos"], processor(video)["pixel_values_videos"])


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_wrong_channel_count(channels):
    with pytest.raises(ValueError, match="RGB"):
        VideoCLIPVideoProcessor()(np.zeros((8, 32, 32, channels), np.uint8))


@pytest.mark.parametrize(
    "video, error, message",
    [
        (np.zeros((32, 32, 3), np.uint8), ValueError, "4 dimensions"),
        (np.zeros((0, 32, 32, 3), np.uint8), ValueError, "zero frames"),
        ([], ValueError, "No video"),
        (np.full((4, 32, 32, 3), 300.0, np.float32), ValueError, r"outside \[0, 255\]"),
        (np.full((4, 32, 32, 3), -1, np.int16), ValueError, r"outside \[0, 255\]"),
        (np.full((4, 32, 32, 3), np.nan, np.float32), ValueError, "NaN"),
        (np.zeros((4, 32, 32, 3), bool), TypeError, "uint8"),
        (42, TypeError, "arrays, tensors"),
    ],
)
def test_bad_videos(video, error, message):
    with pytest.raises(error, match=message):
        VideoCLIPVideoProcessor()(video)


def test_unknown_option_is_named():
    with pytest.raises(TypeError, match="num_frame"):
        VideoCLIPVideoProcessor()(random_videos(1, frames=4, size=32)[0], num_frame=8)


def test_float_input_is_not_modified():
    video = np.random.default_rng(0).uniform(0, 255, (4, 224, 224, 3)).astype(np.float32)
    before = video.copy()
    VideoCLIPVideoProcessor()(video)
    assert np.array_equal(video, before)


def test_works_under_inference_mode_and_no_grad():
    videos = random_videos(3, frames=12, size=240)
    expected = VideoCLIPVideoProcessor()(videos)["pixel_values_videos"]
    with torch.inference_mode():
        assert torch.equal(VideoCLIPVideoProcessor()(videos)["pixel_values_videos"], expected)
    with torch.no_grad():
        assert torch.equal(VideoCLIPVideoProcessor()(videos)["pixel_values_videos"], expected)
