"""Fuzzing the file readers: mutated game JSONs, release JSONs and video files go through the loader, the renderer
and the video processor in a subprocess (`fuzz_worker.py`). Every input must give a correct result or one of the
project's typed errors: never a signal death, a raw exception from a library, or a file written anywhere.

`GAME_CASES` / `RELEASE_CASES` / `VIDEO_CASES` are the table (input -> expected); the hypothesis tests add random
mutations, bounded in number so the suite stays within its time budget."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_videoclip import write_mp4

from modeling_videoclip.mugen import make_mugen_sample

WORKER = Path(__file__).with_name("fuzz_worker.py")
TYPED_ERRORS = {
    "modeling_videoclip.mugen.game.MugenFormatError", "modeling_videoclip.mugen.assets.MissingAssetError",
    "modeling_videoclip.video_processing_videoclip.VideoDecodeError", "builtins.FileNotFoundError",
}
FORMAT_ERROR = "modeling_videoclip.mugen.game.MugenFormatError"
DECODE_ERROR = "modeling_videoclip.video_processing_videoclip.VideoDecodeError"
MISSING_ASSET = "modeling_videoclip.mugen.assets.MissingAssetError"

# (where in the game JSON, new value, expected): "ok" or the error type's name.
GAME_CASES = [
    ("frames.0.agent.x", 1e300, FORMAT_ERROR), ("frames.0.agent.x", -1e300, FORMAT_ERROR),
    ("frames.0.agent.x", 1e18, FORMAT_ERROR), ("frames.0.agent.x", 2.5e3, FORMAT_ERROR),
    ("frames.0.agent.x", 63.0, "ok"), ("frames.0.agent.x", -0.5, "ok"), ("frames.0.agent.x", "12", FORMAT_ERROR),
    ("frames.0.agent.y", 1e9, FORMAT_ERROR), ("frames.0.agent.y", -1e9, FORMAT_ERROR),
    ("frames.0.agent.vx", 1e300, FORMAT_ERROR), ("frames.0.agent.vy", -1e300, FORMAT_ERROR),
    ("frames.0.agent.time_alive", 10**18, FORMAT_ERROR), ("frames.0.agent.time_alive", -7, "ok"),
    ("frames.0.agent.killed_animation_frame_cnt", 10**9, FORMAT_ERROR),
    ("frames.0.agent.finished_level_frame_cnt", -10**12, "ok"),  # never drawn, so not read by the renderer
    ("frames.0.agent.spring", 1e300, FORMAT_ERROR),
    ("frames.0.agent.is_killed", "yes", FORMAT_ERROR), ("frames.0.agent", "x", FORMAT_ERROR),
    ("frames.0.agent", None, FORMAT_ERROR), ("frames.0.state_time", 1e300, FORMAT_ERROR),
    ("frames.0.state_time", 1e12, FORMAT_ERROR), ("frames.0.state_time", 5000, "ok"),
    ("frames.0.state_time", -3.5, "ok"), ("frames.0.monsters.0.x", 1e17, FORMAT_ERROR),
    ("frames.0.monsters.0.y", -1e300, FORMAT_ERROR),
    ("frames.0.monsters.0.monster_dying_frame_cnt", 10**6, FORMAT_ERROR),
    ("frames.0.monsters.0.monster_dying_frame_cnt", -10, "ok"),
    ("frames.0.monsters.0.monster_dying_frame_cnt", 15, "ok"),  # above the animation: drawn taller, as the reference
    ("frames.0.monsters.0.anim_freq", 0, "ok"),
    ("frames.0.monsters.0.theme", 99, FORMAT_ERROR), ("frames.0.monsters.0.theme", -1, FORMAT_ERROR),
    ("frames.0.monsters.0.time", 2**70, FORMAT_ERROR), ("frames.0.monsters", {"x": 1}, FORMAT_ERROR),
    ("frames.0.coins_eaten", [[10**9, 0]], FORMAT_ERROR), ("frames.0.coins_eaten", [[1.5, 2]], FORMAT_ERROR),
    ("frames", [], FORMAT_ERROR), ("frames", "all", FORMAT_ERROR), ("zoom", 1e6, FORMAT_ERROR),
    ("zoom", 0, FORMAT_ERROR), ("zoom", 4.3, "ok"), ("bgzoom", -1, FORMAT_ERROR), ("bgzoom", 1e300, FORMAT_ERROR),
    ("maze_w", 0, FORMAT_ERROR), ("maze_h", 10**9, FORMAT_ERROR), ("maze.0", "", FORMAT_ERROR),
    ("maze.0", "?" * 64, FORMAT_ERROR), ("world_theme_n", 99, FORMAT_ERROR), ("agent_theme_n", -1, FORMAT_ERROR),
    ("background_themes", ["../../../etc/passwd"], FORMAT_ERROR), ("ground_themes", [7], FORMAT_ERROR),
    ("monster_names", [], FORMAT_ERROR), ("background_themes", ["backgrounds/none.png"], MISSING_ASSET),
]
# (where in the test release JSON, new value, expected).
RELEASE_CASES = [
    ("data.0.video.json_file", "../../outside.json", FORMAT_ERROR), ("data.0.video.json_file", 5, FORMAT_ERROR),
    ("data.0.video.num_frames", "many", FORMAT_ERROR), ("data.0.video.num_frames", 10**12, FORMAT_ERROR),
    ("data.0.video.id", "../../escaped", "ok"), ("data.0.annotations", "text", FORMAT_ERROR),
    ("data.0.annotations", [{"text": 3}], FORMAT_ERROR), ("data", {"0": 1}, FORMAT_ERROR),
    ("metadata", [], FORMAT_ERROR), ("metadata.data_folder", 12, FORMAT_ERROR),
]


def mutated(document, where: str, value):
    """A copy of the JSON `document` with the value at the dotted path `where` replaced."""
    document = copy.deepcopy(document)
    *parents, last = where.split(".")
    target = document
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[int(last) if isinstance(target, list) else last] = value
    return document


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return make_mugen_sample(tmp_path_factory.mktemp("fuzz") / "sample", num_clips=4, seed=0, with_audio=False)


@pytest.fixture(scope="module")
def game(sample) -> dict:
    """The sample's first game JSON whose first frame has a monster (the cases mutate it)."""
    for path in sorted((sample / "game_jsons").iterdir()):
        document = json.loads(path.read_text())
        if document["frames"][0]["monsters"]:
            return document
    raise AssertionError("no sample game has a monster in its first frame")


