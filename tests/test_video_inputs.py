"""Videos the way the Hugging Face ecosystem hands them over: files, URLs, torchcodec decoders (`datasets.Video()`),
video dicts and PIL frames; fps sampling and metadata; bounded decoding of long files; `Video()` datasets through the
collator, `embed_dataset` and the CLI; moment search; and the errors that name the file."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image
from tiny_videoclip import CAPTIONS, TINY_NUM_FRAMES, tiny_model, tiny_processor, write_mp4
from torchcodec.decoders import VideoDecoder

from modeling_videoclip import cli
from modeling_videoclip.data import VideoCLIPDataCollator, load_split
from modeling_videoclip.retrieval import embed_dataset, embed_videos, search_moments
from modeling_videoclip.retrieval.moments import moment_windows
from modeling_videoclip.video_processing_videoclip import VideoDecodeError, read_video_frames

FPS = 20


def smooth_frames(count: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """Frames whose content changes every frame (so decode order matters) and that encode small and fast."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 200, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, axis=0).repeat(8, axis=1)
    return np.stack([np.roll(blocks, 8 * step, axis=1) + np.uint8(step % 56) for step in range(count)])


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory) -> Path:
    """A `videofolder`: four mp4 clips of different lengths and a metadata.csv with a caption each."""
    folder = tmp_path_factory.mktemp("videofolder")
    for i in range(4):
        write_mp4(folder / f"clip{i}.mp4", smooth_frames(24 + 6 * i, seed=i), fps=FPS)
    rows = "".join(f'clip{i}.mp4,"{caption}"\n' for i, caption in enumerate(CAPTIONS))
    (folder / "metadata.csv").write_text("file_name,caption\n" + rows)
    return folder


@pytest.fixture(scope="module")
def processor():
    return tiny_processor()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def pixels(processor, videos, **kwargs) -> torch.Tensor:
    return processor.video_processor(videos, **kwargs)["pixel_values_videos"]


