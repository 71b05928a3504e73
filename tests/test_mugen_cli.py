"""`videoclip mugen-sample`, mp4/GIF writers, and publishing to a (local) Hub."""

import json
from pathlib import Path

import av
import numpy as np
import pytest
from hub_server import hub_env, run_hub_client
from PIL import Image

from modeling_videoclip.cli import main
from modeling_videoclip.mugen.video import render_clip_to_gif, render_clip_to_mp4

REPO_ROOT = Path(__file__).resolve().parents[1]


def _frames(t=6, h=48, w=64):
    """Smooth moving gradients (what video codecs are built for)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([(xx * 4 + 8 * k) % 256, yy * 5 % 256, (xx + yy + 10 * k) % 256], -1)
                     for k in range(t)]).astype(np.uint8)


def test_mp4_and_gif_writers(tmp_path):
    frames = _frames()
    mp4 = render_clip_to_mp4(frames, tmp_path / "clip.mp4", fps=10)
    with av.open(str(mp4)) as c:
        stream = c.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
        assert float(stream.average_rate) == 10
    assert len(decoded) == 6 and decoded[0].shape == (48, 64, 3)
    assert np.abs(decoded[3].astype(int) - frames[3]).mean() < 12  # lossy, but the same picture
    gif = render_clip_to_gif(frames, tmp_path / "clip.gif")
    with Image.open(gif) as im:
        assert im.n_frames == 6 and im.size == (64, 48) and im.info["duration"] == 100
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        render_clip_to_mp4(frames[..., 0], tmp_path / "bad.mp4")


def test_odd_sizes_are_padded_for_yuv420(tmp_path):
    mp4 = render_clip_to_mp4(_frames(h=33, w=45), tmp_path / "odd.mp4")
    with av.open(str(mp4)) as c:
        assert next(c.decode(video=0)).to_ndarray(format="rgb24").shape == (34, 46, 3)


def test_mugen_sample_with_preview(tmp_path, capsys):
    out = tmp_path / "sample"
    argv = ["mugen-sample", str(out), "--num-clips", "4", "--seed", "2", "--preview", "gif", "--resolution", "64"]
    assert main(argv) == 0
    assert (out / "coinrun_dataset_jsons" / "release" / "test.json").is_file()
    gifs = sorted((out / "preview").glob("*.gif"))
    release = json.loads((out / "coinrun_dataset_jsons/release/test.json").read_text())
    test_ids = [d["video"]["id"] for d in release["data"]]
    assert [g.stem for g in gifs] == sorted(test_ids)
    assert "wrote a MUGEN sample with 4 clips" in capsys.readouterr().out
    assert main(["mugen-sample", str(out), "--num-clips", "0"]) == 2


# The client runs in a subprocess (huggingface_hub reads HF_ENDPOINT at import). It imports the mugen
# subpackage without running modeling_videoclip/__init__ (which loads transformers and takes seconds).
PUSH = """
import sys, types
pkg = types.ModuleType("modeling_videoclip"); pkg.__path__ = [sys.argv[1] + "/modeling_videoclip"]
sys.modules["modeling_videoclip"] = pkg
from modeling_videoclip.mugen.hub import push_mugen_to_hub
print(push_mugen_to_hub(sys.argv[2], sys.argv[3], splits=("train", "test"), render_mp4=sys.argv[4] == "1",
                        resolution=32, sequence_length=4))
"""


def test_push_to_local_hub(local_hub, tmp_path):
    from modeling_videoclip.mugen import make_mugen_sample

    data = make_mugen_sample(tmp_path / "sample", num_clips=4, seed=0, with_audio=False)
    env = hub_env(local_hub)
    run_hub_client(PUSH, env, [str(REPO_ROOT), "me/mugen-sample", str(data), "1"])
    files = local_hub.list_files("me/mugen-sample", repo_type="dataset")
    # The Hub's video layout: <split>/<id>.mp4 beside <split>/metadata.jsonl. train: 2 clips + the 60-frame one
    # (long enough for 4 frames every 3rd); test: 1 clip.
    assert {"README.md", "train/metadata.jsonl", "test/metadata.jsonl"} <= set(files)
    mp4s = [f for f in files if f.endswith(".mp4")]
    assert sorted(f.split("/")[0] for f in mp4s) == ["test", "train", "train", "train"]
    commits = local_hub.commits("me/mugen-sample", repo_type="dataset")
    assert len(commits) == 2  # the repo's initial commit + one upload
    card = local_hub.read_file("me/mugen-sample", "README.md", repo_type="dataset").decode()
    assert "path: test/*" in card and "cc-by-nc" in card
    rows = local_hub.read_file("me/mugen-sample", "test/metadata.jsonl", repo_type="dataset").decode().splitlines()
    row = json.loads(rows[0])
    assert row["json_file"].startswith("game_jsons/") and f"test/{row['file_name']}" in mp4s


def test_hub_video_layout_loads_as_a_video_dataset(tmp_path):
    """What `mugen-push --render-mp4` uploads is a dataset whose `video` column is `Video()`: what the Hub's viewer
    plays and what `videoclip evaluate --data` reads."""
    import datasets

    from modeling_videoclip.data import load_split
    from modeling_videoclip.mugen import make_mugen_sample
    from modeling_videoclip.mugen.hub import write_mugen_hub_folder

    data = make_mugen_sample(tmp_path / "sample", num_clips=4, seed=0, with_audio=False)
    folder = write_mugen_hub_folder(tmp_path / "hub", data, splits=("test",), render_mp4=True, resolution=32,
                                    sequence_length=4)
    dataset = load_split(str(folder), "test")
    assert isinstance(dataset.features["video"], datasets.Video)
    assert dataset[0]["video"].metadata.num_frames == 4 and dataset[0]["text"]
