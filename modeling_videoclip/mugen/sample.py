"""A small synthetic dataset in MUGEN's on-disk format, the project's default for demos and tests. Levels are built
with the agent's trajectory, beat by beat, so its actions fit the level; auto captions use the phrasing of MUGEN's
caption generator. ``data_folder`` is ``"."`` so the folder can be moved."""

from __future__ import annotations

import json
import os
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .assets import AGENT_THEMES, BACKGROUND_THEMES, GROUND_THEMES, MONSTER_NAMES, make_stand_in_assets
from .release import SPLITS

__all__ = ["make_mugen_sample", "SAMPLE_NUM_FRAMES"]

SAMPLE_NUM_FRAMES = 96  # 3.2 s at 30 fps, MUGEN's clip length
AUDIO_RATE = 11025  # below the loader's 22050 Hz on purpose, so resampling is exercised
WALK_SPEED = 0.25  # cells per frame
MAZE_W, MAZE_H = 64, 13
_FLAT_MONSTERS = MONSTER_NAMES["ground"] + MONSTER_NAMES["walking"] + MONSTER_NAMES["flying"]
_WALKERS = MONSTER_NAMES["walking"]


@dataclass
class _Clip:
    rng: np.random.Generator
    maze: list[list[str]] = field(default_factory=lambda: [["."] * MAZE_W for _ in range(MAZE_H)])
    heights: list[int] = field(default_factory=lambda: [2] * MAZE_W)
    frames: list[dict] = field(default_factory=list)
    monsters: dict[int, dict] = field(default_factory=dict)  # m_id -> live state
    eaten: list[list[int]] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    events: dict[str, list[int]] = field(default_factory=dict)
    characters: dict[str, list[int]] = field(default_factory=dict)
    x: float = 2.0
    y: float = 2.0
    time_alive: int = 0
    state_time: int = 0
    shield: bool = False
    dead: bool = False
    killed_cnt: int = 0
    next_id: int = 0
    built: int = 0  # columns [0, built) have ground
    _coins: list[str] = field(default_factory=list)  # collected since the last caption phrase
    _pending: dict = field(default_factory=dict)  # agent flags for the next recorded frame

    def ground(self, x0: int, x1: int, h: int) -> None:
        self.built = max(self.built, min(x1, MAZE_W))
        for x in range(max(x0, 0), min(x1, MAZE_W)):
            self.heights[x] = h
            for y in range(MAZE_H):
                self.maze[y][x] = "A" if y < h - 1 else ("S" if y == h - 1 else ".")

    def put(self, x: int, y: int, ch: str) -> None:
        if 0 <= x < MAZE_W and 0 <= y < MAZE_H:
            self.maze[y][x] = ch

    def finish_level(self, start: int) -> None:
        self.ground(start, MAZE_W, self.heights[start - 1] if start > 0 else 2)
        x = start + 2
        while x < MAZE_W - 6:  # scenery to the right of where the agent stops
            kind = self.rng.integers(4)
            if kind == 0:
                self.put(x, self.heights[x], "#$&%"[self.rng.integers(4)])
            elif kind == 1:
                for i in range(3):
                    self.put(x + i, self.heights[x] + 3, "2" if i == 1 and self.rng.random() < 0.3 else "1")
            elif kind == 2:
                h = self.heights[x] + int(self.rng.integers(-1, 2))
                self.ground(x, x + 4, int(np.clip(h, 1, 4)))
            x += int(self.rng.integers(4, 8))
        for y in range(MAZE_H):  # CoinRun levels are walled in
            self.maze[y][0] = self.maze[y][MAZE_W - 1] = "A"
        for x in range(1, MAZE_W - 1):  # cliff tiles where a surface ends
            for y in range(MAZE_H):
                if self.maze[y][x] == "S":
                    left, right = self.maze[y][x - 1], self.maze[y][x + 1]
                    if left in ".^|=" and right not in ".^|=":
                        self.maze[y][x] = "a"
                    elif right in ".^|=" and left not in ".^|=":
                        self.maze[y][x] = "b"

    def step(self, vx: float, vy: float, **agent) -> None:
        """Record one frame with the agent at (self.x, self.y) moving at (vx, vy)."""
        self._collect()
        monsters = []
        for m in list(self.monsters.values()):
            if m["is_dead"]:
                if m["monster_dying_frame_cnt"] < 0:
                    del self.monsters[m["m_id"]]
                    continue
            elif m["is_walking"]:
                m["x"] += m["vx"]
            elif m["is_flying"]:
                m["y"] += m["vy"]
                if abs(m["y"] - m["y0"]) > 1.5:
                    m["vy"] = -m["vy"]
            m["time"] += 1
            monsters.append({k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items() if k != "y0"})
            if m["is_dead"]:
                m["monster_dying_frame_cnt"] -= 1
            name = _FLAT_MONSTERS[m["theme"]]
            self.characters.setdefault(name, []).append(len(self.frames))
        state = dict(x=round(self.x, 4), y=round(self.y, 4), vx=vx, vy=vy, time_alive=self.time_alive,
                     ladder=False, spring=0, is_killed=self.dead, killed_animation_frame_cnt=self.killed_cnt,
                     finished_level_frame_cnt=0, killed_monster=False, bumped_head=False, collected_coin=False,
                     collected_gem=False, power_up_mode=self.shield)
        state.update(agent)
        state.update(self._pending)
        self._pending = {}
        self.frames.append({
            "frame_id": len(self.frames), "file_name": f"{len(self.frames):04d}.png", "state_time": self.state_time,
            "coins_eaten": [list(c) for c in self.eaten], "agent": state, "monsters": monsters,
        })
        self.characters.setdefault("Mugen", []).append(len(self.frames) - 1)
        self.time_alive += 1
        self.state_time += 1
        if self.dead:
            self.killed_cnt = max(self.killed_cnt - 1, 0)

    def _collect(self) -> None:
        for cx, cy in ((int(self.x + 0.5), int(self.y + 0.5)), (int(self.x + 0.5), int(self.y + 1.5))):
            if 0 <= cy < MAZE_H and self.maze[cy][cx] in "12" and [cx, cy] not in self.eaten:
                kind = "gem" if self.maze[cy][cx] == "2" else "coin"
                self.eaten.append([cx, cy])
                self._pending = {f"collected_{kind}": True}
                self.events.setdefault(f"collect_{kind}", []).append(len(self.frames))
                self._coins.append(kind)
                self.shield = self.shield or kind == "gem"  # a gem gives the bubble shield

    def room(self) -> int:
        return SAMPLE_NUM_FRAMES - len(self.frames)

    def stroll(self, frames: int) -> None:
        """Walk right for ``frames`` frames (fewer if the clip is full)."""
        for _ in range(min(frames, self.room())):
            self.x += WALK_SPEED
            self.step(WALK_SPEED, 0.0)

    def walk(self, cells: int, coins: bool) -> None:
        x0 = int(round(self.x))
        h = self.heights[x0]
        self.ground(x0 + 1, x0 + cells + 2, h)
        if coins:
            for i in range(2, cells + 1, 2):
                self.put(x0 + i, h + int(self.rng.integers(0, 2)), "1")
        self.stroll(int(cells / WALK_SPEED))

    def jump_to(self, x1: float, y1: float, frames: int = 12, spring: bool = False) -> None:
        x0, y0 = self.x, self.y
        apex = max(y0, y1) + 1.2
        if spring and self.room() > 0:
            self.step(0.0, 0.0, spring=1)  # crouch before jumping: the "duck" pose
        for i in range(1, frames + 1):
            if self.room() == 0:
                return
            t = i / frames
            # a parabola through (0, y0), (t_apex, apex), (1, y1)
            a = y0 + (apex - y0) * 4 * t * (1 - t) if t <= 0.5 else y1 + (apex - y1) * 4 * t * (1 - t)
            prev = self.y
            self.x, self.y = x0 + (x1 - x0) * t, a if i < frames else y1
            vy = self.y - prev if i < frames else 0.0
            self.step(round((x1 - x0) / frames, 4), round(vy, 4) or 0.01)
        self.events.setdefault("jump", []).append(len(self.frames) - frames)

    def beat_step(self) -> None:
        x0 = int(round(self.x))
        h0 = self.heights[x0]
        h1 = int(np.clip(h0 + self.rng.choice([-2, -1, 1, 2]), 1, 4))
        self.ground(x0 + 1, x0 + 2, h0)
        self.ground(x0 + 2, x0 + 8, h1)
        if self.rng.random() < 0.5:
            self.put(x0 + 3, h1 + 1, "2" if self.rng.random() < 0.3 else "1")
        self.jump_to(x0 + 3, h1, spring=self.rng.random() < 0.3)
        where = "up" if h1 > h0 else "down"
        dest = " to the ground" if h1 <= 1 else " to a platform" if h1 > h0 else ""
        self.phrases.append(f"jumps {where} to the right{dest}{self._coin_desc()}")

    def beat_pit(self) -> None:
        x0 = int(round(self.x))
        h = self.heights[x0]
        width = int(self.rng.integers(2, 4))
        self.ground(x0 + 1, x0 + 2, h)
        for x in range(x0 + 2, x0 + 2 + width):
            self.heights[x] = h
            for y in range(MAZE_H):
                self.put(x, y, "A" if y < h - 2 else ("|" if y < h - 1 else ("^" if y == h - 1 else ".")))
        self.ground(x0 + 2 + width, x0 + 8 + width, h)
        self.jump_to(x0 + 3 + width, h, frames=10 + 2 * width)
        self.phrases.append(f"jumps over the lava to the right{self._coin_desc()}")

    def beat_ladder(self) -> None:
        x0 = int(round(self.x))
        h = self.heights[x0]
        top = h + 3
        self.ground(x0 + 1, x0 + 10, h)
        c = x0 + 2
        for y in range(h, top + 1):
            self.put(c, y, "=")
        for x in range(c + 1, c + 5):
            self.put(x, top, "S")
        self.put(c + 3, top + 1, "1")
        self.stroll(int(2 / WALK_SPEED))
        self.x = float(c)
        while self.y < top + 1 and self.room() > 0:
            self.y = min(self.y + 0.15, top + 1.0)
            self.step(0.0, 0.15, ladder=True)
        self.events.setdefault("climb", []).append(len(self.frames))
        self.phrases.append("climbs up on a ladder")
        self._coins = []
        self.stroll(int(3 / WALK_SPEED))
        self.phrases.append("walks to the right" + self._coin_desc())
        self.jump_to(c + 6, h)
        self.phrases.append("jumps down to the right to the ground")

    def add_monster(self, x: float, y: float, theme: int, vx: float = 0.0, flying: bool = False) -> dict:
        m_id, self.next_id = self.next_id, self.next_id + 1
        m = dict(m_id=m_id, x=x, y=float(y), y0=float(y), vx=vx, vy=0.05 if flying else 0.0, theme=theme,
                 is_flying=flying, is_walking=not flying and vx != 0, is_jumping=False, is_dead=False,
                 time=int(self.rng.integers(0, 10)), anim_freq=5, monster_dying_frame_cnt=0)
        self.monsters[m_id] = m
        return m

    def beat_monster(self, lethal: bool) -> None:
        x0 = int(round(self.x))
        h = self.heights[x0]
        self.ground(x0 + 1, x0 + 12, h)
        theme = len(MONSTER_NAMES["ground"]) + int(self.rng.integers(len(_WALKERS)))
        name = _FLAT_MONSTERS[theme]
        m = self.add_monster(x0 + 5.0, h, theme, vx=-0.05)
        if lethal:
            while m["x"] - self.x > 0.9 and self.room() > 0:
                self.x += WALK_SPEED
                self.step(WALK_SPEED, 0.0)
            self.dead, self.killed_cnt = True, 30  # the death animation counts down from 30
            self.events.setdefault("killed_by_monster", []).append(len(self.frames))
            self.phrases.append(f"killed by a {name}")
            while self.room() > 0:
                self.step(0.0, 0.0)
            return
        while m["x"] - self.x > 3.2 and self.room() > 0:
            self.x += WALK_SPEED
            self.step(WALK_SPEED, 0.0)
        self.jump_to(m["x"] + m["vx"] * 10, h, frames=10)
        m["is_dead"], m["monster_dying_frame_cnt"] = True, 3  # CoinRun shrinks dying monsters over 3 frames
        self._pending = {"killed_monster": True}
        self.events.setdefault("kill_monster", []).append(len(self.frames))
        self.phrases.append(f"jumps to the right and killed a {name}")
        self.stroll(8)

    def _coin_desc(self) -> str:
        counts = [(self._coins.count(kind), kind) for kind in ("coin", "gem")]
        self._coins = []
        parts = [f" a {kind}" if n == 1 else f" a few {kind}s" for n, kind in counts if n]
        return (" and collects" + " and".join(parts)) if parts else ""