@pytest.fixture(scope="module")
def http_root(video_dir):
    """`video_dir` served on 127.0.0.1 (a free port)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(video_dir))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_every_input_form_gives_the_pixels_of_the_decoded_array(video_dir, http_root, processor):
    path = video_dir / "clip2.mp4"
    frames = read_video_frames(path)
    assert frames.shape == (36, 48, 64, 3) and frames.dtype == np.uint8
    expected = pixels(processor, frames)
    forms = {
        "str path": str(path),
        "Path": path,
        "file URL": path.as_uri(),
        "http URL": f"{http_root}/clip2.mp4",
        "torchcodec decoder": VideoDecoder(str(path)),
        "Video(decode=False) bytes": {"path": "clip2.mp4", "bytes": path.read_bytes()},
        "Video(decode=False) path": {"path": str(path), "bytes": None},
        "array dict": {"array": frames, "video_metadata": {"fps": FPS}},
        "PIL frames": [Image.fromarray(frame) for frame in frames],
        "array frames": list(frames),
        "channels-first tensor": torch.from_numpy(frames).permute(0, 3, 1, 2),
    }
    for name, video in forms.items():
        assert torch.equal(pixels(processor, video), expected), name
    batch = pixels(processor, [forms["torchcodec decoder"], forms["http URL"], frames])
    assert batch.shape[0] == 3 and all(torch.equal(clip, expected[0]) for clip in batch)


def test_a_decoder_gives_exactly_the_pixels_of_its_own_frames(video_dir, processor):
    decoder = VideoDecoder(str(video_dir / "clip3.mp4"))
    own_frames = decoder[:]  # (T, C, H, W) uint8, the decoder's own decoding
    assert torch.equal(pixels(processor, decoder), pixels(processor, own_frames))


def test_fps_sampling_metadata_and_timestamps(video_dir, processor):
    path = str(video_dir / "clip2.mp4")  # 36 frames at 20 fps: 1.8 s
    out = processor.video_processor(path, fps=5, return_tensors=None, return_metadata=True)
    metadata = out["video_metadata"][0]
    assert int(36 / 20 * 5) == 9 == out["pixel_values_videos"][0].shape[0]
    assert metadata.frames_indices == [0, 4, 8, 12, 16, 20, 24, 28, 32]
    assert metadata.timestamps == pytest.approx([i / 20 for i in metadata.frames_indices])
    assert (metadata.total_num_frames, metadata.fps, metadata.width, metadata.height) == (36, 20.0, 64, 48)
    # An array samples the same once it carries its frame rate; exclusive options and a missing rate are errors.
    frames = read_video_frames(path)
    as_array = processor.video_processor(frames, fps=5, video_metadata={"fps": FPS}, return_tensors=None)
    assert torch.equal(as_array["pixel_values_videos"][0], out["pixel_values_videos"][0])
    with pytest.raises(ValueError, match="mutually exclusive"):
        processor.video_processor(path, fps=5, num_frames=8)
    with pytest.raises(ValueError, match="frame rate"):
        processor.video_processor(frames, fps=5)
    default = processor.video_processor(path, return_metadata=True)["video_metadata"][0]
    assert len(default.frames_indices) == TINY_NUM_FRAMES
    everything = processor.video_processor(path, do_sample_frames=False, return_metadata=True)
    assert everything["pixel_values_videos"].shape[1] == 36 and everything["video_metadata"][0].frames_indices == list(
        range(36)
    )


def test_a_long_file_costs_memory_for_the_sampled_frames_only(tmp_path):
    """900 frames of 320x240 decode to 207 MB; sampling 32 of them must not hold them all (peak RSS of a fresh
    process each, `rss_probe.py`; decoding every frame is the control that shows the measure sees the frames)."""
    long_path = write_mp4(tmp_path / "long.mp4", smooth_frames(900, height=240, width=320), fps=30)
    short_path = write_mp4(tmp_path / "short.mp4", smooth_frames(40, height=240, width=320), fps=30)

    def peak_growth(mode: str) -> tuple[float, int]:
        probe = [sys.executable, str(Path(__file__).with_name("rss_probe.py")), short_path, long_path, mode]
        result = subprocess.run(probe, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        growth, last = result.stdout.split()
        return float(growth), int(last)

    sampled, last = peak_growth("sampled")
    assert last == 871  # floor(31 * 900 / 32): decoding runs to the end of the file
    # 32 frames and their 19 MB float output, not the 207 MB of frames (the warm-up's output was freed)
    assert sampled < 80, f"peak RSS grew {sampled:.0f} MB for 32 sampled frames of a 207 MB video"
    everything, last = peak_growth("all")
    assert last == 899 and everything > sampled + 150


def test_video_dataset_goes_through_the_collator_and_embed_dataset(video_dir, processor, model):
    dataset = load_split(str(video_dir), "train")  # the videofolder's only split, named "train" by datasets
    assert isinstance(dataset.features["video"], datasets.Video) and dataset.column_names[:2] == ["video", "text"]
    assert isinstance(dataset[0]["video"], VideoDecoder) and dataset[0]["text"] == CAPTIONS[0]
    arrays = [read_video_frames(video_dir / f"clip{i}.mp4") for i in range(4)]
    batch = VideoCLIPDataCollator(processor)([dataset[i] for i in range(4)])
    assert torch.equal(batch["pixel_values_videos"], pixels(processor, arrays))
    undecoded = dataset.cast_column("video", datasets.Video(decode=False))
    assert torch.equal(VideoCLIPDataCollator(processor)(list(undecoded))["pixel_values_videos"],
                       batch["pixel_values_videos"])
    text_embeds, video_embeds = embed_dataset(model, processor, dataset, batch_size=2, progress=False)
    expected = embed_videos(model, processor, arrays, batch_size=4, progress=False)
    assert torch.allclose(video_embeds, expected, atol=1e-5) and text_embeds.shape == (4, 256)


def test_evaluate_and_train_run_on_a_video_folder(video_dir, processor, model, tmp_path, capsys):
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    metrics = tmp_path / "metrics.json"
    args = ["evaluate", "--model", str(model_dir), "--data", str(video_dir), "--split", "train", "--batch-size", "2",
            "--device", "cpu", "--json", str(metrics)]
    assert cli.main(args) == 0
    assert json.loads(metrics.read_text())["metrics"]["num_pairs"] == 4
    assert "train/Recall@1 (text query, video retrieval)" in capsys.readouterr().out
    assert cli.main([*args[:-2], "--text-column", "missing"]) == 2
    assert "--text-column 'missing' is not a column" in capsys.readouterr().err
    status = cli.main([
        "train", "--data", str(video_dir), "--init", str(model_dir), "--eval-split", "", "--output-dir",
        str(tmp_path / "run"), "--per-device-train-batch-size", "2", "--max-steps", "1", "--save-strategy", "no",
        "--use-cpu", "--disable-tqdm", "true", "--report-to", "none", "--dataloader-num-workers", "0",
    ])
    assert status == 0 and (tmp_path / "run" / "model.safetensors").is_file()


def test_moment_windows_cover_the_video_in_time():
    windows = moment_windows(total_frames=90, fps=30, num_frames=8, window_seconds=1.0, stride_seconds=0.5)
    assert [(w.start, w.end) for w in windows] == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0), (1.5, 2.5), (2.0, 3.0)]
    assert windows[1].frames == (15, 18, 22, 26, 30, 33, 37, 41)  # frames 15..44 (0.5 s to 1.5 s), 8 of them
    tail = moment_windows(total_frames=70, fps=20, num_frames=4, window_seconds=1.0, stride_seconds=1.0)
    assert [(w.start, w.end) for w in tail] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (2.5, 3.5)]  # the last ends it
    short = moment_windows(total_frames=10, fps=20, num_frames=4, window_seconds=3.2, stride_seconds=1.6)
    assert [(w.start, w.end, w.frames) for w in short] == [(0.0, 0.5, (0, 2, 5, 7))]


def test_moment_scores_are_the_scores_of_their_frames(video_dir, processor, model):
    paths = [str(video_dir / f"clip{i}.mp4") for i in (0, 1)]  # 1.2 s and 1.5 s: 2 + 3 windows of 0.6 s
    queries = CAPTIONS[:2]
    results = search_moments(model, processor, paths, queries, window_seconds=0.6, stride_seconds=0.6, top_k=3,
                             batch_size=2)
    assert len(results) == 2 and all(len(hits) == 3 for hits in results)
    with torch.inference_mode():
        text = model.get_text_features(**processor(text=queries)).pooler_output
    text = torch.nn.functional.normalize(text, dim=-1)
    rescored: dict[tuple, torch.Tensor] = {}
    for query, hits in enumerate(results):
        assert [hit["score"] for hit in hits] == sorted((hit["score"] for hit in hits), reverse=True)
        for hit in hits:
            assert hit["start"] <= hit["frames"][0] / FPS and hit["frames"][-1] / FPS < hit["end"]
            key = (hit["video"], hit["start"])
            if key not in rescored:  # the window's frames, processed on their own
                frames = read_video_frames(hit["video"])[hit["frames"]]
                with torch.inference_mode():
                    video = model.get_video_features(pixel_values_videos=pixels(processor, frames)).pooler_output
                rescored[key] = torch.nn.functional.normalize(video, dim=-1)[0]
            assert hit["score"] == pytest.approx(float(rescored[key] @ text[query]), abs=1e-5)


def test_retrieve_moments_cli(video_dir, processor, model, tmp_path, capsys):
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    out, record = tmp_path / "out", tmp_path / "moments.json"
    status = cli.main(["retrieve", "--model", str(model_dir), "--moments", "--video-dir", str(video_dir), "--query",
                       CAPTIONS[2], "-k", "3", "--window", "2", "--json", str(record), "--out", str(out)])
    assert status == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("clip")]
    hits = json.loads(record.read_text())["moments"]
    assert len(lines) == 3 == len(hits)
    assert lines[0] == f"{hits[0]['file']}  {hits[0]['start']:.2f}-{hits[0]['end']:.2f}  {hits[0]['score']:.3f}"
    assert Image.open(out / "moments.png").size[0] > 600
    assert cli.main(["retrieve", "--model", str(model_dir), "--moments", "--query", "x"]) == 2
    assert "--video-dir" in capsys.readouterr().err


def _no_frames_video(path: Path) -> Path:
    """An AVI whose video stream holds no frame (the AVI muxer writes its header without any packet)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


@pytest.mark.parametrize("case", ["missing", "corrupt", "no frames", "folder", "scheme", "http 404", "dict"])
def test_unreadable_videos_are_named(case, tmp_path, http_root, processor):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video" * 50)
    video, error, message = {
        "missing": (str(tmp_path / "missing.mp4"), FileNotFoundError, "missing.mp4"),
        "corrupt": (str(corrupt), VideoDecodeError, "corrupt.mp4"),
        "no frames": (str(_no_frames_video(tmp_path / "empty.avi")), VideoDecodeError, "empty.avi.*no decodable"),
        "folder": (str(tmp_path), VideoDecodeError, "is a folder"),
        "scheme": ("ftp://example.org/clip.mp4", VideoDecodeError, "Unsupported URL scheme 'ftp'"),
        "http 404": (f"{http_root}/nothing.mp4", VideoDecodeError, "Cannot download video .*nothing.mp4"),
        "dict": ({"name": "clip.mp4"}, TypeError, "'array'.*'bytes' or 'path'"),
    }[case]
    with pytest.raises(error, match=message):
        processor.video_processor(video)