def tree(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*")}


def run_cases(cases: list[dict], folder: Path) -> dict[str, dict]:
    """Runs `cases` in one worker process (its working folder inside `folder`); checks that it was not killed and
    wrote nothing, and returns its records by case id."""
    work = folder / "cwd"
    work.mkdir(exist_ok=True)
    cases_file = folder / "cases.json"
    cases_file.write_text(json.dumps(cases))
    before = tree(folder)
    result = subprocess.run([sys.executable, str(WORKER), str(cases_file)], cwd=work, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, f"worker died (status {result.returncode}): {result.stderr[-2000:]}"
    assert tree(folder) == before, "the readers wrote files"
    records = {record["id"]: record for record in map(json.loads, result.stdout.splitlines())}
    assert set(records) == {case["id"] for case in cases}
    return records


def outcome(record: dict) -> str:
    return "ok" if record["outcome"] == "ok" else record["type"]


def game_case(folder: Path, sample: Path, document, case_id: str) -> dict:
    path = folder / f"{case_id}.json"
    path.write_text(json.dumps(document))
    return {"id": case_id, "kind": "game", "path": str(path), "assets": str(sample / "assets")}


def release_case(folder: Path, sample: Path, document, case_id: str) -> dict:
    root = folder / case_id
    release = root / "coinrun_dataset_jsons" / "release"
    release.mkdir(parents=True)
    (release / "test.json").write_text(json.dumps(document))
    (root / "game_jsons").symlink_to(sample / "game_jsons")
    (root / "assets").symlink_to(sample / "assets")
    return {"id": case_id, "kind": "release", "path": str(root)}


def video_cases(folder: Path) -> tuple[list[dict], dict[str, str]]:
    good = write_mp4(folder / "good.mp4", np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), np.uint8))
    data = Path(good).read_bytes()
    variants = {
        "good": (data, "ok"), "empty": (b"", DECODE_ERROR), "text": (b"hello, world\n" * 20, DECODE_ERROR),
        "truncated": (data[: len(data) // 2], None), "header only": (data[:48], DECODE_ERROR),
        "flipped middle": (data[:200] + bytes(b ^ 0xFF for b in data[200:400]) + data[400:], None),
        "zeros": (b"\x00" * 4096, DECODE_ERROR),
    }
    cases, expected = [], {}
    for name, (content, want) in variants.items():
        path = folder / f"video-{name.replace(' ', '-')}.mp4"
        path.write_bytes(content)
        cases.append({"id": f"video {name}", "kind": "video", "path": str(path)})
        expected[f"video {name}"] = want  # None: a correct result or a typed error, whichever the decoder gives
    return cases, expected


def test_table_of_hostile_files(sample, game, tmp_path):
    release = json.loads((sample / "coinrun_dataset_jsons" / "release" / "test.json").read_text())
    cases, expected = video_cases(tmp_path)
    for i, (where, value, want) in enumerate(GAME_CASES):
        case_id = f"game {i}: {where}={value!r}"[:80]
        cases.append(game_case(tmp_path, sample, mutated(game, where, value), f"game{i}") | {"id": case_id})
        expected[case_id] = want
    for i, (where, value, want) in enumerate(RELEASE_CASES):
        case_id = f"release {i}: {where}={value!r}"
        cases.append(release_case(tmp_path, sample, mutated(release, where, value), f"release{i}") | {"id": case_id})
        expected[case_id] = want
    assert len(expected) >= 60
    records = run_cases(cases, tmp_path)
    wrong = {}
    for case_id, want in expected.items():
        got = outcome(records[case_id])
        if got != want and not (want is None and (got == "ok" or got in TYPED_ERRORS)):
            wrong[case_id] = (want, got, records[case_id].get("message", "")[:160])
    assert not wrong, json.dumps(wrong, indent=1)
    assert "agent.x" in records[next(k for k in expected if "agent.x=1e+300" in k)]["message"]  # names the field


HOSTILE_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=12), st.none(), st.booleans(), st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-5, 5), max_size=2),
)


