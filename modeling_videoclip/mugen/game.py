"""Typed parsing of CoinRun game-state JSONs (one per MUGEN clip): the level (``maze``, row 0 at the bottom), theme
lists and per-frame agent and monster states; poses, facing and walk phases are derived as CoinRun's renderer does."""

from __future__ import annotations

import math
import operator
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import orjson

__all__ = [
    "MugenFormatError", "Agent", "Monster", "Frame", "FrameList", "Game", "load_game", "TILE_CHARS", "ZOOM_DY_RATIO",
    "DEATH_ANIM_LENGTH", "MONSTER_DEATH_ANIM_LENGTH",
]

#: Tile characters a maze may contain.
TILE_CHARS = frozenset(".=^|SAab12#$&%")
AGENT_ANIM_FREQ = 5  # CoinRun hard-codes the agent's animation period


class MugenFormatError(ValueError):
    """A MUGEN file (release JSON or game JSON) does not have the expected structure."""


#: Camera height (in cells) for each zoom level CoinRun supports; 5.5 is MUGEN's.
ZOOM_DY_RATIO: dict[float, float] = {5.5: 5.0, 4.3: 6.5, 5.0: 5.5, 6.0: 4.5}
DEATH_ANIM_LENGTH = 30
MONSTER_DEATH_ANIM_LENGTH = 3
# Bounds on what a game JSON may hold, far outside what CoinRun produces but tight enough that no value can drive
# the renderer's integer arithmetic, sprite sizes or memory: positions within one level size of the maze, counters
# and times below 10**7 steps (MUGEN clips come from games of a few thousand), levels up to 1024 cells a side.
MAX_MAZE_SIZE = 1024
MAX_STEPS = 10**7
MAX_SPEED = 100.0


