"""The synthetic MUGEN sample: a complete, plausible, reproducible MUGEN-format tree."""

import hashlib
import json
import time
from pathlib import Path

import pytest

from modeling_videoclip.mugen import ASSET_FILES, load_game, make_mugen_sample
from modeling_videoclip.mugen.release import read_release


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_mugen_sample(tmp_path_factory.mktemp("mugen") / "sample", num_clips=8, seed=3)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_tree_has_release_jsons_games_audio_and_all_assets(sample):
    release = sample / "coinrun_dataset_jsons" / "release"
    counts = {}
    for split in ("train", "val", "test"):
        metadata, entries = read_release(release / f"{split}.json")
        assert metadata["split"] == split and "data_folder" in metadata
        counts[split] = len(entries)
        for e in entries:
            assert (sample / metadata["data_folder"] / e.json_file).is_file()
            assert (sample / metadata["data_folder"] / e.audio_file).is_file()
            assert e.annotations[0]["type"] == "auto" and e.annotations[0]["text"].startswith("Mugen ")
            assert all(a["type"] == "manual" for a in e.annotations[1:])
    assert counts == {"train": 4 + 1, "val": 2, "test": 2}  # + the one short clip in train
    missing = [f for f in ASSET_FILES if not (sample / "assets" / f).is_file()]
    assert len(ASSET_FILES) == 58 and missing == []


def test_games_are_96_frame_levels_with_the_documented_events(sample):
    events, poses, themes = set(), set(), set()
    for path in sorted((sample / "game_jsons").glob("*.json")):
        game = load_game(path)
        assert len(game.maze) == 13 and all(len(r) == 64 for r in game.maze)
        assert len(game.frames) in (96, 60)
        themes.add(game.world_theme_n)
        poses |= {f.agent.pose for f in game.frames}
        raw = json.loads(path.read_text())
        for f in raw["frames"]:
            a = f["agent"]
            events |= {k for k in ("collected_coin", "collected_gem", "killed_monster", "is_killed", "ladder") if a[k]}
        if any(m.is_dead for f in game.frames for m in f.monsters):
            events.add("monster_dies")
        # coins eaten in the clip are missing from the saved maze, as in MUGEN's JSONs
        for x, y in raw["frames"][-1]["coins_eaten"]:
            assert raw["maze"][y][x] == "."
            assert game.maze[y][x] == "1"  # ...and the loader puts them back
        chars = set("".join(game.maze))
        assert {"A", "S"} <= chars
    assert {"walk1", "walk2", "jump", "climb1", "climb2"} <= poses
    assert {"collected_coin", "killed_monster", "ladder", "monster_dies"} <= events


def test_every_event_kind_appears_over_a_larger_sample(tmp_path):
    root = make_mugen_sample(tmp_path, num_clips=24, seed=0, with_audio=False, with_assets=False)
    text = " ".join(
        a["text"] for s in ("train", "val", "test")
        for e in read_release(root / "coinrun_dataset_jsons" / "release" / f"{s}.json")[1] for a in e.annotations
    )
    for phrase in ("walks to the right", "jumps up", "jumps down", "climbs up on a ladder", "collects a coin",
                   "killed a ", "killed by a ", "over the lava", "collects a gem"):
        assert phrase in text, phrase
    tiles = set()
    for path in (root / "game_jsons").glob("*.json"):
        tiles |= set("".join(json.loads(path.read_text())["maze"]))
    assert set(".=^|SAab12") <= tiles and tiles & set("#$&%")


def test_same_seed_same_bytes_and_fast(tmp_path):
    t0 = time.perf_counter()
    a = make_mugen_sample(tmp_path / "a", num_clips=16, seed=7)
    elapsed = time.perf_counter() - t0
    b = make_mugen_sample(tmp_path / "b", num_clips=16, seed=7)
    c = make_mugen_sample(tmp_path / "c", num_clips=16, seed=8, with_assets=False)
    assert _digest(a) == _digest(b)
    assert _digest(a / "game_jsons") != _digest(c / "game_jsons")
    assert elapsed < 4.0  # ~1 s on one core; generous for a loaded CI machine


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_clips"):
        make_mugen_sample(tmp_path, num_clips=0)
