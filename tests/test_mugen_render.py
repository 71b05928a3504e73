"""The MUGEN renderer: determinism and the documented behaviours on small hand-built games."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modeling_videoclip.mugen import MugenRenderer, kernels, load_game, make_mugen_sample, make_stand_in_assets
from modeling_videoclip.mugen.assets import AGENT_THEMES, BACKGROUND_THEMES, GROUND_THEMES, MONSTER_NAMES
from modeling_videoclip.mugen.game import Agent, Game, MugenFormatError
from modeling_videoclip.mugen.render import NUM_SEGMENTATION_LABELS, OUTPUT_ALIGNMENT, SEMANTIC_LABELS, _Atlas, _Sprite

RES = 256
KX = 5.5 * RES / 64  # 22 px cells at 256
AGENT_LEFT = int((RES - 1) // 2 - 0.5 * KX)  # the camera keeps the agent's left edge here


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_stand_in_assets(tmp_path_factory.mktemp("assets"))


@pytest.fixture(scope="module")
def renderer(assets):
    return MugenRenderer(assets, RES)


def make_game(frames, maze=None, world=0):
    """A CoinRun-style game dict: flat ground (rows 0-1), optional extra tiles via ``maze``."""
    rows = [["."] * 64 for _ in range(13)]
    for x in range(64):
        rows[0][x], rows[1][x] = "A", "S"
    for (x, y), ch in (maze or {}).items():
        rows[y][x] = ch
    return Game.from_dict({
        "maze": ["".join(r) for r in rows], "frames": frames, "zoom": 5.5, "bgzoom": 0.4, "world_theme_n": world,
        "agent_theme_n": 0, "background_themes": BACKGROUND_THEMES, "ground_themes": GROUND_THEMES,
        "agent_themes": AGENT_THEMES, "monster_names": MONSTER_NAMES, "maze_w": 64, "maze_h": 13,
    }, source="test-game")


def frame(x=10.0, y=2.0, state_time=0, coins_eaten=(), monsters=(), **agent):
    return {"frame_id": 0, "state_time": state_time, "coins_eaten": [list(c) for c in coins_eaten],
            "agent": {"x": x, "y": y, **agent}, "monsters": list(monsters)}


def test_deterministic_and_picklable(renderer, tmp_path):
    root = make_mugen_sample(tmp_path, num_clips=3, seed=5, with_audio=False, with_assets=False)
    game = load_game(next((root / "game_jsons").glob("*.json")))
    a = renderer.render(game, range(0, 96, 3))
    clone = pickle.loads(pickle.dumps(renderer))  # what DataLoader workers receive: caches are rebuilt
    b = clone.render(load_game(game.source), range(0, 96, 3))
    assert a.shape == (32, RES, RES, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[5], renderer.render(game, [15])[0])  # a frame alone == in a clip
    assert len(np.unique(a[0].reshape(-1, 3), axis=0)) > 50  # not a blank frame


def test_threads_render_the_same_pixels(assets, tmp_path):
    """Threads sharing one cold renderer fill its sprite, level and look caches and its output pool at the same
    time; every clip still equals the serial render."""
    from concurrent.futures import ThreadPoolExecutor

    root = make_mugen_sample(tmp_path, num_clips=4, seed=9, with_audio=False, with_assets=False, short_clips=0)
    games = [load_game(p) for p in sorted((root / "game_jsons").glob("*.json"))]
    frames = range(0, 96, 3)
    serial = [MugenRenderer(assets, RES).render(game, frames) for game in games]
    shared = MugenRenderer(assets, RES)
    with ThreadPoolExecutor(4) as pool:
        clips = list(pool.map(lambda k: shared.render(games[k % len(games)], frames), range(4 * len(games))))
    for k, clip in enumerate(clips):
        np.testing.assert_array_equal(clip, serial[k % len(games)])


def test_camera_follows_the_agent(renderer):
    game = make_game([frame(x=8.0 + 0.37 * k, vx=0.37, time_alive=k) for k in range(6)])
    seg = renderer.render_segmentation(game)
    for t in range(6):
        cols = np.where((seg[t] == SEMANTIC_LABELS["agent"]).any(0))[0]
        assert cols.min() == AGENT_LEFT and cols.max() == AGENT_LEFT + int(np.ceil(KX)) - 1
    # ...while the world scrolls: the ground moves by 0.37 cells * 22 px per frame
    rgb = renderer.render(game)
    assert not np.array_equal(rgb[0][240:], rgb[1][240:])


def test_eaten_coins_disappear_and_are_restored_for_the_start(renderer):
    coin = (12, 2)
    frames = [frame(x=10.0, vx=0.1), frame(x=10.0, vx=0.1, coins_eaten=[coin])]
    game = make_game(frames)  # the saved maze lacks the coin (eaten by the last frame)...
    assert game.maze[2][12] == "1"  # ...and it is put back
    seg = renderer.render_segmentation(game)
    assert (seg[0] == SEMANTIC_LABELS["coin"]).sum() > 50
    assert (seg[1] == SEMANTIC_LABELS["coin"]).sum() == 0
    rgb = renderer.render(game)
    coin_box = (slice(None), slice(AGENT_LEFT + 2 * 22, AGENT_LEFT + 3 * 22))
    assert not np.array_equal(rgb[0][coin_box], rgb[1][coin_box])


def test_eaten_coins_in_any_frame_order(renderer):
    """Eaten coins are left out of each frame that lists them; frames asked for out of order (coins
    coming back) and single frames must give the same pixels as frames in order."""
    coins = {(x, 3): "1" for x in range(9, 14)}
    coins[(11, 4)] = "2"
    frames = [frame(x=10.0 + 0.1 * k, vx=0.1, coins_eaten=[(x, 3) for x in range(9, 9 + min(k, 5))])
              for k in range(7)]
    game = make_game(frames, maze={**coins, (10, 2): "#", (12, 2): "="})
    ordered = renderer.render(game)
    order = [6, 0, 3, 5, 1, 2, 4]
    np.testing.assert_array_equal(renderer.render(game, order), ordered[order])
    for k in (0, 4, 6):
        np.testing.assert_array_equal(renderer.render(game, [k])[0], ordered[k])
    seg = renderer.render_segmentation(game)
    np.testing.assert_array_equal(renderer.render_segmentation(game, order), seg[order])
    coin_px = [(seg[k] == SEMANTIC_LABELS["coin"]).sum() for k in range(7)]
    assert coin_px[0] > coin_px[3] > coin_px[6] == 0 and (seg[6] == SEMANTIC_LABELS["gem"]).any()


@pytest.mark.parametrize("state, pose", [
    (dict(is_killed=True, ladder=True, killed_animation_frame_cnt=30), "hit"),
    (dict(ladder=True, vy=0.2, time_alive=0), "climb1"),
    (dict(ladder=True, time_alive=5), "climb2"),
    (dict(vy=0.3, vx=0.2), "jump"),
    (dict(spring=1), "duck"),
    (dict(), "stand"),
    (dict(vx=0.2, time_alive=4), "walk1"),
    (dict(vx=0.2, time_alive=7), "walk2"),
])
def test_agent_poses(state, pose):
    assert Agent(x=1.0, y=1.0, **state).pose == pose


def test_poses_and_facing_change_the_sprite(assets):
    r = MugenRenderer(assets, RES, bbox_smap_for_agent=False)  # sprite masks instead of boxes
    game = make_game([frame(vx=0.2, time_alive=0), frame(vx=0.2, time_alive=5), frame(vy=0.3),
                      frame(vx=-0.2, time_alive=0)])
    agent = r.render_segmentation(game) == SEMANTIC_LABELS["agent"]
    box = (slice(None), slice(AGENT_LEFT, AGENT_LEFT + 22))
    assert not np.array_equal(agent[0][box], agent[1][box])  # walk1 vs walk2
    assert not np.array_equal(agent[0][box], agent[2][box])  # walk vs jump
    np.testing.assert_array_equal(agent[3][box], agent[0][box][:, ::-1])  # facing left = mirrored


def test_monster_masks_follow_the_sprite(assets, renderer):
    snail = len(MONSTER_NAMES["ground"]) + MONSTER_NAMES["walking"].index("snail")
    game = make_game([frame(monsters=[{"m_id": 1, "x": 12.0, "y": 2.0, "theme": snail, "vx": vx}]) for vx in (0, 1)])
    boxes = renderer.render_segmentation(game) == SEMANTIC_LABELS["snail"]
    masks = MugenRenderer(assets, RES, bbox_smap_for_monsters=False).render_segmentation(game)
    masks = masks == SEMANTIC_LABELS["snail"]
    assert boxes[0].sum() == 22 * 22 and 0 < masks[0].sum() < boxes[0].sum() and not (masks & ~boxes).any()
    cols = boxes[0].any(0)
    np.testing.assert_array_equal(masks[1][:, cols], masks[0][:, cols][:, ::-1])  # walking right: mirrored


def test_lava_is_animated_by_state_time(renderer):
    lava = {(x, 1): "^" for x in range(8, 14)}
    lava.update({(x, 0): "|" for x in range(8, 14)})
    game = make_game([frame(x=10.0, state_time=t) for t in (0, 3, 0)], maze=lava)
    rgb = renderer.render(game)
    lava_rows = slice(RES - 40, RES)
    assert not np.array_equal(rgb[0][lava_rows], rgb[1][lava_rows])
    np.testing.assert_array_equal(rgb[0], rgb[2])
    seg = renderer.render_segmentation(game)
    assert (seg[0] == SEMANTIC_LABELS["lava"]).any() and (seg[0] == SEMANTIC_LABELS["lava_top"]).any()


def test_dying_monster_shrinks_and_dying_agent_fades(renderer):
    snail = MONSTER_NAMES["ground"].__len__() + MONSTER_NAMES["walking"].index("snail")

    def monster(**kw):
        return {"m_id": 1, "x": 12.0, "y": 2.0, "theme": snail, **kw}

    game = make_game([frame(monsters=[monster()]), frame(monsters=[monster(is_dead=True, monster_dying_frame_cnt=3)]),
                      frame(monsters=[monster(is_dead=True, monster_dying_frame_cnt=1)])])
    seg = renderer.render_segmentation(game)
    heights = [int((seg[t] == SEMANTIC_LABELS["snail"]).any(1).sum()) for t in range(3)]
    assert heights[0] == heights[1] == 22 and heights[2] < heights[1]

    game = make_game([frame(), frame(is_killed=True, killed_animation_frame_cnt=30),
                      frame(is_killed=True, killed_animation_frame_cnt=15),
                      frame(is_killed=True, killed_animation_frame_cnt=5)])
    rgb = renderer.render(game).astype(int)
    seg = renderer.render_segmentation(game)
    box = (slice(100, 240), slice(AGENT_LEFT, AGENT_LEFT + 22))
    assert (seg[3] == SEMANTIC_LABELS["agent"]).sum() == 0  # fully faded: not drawn
    hit_vs_gone = np.abs(rgb[1][box] - rgb[3][box]).sum()
    assert hit_vs_gone > np.abs(rgb[2][box] - rgb[3][box]).sum() > 0  # fading towards the background


def test_shield_and_segmentation_labels(renderer):
    game = make_game([frame(), frame(power_up_mode=True)])
    seg = renderer.render_segmentation(game)
    assert (seg[1] == SEMANTIC_LABELS["agent"]).sum() > (seg[0] == SEMANTIC_LABELS["agent"]).sum()
    assert seg.max() < NUM_SEGMENTATION_LABELS == 22
    expected = {0, SEMANTIC_LABELS["wall"], SEMANTIC_LABELS["wall_top"], SEMANTIC_LABELS["agent"]}
    assert set(np.unique(seg[0])) >= expected


def test_other_resolutions(assets):
    game = make_game([frame(), frame(x=10.5, vx=0.5)], maze={(12, 2): "#", (14, 2): "="})
    for res in (224, 64):
        r = MugenRenderer(assets, res)
        assert r.render(game).shape == (2, res, res, 3)
        seg = r.render_segmentation(game)
        assert seg.shape == (2, res, res) and (seg == SEMANTIC_LABELS["crate"]).any()


@pytest.mark.parametrize("alpha", ["none", "binary", "fractional"])
@pytest.mark.parametrize("box", [(-2, 4), (3, 3), (8, -5), (40, 0)])  # clipped left / inside / top / outside
@pytest.mark.parametrize("width", [2, 4, 7, 13, 24])  # rows of 6 to 72 bytes: each vector block size, overlapping
def test_kernel_pastes_like_pil(alpha, box, width):
    """kernels.paste_rgb / paste_labels against PIL's ``paste(sprite, box, sprite)`` / ``paste(value, box, mask)``."""
    rng = np.random.default_rng(width)
    rgba = rng.integers(0, 256, (9, width, 4), dtype=np.uint8)
    if alpha == "binary":
        rgba[..., 3] = np.where(rgba[..., 3] > 127, 255, 0)
    sprite = Image.fromarray(rgba[..., :3]) if alpha == "none" else Image.fromarray(rgba, "RGBA")
    canvas = rng.integers(0, 256, (12, 30, 3), dtype=np.uint8)
    img = Image.fromarray(canvas)
    xyxy = (box[0], box[1], box[0] + width, box[1] + 9)
    img.paste(sprite, xyxy, sprite if alpha != "none" else None)

    atlas = _Atlas()
    ops = np.array([[0, atlas.index(_Sprite(sprite)), box[0], box[1], 0, 0, 9]], np.int64)
    buffer, table = atlas.snapshot()
    ours = np.zeros((1, 30, 30, 3), np.uint8)  # the frame is drawn on the canvas, then copied out
    square = np.zeros((30, 30, 3), np.uint8)
    square[:12] = canvas
    kernels.paste_rgb(ours.reshape(1, 30, 90), buffer, table, np.zeros((1, 3), np.uint8), ops, ops[:0],
                      square.reshape(30, 90))
    np.testing.assert_array_equal(ours[0, :12], np.asarray(img))

    labels = Image.new("L", (30, 12), 3)
    binary = alpha == "fractional" or alpha == "binary"
    labels.paste(9, xyxy, Image.fromarray(np.where(rgba[..., 3] > 0, 255, 0).astype(np.uint8)) if binary else None)
    ours = np.full((1, 30, 30), 3, np.uint8)
    kernels.paste_labels(ours, buffer, table, ops, ops[:0])
    np.testing.assert_array_equal(ours[0, :12], np.asarray(labels))