def _num(d: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = d.get(key, default)
    t = type(value)
    if t is int or (t is float and value - value == 0):  # fast path; x - x is nan for inf/nan
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if key not in d and default is None:
            raise MugenFormatError(f"{where}: missing numeric field {key!r}")
        raise MugenFormatError(f"{where}: field {key!r} should be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise MugenFormatError(f"{where}: field {key!r} is not finite ({value!r})")
    return value


def _flag(d: Mapping[str, Any], key: str, where: str) -> bool:
    value = d.get(key, False)
    if not isinstance(value, (bool, int)):
        raise MugenFormatError(f"{where}: field {key!r} should be a boolean, got {type(value).__name__} {value!r}")
    return bool(value)


_NUM, _INT, _FLAG = 0, 1, 2


def _is_mapping(d: Any) -> bool:
    return type(d) is dict or isinstance(d, Mapping)  # the ABC check is slow; JSON gives plain dicts


class _Spec:
    """``(key, kind, default)`` fields of one JSON object kind in dataclass order (default None = required), and
    the type signatures already seen to need no conversion (the fast path of :func:`_values`)."""

    def __init__(self, *fields: tuple[str, int, Any]):
        self.fields = fields
        self.pairs = tuple((key, default) for key, _, default in fields)
        self.getter = operator.itemgetter(*(key for key, _, _ in fields))  # when every key is present
        self.passthrough: set = set()


def _values(d: Mapping[str, Any], spec: _Spec, where: str) -> list[Any]:
    """The fields of ``spec``, validated. A type signature once validated without conversion only needs the
    finiteness check (a sum of finite numbers is finite; an overflow takes the slow path through _num/_flag)."""
    try:
        values = spec.getter(d)
    except (KeyError, TypeError):
        values = [d.get(key, default) for key, default in spec.pairs]
    signature = tuple(map(type, values))
    if signature in spec.passthrough and math.isfinite(sum(values)):
        return values
    out = []
    for key, kind, default in spec.fields:
        if kind == _FLAG:
            out.append(_flag(d, key, where))
        else:
            value = _num(d, key, where, default)
            out.append(value if kind == _NUM else int(value))
    if tuple(map(type, out)) == signature:
        spec.passthrough.add(signature)
    return out


@dataclass(slots=True)  # slots: a clip parses ~150 of these; fewer objects for the GC to track
class Agent:
    """The player character's state in one frame; ``pose``/``is_facing_right``/``walk1_mode`` are derived."""

    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    time_alive: int = 0
    ladder: bool = False
    spring: float = 0
    is_killed: bool = False
    killed_animation_frame_cnt: int = 0
    finished_level_frame_cnt: int = 0
    killed_monster: bool = False
    bumped_head: bool = False
    collected_coin: bool = False
    collected_gem: bool = False
    power_up_mode: bool = False
    is_facing_right: bool = field(init=False)
    walk1_mode: bool = field(init=False)
    pose: str = field(init=False)

    def __post_init__(self) -> None:
        self.is_facing_right = not self.vx < 0
        self.walk1_mode = (int(self.time_alive) // AGENT_ANIM_FREQ) % 2 == 0
        self.pose = self._pose()

    def _pose(self) -> str:
        # Priority order matters: a killed agent shows "hit" even on a ladder or mid-jump.
        if self.is_killed:
            return "hit"
        if self.ladder:
            return "climb1" if self.walk1_mode else "climb2"
        if self.vy != 0:
            return "jump"
        if self.spring != 0:
            return "duck"
        if self.vx == 0:
            return "stand"
        return "walk1" if self.walk1_mode else "walk2"

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Agent:
        if not _is_mapping(d):
            raise MugenFormatError(f"{where}: 'agent' should be an object, got {type(d).__name__}")
        return cls(*_values(d, _AGENT_SPEC, where))


@dataclass(slots=True)
class Monster:
    """A monster's state in one frame; ``theme`` indexes ``Game.flattened_monster_names``."""

    m_id: int
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    theme: int = 0
    is_flying: bool = False
    is_walking: bool = False
    is_jumping: bool = False
    is_dead: bool = False
    time: int = 0
    anim_freq: int = 1
    monster_dying_frame_cnt: int = 0
    walk1_mode: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.is_jumping:  # jumping monsters show their "move" sprite while airborne
            self.walk1_mode = self.vy == 0
        else:
            self.walk1_mode = (self.time // max(self.anim_freq, 1)) % 2 == 0

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Monster:
        if not _is_mapping(d):
            raise MugenFormatError(f"{where}: a monster should be an object, got {type(d).__name__}")
        return cls(*_values(d, _MONSTER_SPEC, where))


def _dataclass_spec(cls: type, **defaults: Any) -> _Spec:
    """The :class:`_Spec` of a dataclass's init fields: kind from the annotation, no default = required."""
    kinds = {"float": _NUM, "int": _INT, "bool": _FLAG}
    return _Spec(*((f.name, kinds[f.type], defaults.get(f.name, None if f.default is MISSING else f.default))
                   for f in fields(cls) if f.init))


_AGENT_SPEC = _dataclass_spec(Agent)
_MONSTER_SPEC = _dataclass_spec(Monster, m_id=0)  # CoinRun JSONs may omit m_id


@dataclass(slots=True)
class Frame:
    """One game frame: time (drives the lava animation), coins eaten so far, the agent and the monsters."""

    frame_id: int
    state_time: float
    coins_eaten: list[tuple[int, int]]
    agent: Agent
    monsters: list[Monster]
    file_name: str = ""

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Frame:
        if not _is_mapping(d):
            raise MugenFormatError(f"{where}: a frame should be an object, got {type(d).__name__}")
        if d.get("agent") is None:
            raise MugenFormatError(f"{where}: frame has no 'agent'")
        coins = d.get("coins_eaten", [])
        if not isinstance(coins, list) or not all(
            type(c) in (list, tuple) and len(c) == 2 and type(c[0]) is int and type(c[1]) is int for c in coins
        ):
            raise MugenFormatError(f"{where}: 'coins_eaten' should be a list of [x, y] integer pairs")
        monsters = d.get("monsters", [])
        if not isinstance(monsters, list):
            raise MugenFormatError(f"{where}: 'monsters' should be a list")
        frame_id, state_time = _values(d, _FRAME_SPEC, where)
        return cls(
            frame_id=frame_id, state_time=state_time, coins_eaten=[(c[0], c[1]) for c in coins],
            agent=Agent.from_dict(d["agent"], where + ".agent"),
            monsters=[Monster.from_dict(m, f"{where}.monsters[{j}]") for j, m in enumerate(monsters)],
            file_name=str(d.get("file_name", "")),
        )


_FRAME_SPEC = _Spec(("frame_id", _INT, -1), ("state_time", _NUM, 0))


class FrameList(Sequence):
    """The frames of a game, parsed and validated when first accessed (a clip renders 32 of its 96)."""

    def __init__(self, raw: list[Any], source: str, n_monster_names: int, maze_w: int, maze_h: int):
        self._raw, self._parsed = raw, [None] * len(raw)
        self._source, self._n_monsters, self._w, self._h = source, n_monster_names, maze_w, maze_h
        self._bounds, self._level = level_bounds(maze_w, maze_h), f"{maze_w}x{maze_h}"

    def __len__(self) -> int:
        return len(self._raw)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        frame = self._parsed[k]
        if frame is None:
            k = k % len(self._raw) if k < 0 else k
            where = f"{self._source}: frames[{k}]"
            frame = Frame.from_dict(self._raw[k], where)
            for x, y in frame.coins_eaten:
                if not (0 <= x < self._w and 0 <= y < self._h):
                    raise MugenFormatError(f"{where} eats a coin outside the maze at {(x, y)}")
            for m in frame.monsters:
                if not 0 <= m.theme < self._n_monsters:
                    raise MugenFormatError(f"{where} has a monster with theme {m.theme}, "
                                           f"but only {self._n_monsters} monster names are listed")
            _check_ranges(frame, where, self._bounds, self._level)
            self._parsed[k] = frame
        return frame


Bounds = tuple[tuple[str, float, float], ...]  # (attribute, low, high)


def level_bounds(maze_w: int, maze_h: int) -> tuple[Bounds, Bounds, Bounds]:
    """The range of every frame, agent and monster value that reaches the renderer, for a `maze_w` x `maze_h`
    level: `(frame, agent, monster)` bounds."""
    position = (("x", -maze_w, 2 * maze_w), ("y", -maze_h, 2 * maze_h))
    speed = (("vx", -MAX_SPEED, MAX_SPEED), ("vy", -MAX_SPEED, MAX_SPEED))
    frame = (("state_time", -MAX_STEPS, MAX_STEPS),)
    agent = (*position, *speed, ("time_alive", -MAX_STEPS, MAX_STEPS), ("spring", -MAX_STEPS, MAX_STEPS),
             ("killed_animation_frame_cnt", -MAX_STEPS, DEATH_ANIM_LENGTH + 1),
             ("finished_level_frame_cnt", -MAX_STEPS, MAX_STEPS))
    monster = (*position, *speed, ("time", -MAX_STEPS, MAX_STEPS), ("anim_freq", -MAX_STEPS, MAX_STEPS),
               ("monster_dying_frame_cnt", -MAX_STEPS, MONSTER_DEATH_ANIM_LENGTH))
    return frame, agent, monster


def _check_ranges(frame: Frame, where: str, bounds: tuple[Bounds, Bounds, Bounds], level: str) -> None:
    """Raises a `MugenFormatError` naming the first value of `frame` outside its `level_bounds` (`level`, e.g.
    "64x13", for the message)."""
    frame_bounds, agent_bounds, monster_bounds = bounds
    parts = [("", frame, frame_bounds), ("agent.", frame.agent, agent_bounds)]
    parts += [(f"monsters[{j}].", m, monster_bounds) for j, m in enumerate(frame.monsters)]
    for prefix, obj, ranges in parts:
        for name, low, high in ranges:
            value = getattr(obj, name)
            if not low <= value <= high:
                raise MugenFormatError(f"{where}: field {prefix + name!r} is {value!r}, outside [{low}, {high}] (the "
                                       f"range a {level} CoinRun level allows)")


@dataclass
class Game:
    """A parsed game JSON. ``maze[y][x]`` with ``y = 0`` the bottom row; eaten coins restored (see below)."""

    maze: list[str]
    frames: Sequence[Frame]
    zoom: float = 5.5
    bgzoom: float = 0.4
    world_theme_n: int = 0
    agent_theme_n: int = 0
    background_themes: list[str] = field(default_factory=list)
    ground_themes: list[str] = field(default_factory=list)
    agent_themes: list[str] = field(default_factory=list)
    monster_names: dict[str, list[str]] = field(default_factory=dict)
    maze_w: int = 64
    maze_h: int = 13
    video_res: int = 1024
    game_id: Any = -1
    level_seed: Any = 0
    rl_agent_seed: Any = 0
    source: str = ""

    @property
    def flattened_monster_names(self) -> list[str]:
        """Monster names in theme-index order: ground, then walking, then flying (CoinRun's order)."""
        m = self.monster_names
        return list(m.get("ground", [])) + list(m.get("walking", [])) + list(m.get("flying", []))

    @property
    def background_file(self) -> str:
        return self.background_themes[self.world_theme_n]

    @property
    def ground_theme(self) -> str:
        return self.ground_themes[self.world_theme_n]

    @property
    def agent_theme(self) -> str:
        return self.agent_themes[self.agent_theme_n]

    @classmethod
    def from_dict(cls, data: Any, source: str = "<game>", restore_eaten_coins: bool = True, lazy: bool = True) -> Game:
        """Validate and parse a game JSON object.

        Args:
            data: the decoded JSON object.
            source: a name for error messages (the file path).
            restore_eaten_coins: put coins eaten by the last frame back into empty maze cells (True, as the reference
                loader: MUGEN's clip JSONs were cut from longer games, so the saved maze may lack them).
            lazy: parse and validate each frame when first accessed (True: a clip renders 32 of its 96 frames).

        Raises:
            MugenFormatError: naming ``source`` and the offending field.
        """
        if not isinstance(data, Mapping):
            raise MugenFormatError(f"{source}: a game JSON should be an object, got {type(data).__name__}")
        for key in ("maze", "frames", "background_themes", "ground_themes", "agent_themes", "monster_names"):
            if key not in data:
                raise MugenFormatError(f"{source}: game JSON has no {key!r} field (truncated or not a CoinRun game?)")
        maze_h = int(_num(data, "maze_h", source, 13))
        maze_w = int(_num(data, "maze_w", source, 64))
        for name, value in (("maze_h", maze_h), ("maze_w", maze_w)):
            if not 1 <= value <= MAX_MAZE_SIZE:
                raise MugenFormatError(f"{source}: {name}={value} is outside [1, {MAX_MAZE_SIZE}]")
        zoom, bgzoom = _num(data, "zoom", source, 5.5), _num(data, "bgzoom", source, 0.4)
        if zoom not in ZOOM_DY_RATIO:
            raise MugenFormatError(f"{source}: zoom={zoom!r} is not one of CoinRun's zoom levels "
                                   f"{sorted(ZOOM_DY_RATIO)}")
        if not 0 <= bgzoom <= 10:
            raise MugenFormatError(f"{source}: bgzoom={bgzoom!r} is outside [0, 10] (CoinRun's is 0.4)")
        maze = data["maze"]
        if not isinstance(maze, list) or len(maze) != maze_h:
            raise MugenFormatError(f"{source}: 'maze' should be a list of maze_h={maze_h} strings")
        for y, row in enumerate(maze):
            if not isinstance(row, str) or len(row) != maze_w:
                raise MugenFormatError(f"{source}: maze row {y} should be a string of maze_w={maze_w} tiles")
            bad = set(row) - TILE_CHARS
            if bad:
                raise MugenFormatError(f"{source}: maze row {y} has unknown tile(s) {sorted(bad)}")
        frames = data["frames"]
        if not isinstance(frames, list) or not frames:
            raise MugenFormatError(f"{source}: 'frames' should be a non-empty list")
        for key in ("background_themes", "ground_themes", "agent_themes"):
            if not isinstance(data[key], list) or not all(isinstance(v, str) for v in data[key]):
                raise MugenFormatError(f"{source}: {key!r} should be a list of strings")
        names = data["monster_names"]
        if not isinstance(names, Mapping) or not all(
            isinstance(v, list) and all(isinstance(n, str) for n in v) for v in names.values()
        ):
            raise MugenFormatError(f"{source}: 'monster_names' should map 'ground'/'walking'/'flying' to name lists")
        themes = [(key, data[key]) for key in ("background_themes", "ground_themes", "agent_themes")]
        for key, values in themes + [(f"monster_names.{k}", v) for k, v in names.items()]:
            for value in values:  # sprite names become paths under the asset folder: they must stay inside it
                if value.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", value) or ":" in value:
                    raise MugenFormatError(f"{source}: {key} entry {value!r} is not a path inside the asset folder")
        n_monsters = sum(len(v) for k, v in names.items() if k in ("ground", "walking", "flying"))
        frames = FrameList(frames, source, n_monsters, maze_w, maze_h)
        game = cls(
            maze=list(maze), frames=frames if lazy else list(frames),
            zoom=zoom, bgzoom=bgzoom,
            world_theme_n=int(_num(data, "world_theme_n", source, 0)),
            agent_theme_n=int(_num(data, "agent_theme_n", source, 0)),
            background_themes=list(data["background_themes"]), ground_themes=list(data["ground_themes"]),
            agent_themes=list(data["agent_themes"]), monster_names={k: list(v) for k, v in names.items()},
            maze_w=maze_w, maze_h=maze_h, video_res=int(_num(data, "video_res", source, 1024)),
            game_id=data.get("game_id", -1), level_seed=data.get("level_seed", 0),
            rl_agent_seed=data.get("rl_agent_seed", 0), source=source,
        )
        for name, value, options in (
            ("world_theme_n", game.world_theme_n, game.background_themes),
            ("world_theme_n", game.world_theme_n, game.ground_themes),
            ("agent_theme_n", game.agent_theme_n, game.agent_themes),
        ):
            if not 0 <= value < len(options):
                raise MugenFormatError(f"{source}: {name}={value} is out of range for {options}")
        if restore_eaten_coins:
            game.restore_eaten_coins()
        return game

    def restore_eaten_coins(self) -> None:
        """Put coins eaten by the last frame back into empty maze cells (as gold coins, ``"1"``)."""
        rows = [list(r) for r in self.maze]
        for x, y in self.frames[-1].coins_eaten:
            if rows[y][x] == ".":
                rows[y][x] = "1"
        self.maze = ["".join(r) for r in rows]


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file with orjson (3x faster than json on game JSONs, a large part of a clip's cost).

    Raises:
        MugenFormatError: the file is not valid JSON (e.g. truncated, or NaN / Infinity, which JSON does not have).
    """
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise MugenFormatError(f"{path}: not valid JSON ({e}); the file may be truncated") from None


def load_game(path: str | os.PathLike, restore_eaten_coins: bool = True, lazy: bool = True) -> Game:
    """Read and validate one clip's game JSON.

    Args:
        path: the game JSON file.
        restore_eaten_coins, lazy: see :meth:`Game.from_dict` (True, True; as the reference loader).

    Raises:
        FileNotFoundError: the file does not exist.
        MugenFormatError: the file is not valid JSON (e.g. truncated) or has wrong fields/types.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"MUGEN game JSON {path} not found. If the release JSON's metadata.data_folder is wrong on this "
            "machine, pass data_folder= to load_mugen."
        )
    return Game.from_dict(read_json(path), source=path, restore_eaten_coins=restore_eaten_coins, lazy=lazy)