def leaf_paths(document, prefix: str = "", depth: int = 0) -> list[str]:
    """Dotted paths of `document`'s values (the first 2 items of each list), down to `depth` 5."""
    items = document.items() if isinstance(document, dict) else enumerate(document[:2])
    paths = []
    for key, value in items:
        path = f"{prefix}{key}"
        paths.append(path)
        if isinstance(value, (dict, list)) and value and depth < 5:
            paths += leaf_paths(value, path + ".", depth + 1)
    return paths


@settings(max_examples=2, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_mutations_give_results_or_typed_errors(sample, game, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("mutations")
    release = json.loads((sample / "coinrun_dataset_jsons" / "release" / "test.json").read_text())
    cases = []
    game_paths, release_paths = leaf_paths(game), leaf_paths(release)
    for i in range(24):
        edits = data.draw(st.lists(st.tuples(st.sampled_from(game_paths), HOSTILE_VALUES), min_size=1, max_size=3))
        document = game
        for where, value in edits:
            document = mutated(document, where, value) if _reachable(document, where) else document
        cases.append(game_case(folder, sample, document, f"game{i}") | {"edits": repr(edits)[:200]})
    for i in range(6):
        where, value = data.draw(st.tuples(st.sampled_from(release_paths), HOSTILE_VALUES))
        cases.append(release_case(folder, sample, mutated(release, where, value), f"release{i}")
                     | {"edits": repr((where, value))[:200]})
    records = run_cases(cases, folder)
    raw = {case.get("edits"): (outcome(records[case["id"]]), records[case["id"]].get("message", "")[:160])
           for case in cases if outcome(records[case["id"]]) not in TYPED_ERRORS | {"ok"}}
    assert not raw, json.dumps(raw, indent=1)


def _reachable(document, where: str) -> bool:
    """Whether `where` still names a place in `document` after earlier edits (its parents are containers)."""
    target = document
    *parents, last = where.split(".")
    for key in parents:
        try:
            target = target[int(key)] if isinstance(target, list) else target[key]
        except (KeyError, IndexError, TypeError, ValueError):
            return False
    if isinstance(target, list):
        return last.isdigit() and int(last) < len(target)
    return isinstance(target, dict)
