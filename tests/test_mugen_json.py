"""The compiled game-JSON reader (`mugen/frames_json.py`): it accepts only documents orjson reads to the same values,
gives every number the double orjson (and Python's float) gives it, and the game it makes renders from the same
arrays, with the same errors, as the game made from orjson's objects."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import orjson
import pytest

from modeling_videoclip.mugen import load_game
from modeling_videoclip.mugen.assets import AGENT_THEMES, BACKGROUND_THEMES, GROUND_THEMES, MONSTER_NAMES
from modeling_videoclip.mugen.frames_json import FLAG, INT, NUM, FieldTable, FrameBytes, split_frames, within_bounds
from modeling_videoclip.mugen.game import Game, MugenFormatError

X_ONLY = FieldTable((), (("x", NUM, None),), ())


def game_dict(frames: list, **top) -> dict:
    rows = ["A" * 64, "S" * 64] + ["." * 64] * 11
    return {"maze": rows, "zoom": 5.5, "bgzoom": 0.4, "world_theme_n": 0, "agent_theme_n": 0,
            "background_themes": BACKGROUND_THEMES, "ground_themes": GROUND_THEMES, "agent_themes": AGENT_THEMES,
            "monster_names": MONSTER_NAMES, "maze_w": 64, "maze_h": 13, "frames": frames, **top}


def frame(k: int, monsters: int = 2, coins: int = 1) -> dict:
    agent = {"x": 10.25 + 0.1 * (k % 50), "y": 2.0, "vx": 0.25, "vy": -0.05 * (k % 50), "time_alive": k,
             "ladder": False, "spring": 0, "is_killed": k % 5 == 0, "killed_animation_frame_cnt": k % 3,
             "finished_level_frame_cnt": 0, "power_up_mode": False}
    cast = [{"m_id": j, "x": 5 + j % 50, "y": 2.05 * (j % 5), "vx": -0.05, "vy": 0.0, "theme": j % 10,
             "is_flying": False, "is_walking": True, "is_jumping": False, "is_dead": j == 1, "time": k + j,
             "anim_freq": 5, "monster_dying_frame_cnt": j % 3} for j in range(monsters)]
    return {"frame_id": k, "file_name": f"{k:04d}.png", "state_time": 100 + k,
            "coins_eaten": [[(3 + j) % 64, 2] for j in range(coins)], "agent": agent, "monsters": cast}


def write(tmp_path, document: bytes, name: str = "game.json"):
    path = tmp_path / name
    path.write_bytes(document)
    return path


def columns_equal(a, b) -> None:
    for name in ("state_time", "agent", "monster_ptr", "monsters", "coin_ptr", "coins"):
        x, y = np.ascontiguousarray(getattr(a, name)), np.ascontiguousarray(getattr(b, name))
        assert x.shape == y.shape and x.dtype == y.dtype, name
        assert x.tobytes() == y.tobytes(), name  # bit for bit: -0.0 and 0.0 differ


def from_objects(document: bytes) -> Game:
    """The game as the orjson path makes it (every frame a decoded object)."""
    return Game.from_dict(orjson.loads(document), source="game.json")


def number_texts(rng: random.Random, count: int) -> list[str]:
    """JSON numbers of every shape: 1-19 significant digits, points anywhere, exponents, and the known hard cases
    (halfway between doubles, the largest exact powers of ten, 2**53 + 1)."""
    texts = ["0", "-0", "0.0", "-0.0", "1e22", "1e23", "9007199254740993", "9007199254740992.0", "0.1", "0.3",
             "2.5", "8.050000190734863", "1.7976931348623157e308", "2.2250738585072014e-299", "123456789012345678",
             "4.9406564584124654e-300", "7.2057594037927933e16",
             "1.00000000000000011102230246251565404236316680908203125"]
    for _ in range(count):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 19))).lstrip("0") or "0"
        point = rng.randint(0, len(digits))
        text = digits[:point] + ("." + digits[point:] if point < len(digits) else "")
        if text.startswith("."):
            text = "0" + text
        if rng.random() < 0.3:
            text += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randint(0, 290))
        texts.append(("-" if rng.random() < 0.3 else "") + text)
    return texts


def test_numbers_are_the_doubles_orjson_and_float_give():
    texts = number_texts(random.Random(0), 20000)
    document = ('{"frames": [' + ",".join(f'{{"agent": {{"x": {t}}}}}' for t in texts) + "]}").encode()
    _, frames = split_frames(document)
    expected = [frame["agent"]["x"] for frame in orjson.loads(document)["frames"]]
    read = 0
    for k, text in enumerate(texts):
        drawn = frames.drawn([k], X_ONLY)
        if drawn is None:  # left to orjson (more than 19 digits, subnormal ranges)
            continue
        value = drawn[1][0, 0].tobytes()
        assert value == np.float64(expected[k]).tobytes(), text  # orjson gives an int for "-0": 0.0, not -0.0
        if isinstance(expected[k], float):
            assert value == np.float64(float(text)).tobytes(), text
        read += 1
    assert read >= 0.99 * len(texts)  # the compiled path is the common one, not the exception


def test_the_game_reads_the_same_arrays_as_from_orjson_objects(tmp_path):
    document = json.dumps(game_dict([frame(k) for k in range(96)])).encode()
    game = load_game(write(tmp_path, document))
    assert isinstance(game.frames._raw, FrameBytes)
    for ids in ([0], list(range(0, 96, 3)), [95, 0, 95, 7]):
        columns_equal(game.frames.columns(ids), from_objects(document).frames.columns(ids))
    assert game.frames[5] == from_objects(document).frames[5]  # Frame objects decode their frame with orjson
    assert game.maze == from_objects(document).maze  # coins of the last frame restored


def test_many_frames_monsters_and_coins_grow_the_buffers(tmp_path):
    document = json.dumps(game_dict([frame(k, monsters=3 + k % 40, coins=k % 30) for k in range(1500)])).encode()
    game = load_game(write(tmp_path, document))
    assert len(game.frames) == 1500
    ids = [1499, 39, 0, 1438]
    columns = game.frames.columns(ids)
    assert columns.monster_ptr[-1] > 16 * len(ids) and columns.coin_ptr[-1] > 16 * len(ids)
    columns_equal(columns, from_objects(document).frames.columns(ids))


def test_within_bounds_checks_every_column_and_coin():
    frame, agent, monsters = np.zeros((2, 1)), np.full((2, 2), 1.0), np.full((3, 2), 2.0)
    coins = np.array([[0, 0], [63, 12]], np.int64)
    low, high = np.array([0.0, 0, 1, 0, 2]), np.array([0.0, 1, 2, 9, 2])  # frame | agent | monster columns
    assert within_bounds(frame, agent, monsters, coins, low, high, 64, 13)
    for block, row, column, value in [(frame, 1, 0, 0.5), (agent, 0, 1, 2.5), (agent, 1, 0, np.nan),
                                      (monsters, 2, 1, 1.5), (monsters, 0, 0, -0.1)]:
        saved, block[row, column] = block[row, column], value
        assert not within_bounds(frame, agent, monsters, coins, low, high, 64, 13), (row, column, value)
        block[row, column] = saved
    for x, y in [(64, 0), (-1, 0), (0, 13), (0, -1)]:
        assert not within_bounds(frame, agent, monsters, np.array([[x, y]], np.int64), low, high, 64, 13)


def test_coins_eaten_by_the_last_frame_are_read_from_the_bytes_or_named(tmp_path):
    frames = [frame(k, coins=2) for k in range(3)]
    game = load_game(write(tmp_path, json.dumps(game_dict(frames)).encode()))
    assert not game.frames._raw._decoded  # the last frame's coins came from its bytes, no frame decoded
    assert game.maze == from_objects(json.dumps(game_dict(frames)).encode()).maze
    frames[-1]["coins_eaten"].append([70, 1])
    with pytest.raises(MugenFormatError, match=r"frames\[2\] eats a coin outside the maze at \(70, 1\)"):
        load_game(write(tmp_path, json.dumps(game_dict(frames)).encode(), "outside.json"))


def test_string_bytes_outside_the_subset_are_found_at_any_position():
    """The string scan reads 8 bytes at a time: an escape, control, DEL or non-ASCII byte at each position of a long
    key declines the document; the same key without it is read."""
    for position in range(20):
        name = bytearray(b"k" * 20)
        assert split_frames(b'{"frames": [{"' + bytes(name) + b'": 1}]}') is not None
        for byte in (0x5C, 0x00, 0x1F, 0x7F, 0x80, 0xFF):
            name[position] = byte
            assert split_frames(b'{"frames": [{"' + bytes(name) + b'": 1}]}') is None, (position, byte)


@pytest.mark.parametrize("document", [
    b'{"frames": [{"agent": {"\\u0078": 1.0}}]}',  # an escape: orjson decodes it
    '{"frames": [{"agent": {"x": 1.0}, "file_name": "\u00e9.png"}]}'.encode(),  # not ASCII
    b'{"frames": [{"agent": {"x": 1.0}, "deep": ' + b"[" * 70 + b"]" * 70 + b"}]}",
    b'[{"frames": []}]', b'{"frames": {"0": {}}}', b'{"frames": []}', b'{"maze": []}',
    b'{"frames": [{"agent": {"x": 1.0}}]} x', b'{"frames": [{"agent": {"x": 01}}]}',
    b'{"frames": [{"agent": {"x": .5}}]}', b'{"frames": [{"agent": {"x": 1.}}]}',
    b'{"frames": [{"agent": {"x": 1e}}]}', b'{"frames": [{"agent": {"x": NaN}}]}',
    b'{"frames": [{"agent": {"x": 1.0},}]}', b'{"frames": [{"agent": {"x": 1.0}}],}',
    b'{"frames": [{"agent" {"x": 1}}]}', b'{"frames": [{"agent": {"x": tru}}]}',
    b'{"frames": [{"agent": {"x": "1\n"}}]}', b'{"frames": [{"agent": {"x": 1',
])
def test_documents_outside_the_plain_subset_are_left_to_orjson(document):
    assert split_frames(document) is None


def test_repeated_keys_keep_the_last_as_orjson(tmp_path):
    document = json.dumps(game_dict([frame(k) for k in range(3)])).encode()
    document = document.replace(b'"agent": {"x": 10.35', b'"agent": {"x": 99.0, "y": 7.0}, "agent": {"x": 10.35')
    document = document.replace(b'"monsters": [', b'"monsters": [{"x": 1, "y": 1}], "monsters": [', 1)
    document = document.replace(b'{"maze"', b'{"frames": 3, "maze"')
    assert orjson.loads(document)["frames"][1]["agent"]["x"] == 10.35
    game = load_game(write(tmp_path, document))
    assert isinstance(game.frames._raw, FrameBytes)
    columns_equal(game.frames.columns([0, 1, 2]), from_objects(document).frames.columns([0, 1, 2]))


def test_values_of_other_types_go_through_the_checked_path(tmp_path):
    """A float count, a missing optional field, a bool in a number field: the bytes reader declines, the checked path
    converts (as before) or names the field."""
    frames = [frame(k) for k in range(4)]
    frames[1]["agent"]["time_alive"] = 2.0
    del frames[2]["agent"]["vx"]
    document = json.dumps(game_dict(frames)).encode()
    table = FieldTable((), (("x", NUM, None), ("time_alive", INT, 0), ("is_killed", FLAG, False)), ())
    _, frame_bytes = split_frames(document)
    assert frame_bytes.drawn([1], table) is None and frame_bytes.drawn([0, 2], table) is not None
    game = load_game(write(tmp_path, document))
    columns_equal(game.frames.columns([0, 1, 2]), from_objects(document).frames.columns([0, 1, 2]))
    frames[3]["agent"]["vy"] = True
    game = load_game(write(tmp_path, json.dumps(game_dict(frames)).encode(), "bool.json"))
    with pytest.raises(MugenFormatError, match=r"frames\[3\]\.agent: field 'vy' should be a number, got bool"):
        game.frames.columns([3])
    frames[3]["agent"]["vy"] = 1e3  # the right type, out of range: the message names it from the checked path
    game = load_game(write(tmp_path, json.dumps(game_dict(frames)).encode(), "range.json"))
    with pytest.raises(MugenFormatError, match=r"frames\[3\]: field 'agent.vy' is 1000.0, outside \[-100, 100\]"):
        game.frames.columns([2, 3])


def test_mutated_documents_are_read_as_orjson_reads_them():
    """Random byte edits of a game JSON: what the compiled reader accepts, orjson reads too and to the same frames
    and values; what orjson rejects, the compiled reader does not accept."""
    document = json.dumps(game_dict([frame(k, monsters=2, coins=1) for k in range(6)]), separators=(",", ":"))
    document = document.encode()
    rng = random.Random(1)
    alphabet = b'{}[]":,.-+0123456789eEtrufalsn \\\n\x00\xc3'
    accepted = 0
    for _ in range(600):
        edited = bytearray(document)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(edited))
            action = rng.random()
            if action < 0.4:
                edited[at] = rng.choice(alphabet)
            elif action < 0.7:
                del edited[at]
            else:
                edited.insert(at, rng.choice(alphabet))
        edited = bytes(edited)
        split = split_frames(edited)
        try:
            expected = orjson.loads(edited)
        except orjson.JSONDecodeError:
            assert split is None, edited
            continue
        if split is None:
            continue
        accepted += 1
        rest, frame_bytes = split
        decoded = orjson.loads(rest)
        assert decoded["frames"] == [] and {**decoded, "frames": expected["frames"]} == expected
        assert [frame_bytes[k] for k in range(len(frame_bytes))] == expected["frames"]
        try:
            reference = Game.from_dict(expected, source="game.json").frames
        except MugenFormatError:
            continue
        ids = list(range(len(reference)))
        try:
            wanted = reference.columns(ids)
        except MugenFormatError as error:
            with pytest.raises(MugenFormatError, match=re.escape(str(error))):
                Game.from_dict({**decoded, "frames": frame_bytes}, source="game.json").frames.columns(ids)
            continue
        columns_equal(Game.from_dict({**decoded, "frames": frame_bytes}, source="game.json").frames.columns(ids),
                      wanted)
    assert accepted >= 100  # the edits reach the reader's accepting paths, not only its refusals