def _generate_clip(rng: np.random.Generator, num_frames: int) -> tuple[dict, str, dict]:
    clip = _Clip(rng)
    start = int(rng.integers(2, 24))
    h = int(rng.integers(1, 4))
    clip.ground(0, start + 2, h)
    clip.x, clip.y = float(start), float(h)
    clip.time_alive, clip.state_time = int(rng.integers(0, 500)), int(rng.integers(0, 1000))
    # ambient monsters that never meet the agent: a saw behind it, a bee far ahead
    clip.add_monster(max(start - 4, 1), h, 0)
    clip.add_monster(min(start + 30, MAZE_W - 3), 8, len(_FLAT_MONSTERS) - 1, flying=True)
    lethal = rng.random() < 0.3
    while clip.room() > 0:
        if clip.x > MAZE_W - 16:  # near the end of the level: just stand
            clip.step(0.0, 0.0)
            continue
        beat = rng.choice(["walk", "step", "pit", "ladder", "monster"], p=[0.3, 0.2, 0.15, 0.15, 0.2])
        if beat == "walk":
            clip.walk(int(rng.integers(2, 5)), coins=rng.random() < 0.6)
            clip.phrases.append("walks to the right" + clip._coin_desc())
        elif beat == "step":
            clip.beat_step()
        elif beat == "pit":
            clip.beat_pit()
        elif beat == "ladder" and clip.heights[int(round(clip.x))] <= 4:
            clip.beat_ladder()
        elif beat == "monster":
            clip.beat_monster(lethal=lethal and clip.room() < 60)
    clip.finish_level(clip.built)
    # MUGEN's clip JSONs were cut from longer games: coins eaten are missing from the saved maze
    saved = [row[:] for row in clip.maze]
    for x, y in clip.eaten:
        saved[y][x] = "."
    world = int(rng.integers(len(GROUND_THEMES)))
    game = {
        "game_id": int(rng.integers(1 << 30)), "level_seed": int(rng.integers(1 << 30)),
        "rl_agent_seed": int(rng.integers(1 << 30)), "zoom": 5.5, "bgzoom": 0.4, "world_theme_n": world,
        "agent_theme_n": 0, "background_themes": list(BACKGROUND_THEMES), "ground_themes": list(GROUND_THEMES),
        "agent_themes": list(AGENT_THEMES), "monster_names": {k: list(v) for k, v in MONSTER_NAMES.items()},
        "video_res": 1024, "maze_w": MAZE_W, "maze_h": MAZE_H, "maze": ["".join(r) for r in saved],
        "frames": clip.frames[:num_frames],
    }
    phrases = [p for p in clip.phrases if p] or ["stands still"]
    auto = "Mugen " + ", and ".join(_dedupe(phrases))
    info = {"events": clip.events, "characters": {k: [[v[0], v[-1]]] for k, v in clip.characters.items()},
            "phrases": phrases, "world": world}
    return game, auto, info


