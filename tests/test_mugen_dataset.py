"""load_mugen: filtering, caption choice, reproducible random starts, streaming / num_proc / DataLoader, bad data."""

import json
import shutil

import numpy as np
import pytest

from modeling_videoclip.mugen import MissingAssetError, MugenFormatError, make_mugen_sample
from modeling_videoclip.mugen.dataset import MugenBuilder, MugenTransform, load_mugen, mugen_collate

SMALL = dict(resolution=32, sequence_length=4, sample_every_n_frames=3)  # tiny frames: fast tests


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_mugen_sample(tmp_path_factory.mktemp("mugen") / "sample", num_clips=8, seed=1)


def _release(root, split):
    return json.loads((root / "coinrun_dataset_jsons" / "release" / f"{split}.json").read_text())


def _copy(sample, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(sample, dst)
    return dst


def _meta(ds):
    """Stored columns only (no rendering)."""
    return ds.with_transform(lambda b: b)[:]


def test_rows_video_and_report(sample):
    ds = load_mugen(sample, "train", annotation="all")
    raw = _release(sample, "train")["data"]
    assert ds.mugen_report.total == len(raw) == 5
    assert ds.mugen_report.kept == 4 and ds.mugen_report.dropped == {"too short (num_frames <= 93)": 1}
    assert "kept 4 of 5" in ds.info.description
    row = ds[0]
    assert row["video"].shape == (32, 256, 256, 3) and row["video"].dtype == np.uint8
    assert row["id"] == raw[0]["video"]["id"]
    assert row["text"] in [a["text"] for a in raw[0]["annotations"]]
    assert [a["text"] for a in row["annotations"]] == [a["text"] for a in raw[0]["annotations"]]
    assert json.loads(row["game_events"]) == raw[0]["video"]["game_events"]
    assert row["start"] == 0


def test_caption_choice_follows_the_reference(sample):
    raw = {d["video"]["id"]: d["annotations"] for s in ("train", "test") for d in _release(sample, s)["data"]}
    auto = _meta(load_mugen(sample, "test", annotation="auto", with_video=False))
    assert all(t == raw[i][0]["text"] for i, t in zip(auto["id"], auto["text"]))
    manual = load_mugen(sample, "test", annotation="manual", with_video=False)
    m = _meta(manual)
    with_manual = [i for i, a in raw.items() if len(a) > 1 and i in set(auto["id"])]
    assert sorted(m["id"]) == sorted(with_manual)  # clips without manual captions are dropped...
    dropped = manual.mugen_report.dropped.get("no manual annotation", 0)
    assert dropped == len(auto["id"]) - len(with_manual)  # ...and counted
    assert all(t == raw[i][1]["text"] for i, t in zip(m["id"], m["text"]))  # the first manual one outside train
    train = load_mugen(sample, "train", annotation="manual", with_video=False)
    seen = set()
    for epoch in range(12):
        train.mugen_transform.set_epoch(epoch)
        for row in train:
            assert row["annotations"][row["caption_index"]]["type"] == "manual"
            seen.add((row["id"], row["text"]))
    assert len(seen) > len(train)  # random manual captions in train vary across epochs


def test_random_start_is_reproducible_per_seed_index_epoch(sample):
    kw = dict(annotation="auto", start="random", with_video=False, **SMALL)
    a = load_mugen(sample, "train", seed=5, **kw)
    b = load_mugen(sample, "train", seed=5, **kw)
    c = load_mugen(sample, "train", seed=6, **kw)
    starts = lambda ds: [r["start"] for r in ds]  # noqa: E731
    assert starts(a) == starts(b)
    assert starts(a) != starts(c)
    need = (SMALL["sequence_length"] - 1) * SMALL["sample_every_n_frames"]
    assert all(0 <= s < 96 - need for s in starts(a))
    a.mugen_transform.set_epoch(1)
    b.mugen_transform.set_epoch(1)
    assert starts(a) == starts(b) != starts(c)
    fixed = load_mugen(sample, "train", annotation="auto", start="fixed", with_video=False, **SMALL)
    assert set(starts(fixed)) == {0}


def test_video_matches_the_frames_of_the_chosen_start(sample):
    from modeling_videoclip.mugen import MugenRenderer, load_game

    ds = load_mugen(sample, "test", annotation="auto", start="random", seed=2, with_segmentation=True, **SMALL)
    row = ds[1]
    frames = range(row["start"], row["start"] + 4 * 3, 3)
    renderer = MugenRenderer(sample / "assets", 32)
    np.testing.assert_array_equal(row["video"], renderer.render(load_game(row["json_file"]), frames))
    assert row["segmentation"].shape == (4, 32, 32) and row["segmentation"].max() <= 21


def test_streaming_and_num_proc_give_the_plain_rows(sample):
    kw = dict(annotation="all", start="random", seed=3, **SMALL)
    plain = load_mugen(sample, "train", **kw)
    rows = [plain[i] for i in range(len(plain))]
    streamed = list(load_mugen(sample, "train", streaming=True, **kw))
    parallel = load_mugen(sample, "train", num_proc=2, **kw)
    assert parallel.mugen_report.as_dict() == plain.mugen_report.as_dict()
    assert len(rows) == len(streamed) == len(parallel)
    for r, s, p in zip(rows, streamed, (parallel[i] for i in range(len(parallel)))):
        for key in r:
            if key == "video":
                np.testing.assert_array_equal(r[key], s[key])
                np.testing.assert_array_equal(r[key], p[key])
            else:
                assert r[key] == s[key] == p[key], key


def test_dataloader_with_workers(sample):
    import torch

    ds = load_mugen(sample, "train", annotation="auto", start="random", **SMALL)
    expected = {r["id"]: r["video"] for r in ds}
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=mugen_collate)
    batches = list(loader)
    assert sum(len(b["id"]) for b in batches) == len(ds)
    for b in batches:
        assert b["video"].dtype == torch.uint8 and tuple(b["video"].shape[1:]) == (4, 32, 32, 3)
        for i, clip_id in enumerate(b["id"]):
            assert np.array_equal(b["video"][i].numpy(), expected[clip_id])