def test_background_gaps_are_black(assets):
    """Frames start black where background tiles leave gaps (a CLEAR op first), even in reused output memory; a
    frame covered by one background tile needs no CLEAR."""
    game = make_game([frame(x=10.0), frame(x=40.0)])
    bg = MugenRenderer(assets, 64)._background(game)

    def ops_for(bg_w, bg_h):
        return kernels.tile_ops(np.array([10.0, 40.0]), np.array([2.0, 2.0]), np.zeros(2), np.zeros(3, np.int64),
                                np.zeros((0, 2), np.int64), np.full((13, 64), -1, np.int64),
                                np.zeros((13, 64), np.int64), np.zeros((13, 64), np.int8), np.zeros((3, 2), np.int64),
                                64, 5.5, 5.5, 5.5, 5.0, 0.4, bg_w, bg_h, True)

    covered = ops_for(bg.shape[1] // 3, bg.shape[0])  # 352 px tiles: one covers each 64 px frame
    assert covered[:, 1].tolist() == [kernels.BACKGROUND] * 2
    gaps = ops_for(1, 1)  # 1 px tiles: the frames are mostly gaps
    assert gaps[gaps[:, 0] == 0][0, 1] == gaps[gaps[:, 0] == 1][0, 1] == kernels.CLEAR
    out, canvas = np.full((2, 64, 64 * 3), 77, np.uint8), np.full((64, 64 * 3), 77, np.uint8)  # as if reused
    kernels.paste_rgb(out, np.zeros(1, np.uint8), np.zeros((0, 4), np.int64), np.zeros((1, 3), np.uint8), gaps,
                      gaps[:0], canvas)
    assert (out == 0).all()


def test_lava_key_round_trip():
    for fields in [(1, 0, 70, 23, 23), (2, 4095, 1, 4095, 4095), (1, 35, 70, 12, 20)]:
        assert kernels.decode_lava_key(kernels.lava_key(*fields)) == fields


def test_output_memory_is_reused_only_when_nothing_refers_to_it(assets):
    """Rendered clips come from recycled buffers: never one that an output, a view of it or a tensor made from it
    still uses; pixels are the same as from fresh memory; output_pool_bytes=0 turns reuse off."""
    import torch

    game = make_game([frame(x=8.0 + k, vx=1.0) for k in range(3)])
    fresh = MugenRenderer(assets, RES, output_pool_bytes=0)
    expected = fresh.render(game)
    pooled = MugenRenderer(assets, RES)
    first = pooled.render(game)
    view, tensor = first[1:], torch.from_numpy(pooled.render(game)[::2])
    memory = memoryview(pooled.render(game))
    del first
    held = [view, tensor.numpy(), np.asarray(memory)]
    for _ in range(3):
        clip = pooled.render(game)
        np.testing.assert_array_equal(clip, expected)
        assert not any(np.shares_memory(clip, other) for other in held)
        assert clip.ctypes.data % OUTPUT_ALIGNMENT == 0  # where the kernel's streamed stores start
        held.append(clip)
    seg = pooled.render_segmentation(game)
    np.testing.assert_array_equal(seg, fresh.render_segmentation(game))
    del view, tensor, memory, held, clip, seg
    buffers = len(pooled._outputs._buffers)
    pooled.render(game), pooled.render_segmentation(game)
    assert len(pooled._outputs._buffers) == buffers  # the released buffers served again
    np.testing.assert_array_equal(pooled.render_segmentation(game), fresh.render_segmentation(game))
    assert not fresh._outputs._buffers


def test_frame_columns_hold_the_frames_values():
    """The renderer's arrays (FrameColumns) and the Frame objects come from one parse: same values, frames in the
    order asked (repeats allowed), each frame owning its monsters and eaten coins."""
    frames = [frame(x=10.0 + k, vx=0.25 * k, time_alive=k, coins_eaten=[(3, 4)] * k,
                    monsters=[{"m_id": j, "x": 5 + j, "y": 2.0, "vx": -0.5, "time": k, "theme": j} for j in range(k)])
              for k in range(4)]
    game = make_game(frames)
    order = [3, 0, 2, 3]
    columns = game.frames.columns(order)
    frames[1]["agent"].pop("vx")  # an optional field left out (its default)...
    frames[2]["agent"]["time_alive"] = 2.7  # ...and a float count (converted as int(2.7), by the checked path)
    converted = make_game(frames).frames.columns([1, 2])
    assert converted.agent_field("vx")[0] == 0 and converted.agent_field("time_alive")[1] == 2
    assert len(columns) == 4 and columns.monster_ptr.tolist() == [0, 3, 3, 5, 8]
    assert columns.coin_ptr.tolist() == [0, 3, 3, 5, 8] and columns.coins[0].tolist() == [3, 4]
    for i, k in enumerate(order):
        f = game.frames[k]
        assert columns.agent_field("x")[i] == f.agent.x and columns.agent_field("vx")[i] == f.agent.vx
        assert columns.state_time[i] == f.state_time
        mine = slice(columns.monster_ptr[i], columns.monster_ptr[i + 1])
        assert columns.monster_field("x")[mine].tolist() == [m.x for m in f.monsters]
        assert columns.monster_field("theme")[mine].tolist() == [m.theme for m in f.monsters]


@pytest.mark.parametrize("where, value, message", [
    ("agent.vy", 1e3, r"frames\[2\]: field 'agent.vy' is 1000.0, outside \[-100, 100\]"),
    ("monsters.1.x", -1e6, r"frames\[2\]: field 'monsters\[1\].x' is -1000000.0, outside \[-64, 128\]"),
    ("monsters.1.is_dead", "no", r"frames\[2\].monsters\[1\]: field 'is_dead' should be a boolean"),
    ("state_time", float("nan"), r"frames\[2\]: field 'state_time' is not finite"),
    ("coins_eaten", [[70, 1]], r"frames\[2\] eats a coin outside the maze at \(70, 1\)"),
])
def test_bad_frame_values_are_named(renderer, where, value, message):
    frames = [frame(monsters=[{"m_id": j, "x": 5.0, "y": 2.0} for j in range(2)]) for _ in range(4)]
    *path, key = where.split(".")
    target = frames[2]
    for part in path:
        target = target[int(part)] if part.isdigit() else target[part]
    target[key] = value
    game = make_game(frames)
    renderer.render(game, [0, 1, 3])  # frames not drawn are not read
    with pytest.raises(MugenFormatError, match=message):
        renderer.render(game, [0, 2])


def test_errors(assets, renderer, tmp_path):
    with pytest.raises(FileNotFoundError, match="asset folder"):
        MugenRenderer(tmp_path / "missing")
    game = make_game([frame()])
    with pytest.raises(IndexError, match="frame 3 requested but the game has 1 frames"):
        renderer.render(game, [3])
    with pytest.raises(MugenFormatError, match="unknown tile"):
        make_game([frame()], maze={(3, 3): "Z"})
    with pytest.raises(MugenFormatError, match=r"frames\[1\] has a monster with theme 99"):
        make_game([frame(), frame(monsters=[{"m_id": 0, "x": 1.0, "y": 2.0, "theme": 99}]), frame()]).frames[1]


def _stress_variants(root: Path, out_dir: Path) -> list:
    """The sample's game JSONs, edited to reach the renderer's rarer paths: every CoinRun zoom, the agent near the top
    (the reference's radius window then drops row 0), a fading agent, shrinking monsters, shield and duck poses."""
    paths = []
    for i, p in enumerate(sorted((root / "game_jsons").glob("*.json"))):
        d = json.loads(p.read_text())
        d["zoom"] = [5.5, 4.3, 5.0, 6.0][i % 4]
        for k, f in enumerate(d["frames"]):
            agent = f["agent"]
            if i % 3 == 1 and k % 7 == 0:
                agent["y"] = 12.6
            if i % 3 == 2 and k > 60:
                agent.update(is_killed=True, killed_animation_frame_cnt=max(0, 90 - k))
            if i % 4 == 3:
                agent.update(power_up_mode=bool(k % 2), spring=1 if k % 5 == 0 else 0)
            for m in f["monsters"]:
                if i % 2 == 0 and k > 80:
                    m.update(is_dead=True, monster_dying_frame_cnt=96 - k)
        paths.append(out_dir / f"variant{i}.json")
        paths[-1].write_text(json.dumps(d))
    return paths


@pytest.mark.skipif(not os.environ.get("MUGEN_REFERENCE_DIR"),
                    reason="set MUGEN_REFERENCE_DIR to a facebookresearch/multimodal checkout to compare pixels")
@pytest.mark.parametrize("res", [RES, 224, 97])
def test_matches_the_reference_renderer(tmp_path, res):
    from benchmarks.bench_render import ReferenceRenderer

    root = make_mugen_sample(tmp_path, num_clips=8, seed=11, with_audio=False, short_clips=0)
    paths = sorted(str(p) for p in (root / "game_jsons").glob("*.json"))
    paths += [str(p) for p in _stress_variants(root, tmp_path)]
    ours = MugenRenderer(root / "assets", res)
    masks = MugenRenderer(root / "assets", res, bbox_smap_for_agent=False, bbox_smap_for_monsters=False)
    frames = list(range(0, 96, 3))
    for p in paths:
        ref = ReferenceRenderer(Path(os.environ["MUGEN_REFERENCE_DIR"]), str(root / "assets"), p, res)
        ref.game.load_json(p)  # the constructor leaves the last world theme selected
        ref.game.video_res = res
        np.testing.assert_array_equal(ours.render(load_game(p), frames), ref.render_loaded(frames), err_msg=p)
        np.testing.assert_array_equal(ours.render_segmentation(load_game(p), frames),
                                      ref.render_loaded(frames, segmentation=True), err_msg=p)
        if res == RES:  # sprite masks instead of boxes
            np.testing.assert_array_equal(masks.render_segmentation(load_game(p), frames),
                                          ref.render_loaded(frames, segmentation=True, boxes=False), err_msg=p)