def _dedupe(phrases: Sequence[str]) -> list[str]:
    return [p for i, p in enumerate(phrases) if i == 0 or phrases[i - 1] != p]


_MANUAL_SUBJECTS = ["Mugen", "The alien", "The yellow alien", "Our hero", "The little yellow guy", "The player"]
_MANUAL_VERBS = {
    "walks": ["walks", "runs", "moves", "strolls", "heads"],
    "jumps": ["jumps", "hops", "leaps", "bounces"],
    "climbs": ["climbs", "goes up", "scales"],
    "collects": ["collects", "grabs", "picks up", "gets"],
    "killed by": ["gets killed by", "is killed by", "dies to", "runs into"],
    "killed a": ["kills", "squashes", "stomps on", "defeats"],
}


def _manual_caption(rng: np.random.Generator, phrases: Sequence[str]) -> str:
    """A free-form caption in the spirit of MUGEN's human annotations (simpler words, varied order)."""
    def pick(key: str) -> str:
        return str(rng.choice(_MANUAL_VERBS[key]))

    bits = []
    for p in _dedupe(phrases)[:4]:
        if p.startswith("killed by"):
            bits.append(f"{pick('killed by')} {p.split('killed by ')[1]}")
        elif "killed a " in p:
            bits.append(f"{pick('killed a')} a {p.split('killed a ')[1]}")
        elif p.startswith("climbs"):
            bits.append(f"{pick('climbs')} a ladder")
        elif p.startswith("jumps over the lava"):
            bits.append(f"{pick('jumps')} over a pool of lava")
        elif p.startswith("jumps"):
            bits.append(f"{pick('jumps')} {'up onto a ledge' if ' up ' in p else 'down'}")
        elif p.startswith("walks"):
            bits.append(f"{pick('walks')} right")
        if "collects" in p:
            bits.append(f"{pick('collects')} {'a gem' if 'gem' in p else 'some coins' if 'few' in p else 'a coin'}")
    if not bits:
        bits = ["stands around"]
    subject = str(rng.choice(_MANUAL_SUBJECTS))
    body = ", ".join(bits[:-1]) + (" and " if len(bits) > 1 else "") + bits[-1]
    return f"{subject} {body}."