def test_audio(sample):
    row = load_mugen(sample, "test", annotation="auto", with_video=False, with_audio=True)[0]
    assert row["audio"].shape == (2, 70560) and row["audio"].dtype == np.float32
    assert np.abs(row["audio"]).max() > 0.01


def test_builder_caches_the_same_rows(sample, tmp_path):
    builder = MugenBuilder(data_dir=str(sample), cache_dir=str(tmp_path / "cache"), annotation="auto")
    builder.download_and_prepare()
    built = builder.as_dataset("test")
    plain = load_mugen(sample, "test", annotation="auto", with_video=False)
    assert built[:] == _meta(plain)
    built.set_transform(MugenTransform(str(sample / "assets"), "test", **SMALL))
    assert built[0]["video"].shape == (4, 32, 32, 3)


# -- bad data ---------------------------------------------------------------------------------------


def test_missing_and_malformed_release(sample, tmp_path):
    with pytest.raises(FileNotFoundError, match="coinrun_dataset_jsons/release/test.json"):
        load_mugen(tmp_path, "test")
    with pytest.raises(ValueError, match="split must be one of"):
        load_mugen(sample, "validation")
    root = _copy(sample, tmp_path)
    path = root / "coinrun_dataset_jsons" / "release" / "test.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(MugenFormatError, match="not valid JSON.*truncated"):
        load_mugen(root, "test")
    doc = json.loads(text)
    doc["data"][1]["video"]["num_frames"] = "96"
    path.write_text(json.dumps(doc))
    with pytest.raises(MugenFormatError, match=r"data\[1\].*num_frames should be an integer in"):
        load_mugen(root, "test")
    path.write_text(json.dumps({"data": []}))
    with pytest.raises(MugenFormatError, match="'metadata' and 'data'"):
        load_mugen(root, "test")


def test_missing_clip_json_raises_or_is_counted(sample, tmp_path):
    root = _copy(sample, tmp_path)
    first = _release(root, "train")["data"][0]["video"]["json_file"]
    (root / first).unlink()
    with pytest.raises(FileNotFoundError, match=f"1 of 4 MUGEN game JSONs are missing.*{first}"):
        load_mugen(root, "train", annotation="auto")
    ds = load_mugen(root, "train", annotation="auto", on_missing="skip", with_video=False)
    assert len(ds) == 3 and ds.mugen_report.dropped["game JSON missing"] == 1


def test_wrong_data_folder(sample, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist. Pass data_folder="):
        load_mugen(sample, "test", data_folder=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="none of the .* game JSONs exist .*data folder is probably wrong"):
        load_mugen(sample, "test", data_folder=tmp_path / "empty")
    root = _copy(sample, tmp_path)
    path = root / "coinrun_dataset_jsons" / "release" / "test.json"
    doc = json.loads(path.read_text())
    doc["metadata"]["data_folder"] = "/checkpoint/someone/coinrun"  # what real releases hold
    path.write_text(json.dumps(doc))
    with pytest.raises(FileNotFoundError, match="metadata.data_folder"):
        load_mugen(root, "test")
    assert len(load_mugen(root, "test", data_folder=root, annotation="auto")) == 2


def test_truncated_or_mistyped_clip_json_errors_on_access(sample, tmp_path):
    root = _copy(sample, tmp_path)
    entries = _release(root, "test")["data"]
    p0, p1 = root / entries[0]["video"]["json_file"], root / entries[1]["video"]["json_file"]
    p0.write_text(p0.read_text()[:5000])
    game = json.loads(p1.read_text())
    game["frames"][3]["agent"]["x"] = "12.5"
    p1.write_text(json.dumps(game))
    ds = load_mugen(root, "test", annotation="auto", **SMALL)
    with pytest.raises(MugenFormatError, match=f"{p0.name}: not valid JSON"):
        ds[0]
    with pytest.raises(MugenFormatError, match=r"frames\[3\]\.agent: field 'x' should be a number"):
        ds[1]
    game["frames"] = game["frames"][:50]
    game["frames"][3]["agent"]["x"] = 12.5
    p1.write_text(json.dumps(game))
    with pytest.raises(MugenFormatError, match="has 50 frames but frame 93 is needed.*truncated"):
        load_mugen(root, "test", annotation="auto")[1]


def test_missing_asset_is_named(sample, tmp_path):
    root = _copy(sample, tmp_path)
    (root / "assets" / "kenney" / "Tiles" / "lava.png").unlink()
    with pytest.raises(MissingAssetError, match="kenney/Tiles/lava.png"):
        load_mugen(root, "test")
    shutil.rmtree(root / "assets")
    with pytest.raises(FileNotFoundError, match="asset_dir="):
        load_mugen(root, "test")
    assert len(load_mugen(root, "test", annotation="auto", with_video=False)) == 2  # metadata needs no sprites