def _write_wav(path: Path, rng: np.random.Generator, events: dict[str, list[int]], seconds: float = 3.3) -> None:
    n = int(AUDIO_RATE * seconds)
    t = np.arange(n) / AUDIO_RATE
    sig = 0.05 * np.sin(2 * np.pi * float(rng.uniform(110, 220)) * t)  # background hum
    tones = {"jump": 440.0, "collect_coin": 1320.0, "collect_gem": 990.0, "kill_monster": 330.0,
             "killed_by_monster": 150.0, "climb": 660.0}
    for name, frames in events.items():
        for f in frames:
            s = int(f / 30 * AUDIO_RATE)
            e = min(n, s + AUDIO_RATE // 10)
            sig[s:e] += 0.3 * np.sin(2 * np.pi * tones.get(name, 500.0) * t[: e - s]) * np.linspace(1, 0, e - s)
    pcm = (np.clip(sig, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(AUDIO_RATE)
        w.writeframes(pcm.tobytes())


def make_mugen_sample(
    out_dir: str | os.PathLike, num_clips: int = 16, seed: int = 0, *, splits: Sequence[float] = (0.5, 0.25, 0.25),
    short_clips: int = 1, with_audio: bool = True, with_assets: bool = True, overwrite: bool = False,
) -> Path:
    """Write a small MUGEN-format dataset (release JSONs, game JSONs, wavs and stand-in sprites) and return
    ``out_dir`` as a :class:`~pathlib.Path`, to pass to :func:`~modeling_videoclip.mugen.load_mugen`.

    Args:
        out_dir: folder to write (created if needed).
        num_clips: number of 96-frame clips, spread over train/val/test (16).
        seed: random seed; the same seed gives byte-identical files (0).
        splits: fractions of clips for train, val and test (half, a quarter, a quarter); test and val get at
            least one clip each when ``num_clips >= 3``.
        short_clips: extra clips of 60 frames added to the train split, too short for MUGEN's default
            32 frames x every 3rd, so loaders can show they skip them (1).
        with_audio: write a wav per clip (True).
        with_assets: draw the stand-in sprites under ``out_dir/assets`` (True).
        overwrite: write into a folder that already holds MUGEN files (release JSONs, game JSONs, audio or
            assets), replacing those of the same names. Defaults to False: such a folder is refused, since it may
            hold real MUGEN data.

    Raises:
        FileExistsError: `out_dir` holds MUGEN files and `overwrite` is False.
    """
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    root = Path(out_dir)
    present = [name for name in ("coinrun_dataset_jsons", "game_jsons", "audio", "assets") if (root / name).exists()]
    if present and not overwrite:
        raise FileExistsError(f"{root} already holds MUGEN files ({', '.join(present)}); choose an empty folder, or "
                              f"pass overwrite=True (--overwrite) to write the sample over them")
    release = root / "coinrun_dataset_jsons" / "release"
    for sub in (release, root / "game_jsons", root / "audio"):
        sub.mkdir(parents=True, exist_ok=True)
    n_test = max(1, round(num_clips * splits[2])) if num_clips >= 3 else 0
    n_val = max(1, round(num_clips * splits[1])) if num_clips >= 3 else 0
    n_train = num_clips - n_test - n_val
    plan = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test + ["train"] * short_clips
    entries: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for i, split in enumerate(plan):
        clip_rng = np.random.default_rng([seed, i])
        game, auto, info = _generate_clip(clip_rng, 60 if i >= num_clips else SAMPLE_NUM_FRAMES)  # short ones last
        clip_id = f"sample_{seed}_{i:04d}"
        json_rel = f"game_jsons/{clip_id}.json"
        (root / json_rel).write_text(json.dumps(game, separators=(",", ":")), encoding="utf-8")
        audio_rel = f"audio/{clip_id}.wav"
        if with_audio:
            _write_wav(root / audio_rel, clip_rng, info["events"])
        n_manual = int(clip_rng.choice([0, 1, 2, 3], p=[0.2, 0.3, 0.3, 0.2]))
        annotations = [{"text": auto, "type": "auto", "characters": sorted(info["characters"]),
                        "actions": sorted(info["events"])}]
        annotations += [{"text": _manual_caption(clip_rng, info["phrases"]), "type": "manual",
                         "characters": [], "actions": []} for _ in range(n_manual)]
        entries[split].append({
            "video": {
                "id": clip_id, "json_file": json_rel, "num_frames": len(game["frames"]),
                "world_theme_n": info["world"], "gt_characters": info["characters"],
                "game_events": info["events"], "video_file": audio_rel, "audio_file": audio_rel,
            },
            "annotations": annotations,
        })
    for split in SPLITS:
        doc = {
            "metadata": {
                "data_folder": ".", "version": "sample-1", "type": "synthetic", "split": split,
                "game_events": ["jump", "climb", "collect_coin", "collect_gem", "kill_monster", "killed_by_monster"],
                "action_verbs": ["walks", "jumps", "climbs", "collects", "killed"],
                "characters": ["Mugen"] + _FLAT_MONSTERS + ["coin", "gem"],
            },
            "data": entries[split],
        }
        (release / f"{split}.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    if with_assets:
        make_stand_in_assets(root / "assets")
    return root
