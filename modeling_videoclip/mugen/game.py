"""Typed parsing of CoinRun game-state JSONs (one per MUGEN clip): the level (``maze``, row 0 at the bottom), theme
lists and per-frame agent and monster states; poses, facing and walk phases are derived as CoinRun's renderer does."""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import operator
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

import numpy as np
import orjson

from .frames_json import FLAG, INT, NUM, FieldTable, FrameBytes, split_frames, within_bounds
from .kernels import (
    AGENT_ANIM_FREQ,
    AGENT_FIELDS,
    AGENT_POSES,
    DEATH_ANIM_LENGTH,
    MONSTER_DEATH_ANIM_LENGTH,
    MONSTER_FIELDS,
    agent_pose_index,
    monster_walk1,
    walk1_phase,
)

__all__ = [
    "MugenFormatError", "Agent", "Monster", "Frame", "FrameList", "Game", "load_game", "TILE_CHARS", "ZOOM_DY_RATIO",
    "DEATH_ANIM_LENGTH", "MONSTER_DEATH_ANIM_LENGTH", "FrameColumns", "AGENT_FIELDS", "MONSTER_FIELDS", "AGENT_POSES",
    "agent_pose_index", "monster_walk1", "walk1_phase",
]

#: Tile characters a maze may contain.
TILE_CHARS = frozenset(".=^|SAab12#$&%")
_OTHER_TILE = re.compile("[^" + re.escape("".join(sorted(TILE_CHARS))) + "]")  # one search instead of a set a game


class MugenFormatError(ValueError):
    """A MUGEN file (release JSON or game JSON) does not have the expected structure."""


#: Camera height (in cells) for each zoom level CoinRun supports; 5.5 is MUGEN's.
ZOOM_DY_RATIO: dict[float, float] = {5.5: 5.0, 4.3: 6.5, 5.0: 5.5, 6.0: 4.5}
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


def _is_mapping(d: Any) -> bool:
    return type(d) is dict or isinstance(d, Mapping)  # the ABC check is slow; JSON gives plain dicts


class _Spec:
    """``(key, kind, default)`` fields of one JSON object kind in dataclass order (default None = required), the type
    signatures already seen to need no conversion (the fast path of :func:`_values`) and the types each field takes
    as they are (:meth:`FrameList._fast_rows`)."""

    def __init__(self, *fields: tuple[str, int, Any]):
        self.fields = fields
        self.names = {key: j for j, (key, _, _) in enumerate(fields)}
        self.pairs = tuple((key, default) for key, _, default in fields)
        keys = [key for key, _, _ in fields]
        # a tuple of the values when every key is present (itemgetter gives a bare value for one key)
        self.getter = operator.itemgetter(*keys) if len(keys) > 1 else lambda d: (d[keys[0]],)
        self.passthrough: set = set()
        # an int field given a float is converted: not taken as it is
        self.fast_types = tuple({NUM: {int, float}, INT: {int}, FLAG: {bool, int}}[kind] for _, kind, _ in fields)

    def row(self, d: Mapping[str, Any]) -> tuple:
        """The values of the fields in ``d``, defaults for those left out (None for required ones)."""
        try:
            return self.getter(d)
        except KeyError:
            return tuple(d.get(key, default) for key, default in self.pairs)


def _values(d: Mapping[str, Any], spec: _Spec, where: str) -> list[Any]:
    """The fields of ``spec``, validated. A type signature once validated without conversion only needs the
    finiteness check (a sum of finite numbers is finite; an overflow takes the slow path through _num/_flag)."""
    values = spec.row(d)
    signature = tuple(map(type, values))
    if signature in spec.passthrough and math.isfinite(sum(values)):
        return values
    out = []
    for key, kind, default in spec.fields:
        if kind == FLAG:
            out.append(_flag(d, key, where))
        else:
            value = _num(d, key, where, default)
            out.append(value if kind == NUM else int(value))
    if tuple(map(type, out)) == signature:
        spec.passthrough.add(signature)
    return out


@dataclass(slots=True)  # slots: fewer objects for the GC to track
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
        self.walk1_mode = walk1_phase(int(self.time_alive), AGENT_ANIM_FREQ)
        self.pose = AGENT_POSES[agent_pose_index(bool(self.is_killed), bool(self.ladder), self.walk1_mode,
                                                 float(self.vy), float(self.spring), float(self.vx))]


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
        self.walk1_mode = monster_walk1(bool(self.is_jumping), float(self.vy), int(self.time), int(self.anim_freq))


def _dataclass_spec(cls: type, **defaults: Any) -> _Spec:
    """The :class:`_Spec` of a dataclass's init fields: kind from the annotation, no default = required."""
    kinds = {"float": NUM, "int": INT, "bool": FLAG}
    return _Spec(*((f.name, kinds[f.type], defaults.get(f.name, None if f.default is MISSING else f.default))
                   for f in fields(cls) if f.init))


_AGENT_SPEC = _dataclass_spec(Agent)
_MONSTER_SPEC = _dataclass_spec(Monster, m_id=0)  # CoinRun JSONs may omit m_id
_FRAME_SPEC = _Spec(("frame_id", INT, -1), ("state_time", NUM, 0))


def _drawn(spec: _Spec, names: Sequence[str]) -> _Spec:
    """The fields ``names`` of ``spec``, in that order."""
    return _Spec(*(spec.fields[spec.names[name]] for name in names))


_DRAWN = (_drawn(_FRAME_SPEC, ("state_time",)), _drawn(_AGENT_SPEC, AGENT_FIELDS),
          _drawn(_MONSTER_SPEC, MONSTER_FIELDS))
_DRAWN_TABLE = FieldTable(*(spec.fields for spec in _DRAWN))


@dataclass(slots=True)
class Frame:
    """One game frame: time (drives the lava animation), coins eaten so far, the agent and the monsters."""

    frame_id: int
    state_time: float
    coins_eaten: list[tuple[int, int]]
    agent: Agent
    monsters: list[Monster]
    file_name: str = ""


@dataclass(frozen=True, slots=True)
class FrameColumns:
    """The values the renderer reads from some frames of a game, as arrays (:meth:`FrameList.columns`).

    ``agent`` is ``(n, len(AGENT_FIELDS))`` float64, one row per frame, columns named by :data:`AGENT_FIELDS`;
    ``monsters`` holds every monster of the frames in order, ``(m, len(MONSTER_FIELDS))``, frame ``i`` owning rows
    ``monster_ptr[i]:monster_ptr[i + 1]``; ``coins`` (eaten so far, ``(c, 2)`` int64 ``x, y``) likewise."""

    frame_ids: list[int]
    state_time: np.ndarray
    agent: np.ndarray
    monster_ptr: np.ndarray
    monsters: np.ndarray
    coin_ptr: np.ndarray
    coins: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_ids)

    def agent_field(self, name: str) -> np.ndarray:
        return self.agent[:, AGENT_FIELDS.index(name)]

    def monster_field(self, name: str) -> np.ndarray:
        return self.monsters[:, MONSTER_FIELDS.index(name)]


Bounds = tuple[tuple[str, float, float], ...]  # (field, low, high)


def max_dying_count(maze_h: int) -> int:
    """The largest ``monster_dying_frame_cnt`` accepted in a level ``maze_h`` cells high. A dying monster shrinks by
    0.8 cells over its animation; a count above the animation's length makes the reference draw it taller instead,
    which is kept up to the level's height."""
    return MONSTER_DEATH_ANIM_LENGTH + math.floor((maze_h - 1) * MONSTER_DEATH_ANIM_LENGTH / 0.8)


def level_bounds(maze_w: int, maze_h: int) -> tuple[Bounds, Bounds, Bounds]:
    """The range of every frame, agent and monster value that reaches the renderer, for a `maze_w` x `maze_h`
    level: `(frame, agent, monster)` bounds."""
    position = (("x", -maze_w, 2 * maze_w), ("y", -maze_h, 2 * maze_h))
    speed = (("vx", -MAX_SPEED, MAX_SPEED), ("vy", -MAX_SPEED, MAX_SPEED))
    frame = (("state_time", -MAX_STEPS, MAX_STEPS),)
    agent = (*position, *speed, ("time_alive", -MAX_STEPS, MAX_STEPS), ("spring", -MAX_STEPS, MAX_STEPS),
             ("killed_animation_frame_cnt", -MAX_STEPS, DEATH_ANIM_LENGTH + 1))
    monster = (*position, *speed, ("time", -MAX_STEPS, MAX_STEPS), ("anim_freq", -MAX_STEPS, MAX_STEPS),
               ("monster_dying_frame_cnt", -MAX_STEPS, max_dying_count(maze_h)))
    return frame, agent, monster


_FINITE = float(np.finfo(np.float64).max)  # the bound of fields without one: any finite value
_NO_ITEMS: list = []  # the default of absent coin and monster lists (never modified)


@functools.lru_cache(maxsize=64)
def _bound_arrays(maze_w: int, maze_h: int, n_monster_names: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """``(low, high)`` per column of the frame, agent and monster blocks of :class:`FrameColumns` (the monster
    theme must name a monster), from :func:`level_bounds`."""
    frame, agent, monster = level_bounds(maze_w, maze_h)
    monster = (*monster, ("theme", 0, n_monster_names - 1))
    arrays = []
    for spec, bounds in zip(_DRAWN, (frame, agent, monster)):
        low, high = np.full(len(spec.fields), -_FINITE), np.full(len(spec.fields), _FINITE)
        for name, lo, hi in bounds:
            low[spec.names[name]], high[spec.names[name]] = lo, hi
        arrays.append((low, high))
    return tuple(arrays)


@functools.lru_cache(maxsize=64)
def _outside_asset_folder(lists: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[str, str] | None:
    """The first ``(list name, entry)`` of the game's sprite name lists that would name a path outside the asset
    folder (they become paths under it), or None; cached, as every game of a release lists the same names."""
    for key, values in lists:
        for value in values:
            if value.startswith(("/", "\\")) or ":" in value or (
                ".." in value and ".." in value.replace("\\", "/").split("/")
            ):
                return key, value
    return None


@functools.lru_cache(maxsize=64)
def _flat_bound_arrays(maze_w: int, maze_h: int, n_monster_names: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_bound_arrays` as the ``(low, high)`` of :func:`~.frames_json.within_bounds`: the frame's, agent's and
    monster's columns one after another."""
    return tuple(np.concatenate(side) for side in zip(*_bound_arrays(maze_w, maze_h, n_monster_names)))


class FrameList(Sequence):
    """The frames of a game, parsed and validated when first accessed (a clip renders 32 of its 96): as
    :class:`Frame` objects by index, or the values the renderer reads as :class:`FrameColumns`. ``raw`` holds the
    frames as decoded JSON objects, or as their bytes (:class:`~.frames_json.FrameBytes`, which decodes a frame when
    asked and reads the drawn values of many straight from the bytes)."""

    def __init__(self, raw: list[Any] | FrameBytes, source: str, n_monster_names: int, maze_w: int, maze_h: int):
        self._raw, self._parsed = raw, {}
        self._source, self._n_monsters, self._w, self._h = source, n_monster_names, maze_w, maze_h
        self._bounds = _bound_arrays(maze_w, maze_h, n_monster_names)
        self._flat_bounds = _flat_bound_arrays(maze_w, maze_h, n_monster_names)

    def __len__(self) -> int:
        return len(self._raw)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return self._frames(range(*k.indices(len(self))))
        return self._frames([k + len(self) if -len(self) <= k < 0 else k])[0]

    def __iter__(self):
        return iter(self._frames(range(len(self))))

    def columns(self, frame_ids: Sequence[int]) -> FrameColumns:
        """The drawn values of frames ``frame_ids`` (in that order; repeats allowed) as arrays, validated.

        Raises:
            IndexError: a frame id is outside ``[0, len(self))``.
            MugenFormatError: a drawn value has the wrong type or is outside its range, naming frame and field.
        """
        ids, count = [int(k) for k in frame_ids], len(self._raw)
        for k in ids:
            if not 0 <= k < count:
                raise IndexError(f"{self._source}: frame {k} requested but the game has {count} frames")
        return self._columns(ids)

    def eaten_coins(self, k: int) -> list[list[int]]:
        """The ``[x, y]`` cells of the coins eaten by frame ``k`` (validated: inside the maze)."""
        if isinstance(self._raw, FrameBytes):  # read from the bytes, without decoding the frame
            drawn = self._raw.drawn([k], _DRAWN_TABLE)
            if self._drawn_in_range(drawn):
                return drawn[-1].tolist()
        return self._parts(self._raw[k], k)[2]

    def _frames(self, frame_ids: Sequence[int]) -> list[Frame]:
        """Frame objects: every field type-checked, the drawn values also range-checked (by :meth:`columns`)."""
        ids = [int(k) for k in frame_ids]
        missing = list(dict.fromkeys(k for k in ids if k not in self._parsed))
        if missing:
            self.columns(missing)
            for k in missing:
                d = self._raw[k]
                agent, monsters, eaten = self._parts(d, k)
                self._parsed[k] = Frame(
                    *_values(d, _FRAME_SPEC, self._where(k)), coins_eaten=[(c[0], c[1]) for c in eaten],
                    agent=Agent(*_values(agent, _AGENT_SPEC, self._where(k, ".agent"))),
                    monsters=[Monster(*_values(m, _MONSTER_SPEC, self._where(k, j))) for j, m in enumerate(monsters)],
                    file_name=str(d.get("file_name", "")),
                )
        return [self._parsed[k] for k in ids]

    def _where(self, k: int, part: str | int = "") -> str:
        return f"{self._source}: frames[{k}]" + (f".monsters[{part}]" if isinstance(part, int) else part)

    def _parts(self, d: Any, k: int) -> tuple[Mapping, list, list]:
        """``(agent, monsters, coins_eaten)`` of frame ``d`` (frame ``k``), their structure validated (the objects'
        fields are checked by the callers)."""
        if not _is_mapping(d):
            raise MugenFormatError(f"{self._where(k)}: a frame should be an object, got {type(d).__name__}")
        agent, monsters, eaten = d.get("agent"), d.get("monsters", _NO_ITEMS), d.get("coins_eaten", _NO_ITEMS)
        if agent is None:
            raise MugenFormatError(f"{self._where(k)}: frame has no 'agent'")
        if not _is_mapping(agent):
            raise MugenFormatError(f"{self._where(k)}: 'agent' should be an object, got {type(agent).__name__}")
        if not isinstance(monsters, list):
            raise MugenFormatError(f"{self._where(k)}: 'monsters' should be a list")
        for j, m in enumerate(monsters):
            if not _is_mapping(m):
                raise MugenFormatError(f"{self._where(k, j)}: a monster should be an object, got {type(m).__name__}")
        if type(eaten) is not list or not all(
            type(c) in (list, tuple) and len(c) == 2 and type(c[0]) is int and type(c[1]) is int for c in eaten
        ):
            raise MugenFormatError(f"{self._where(k)}: 'coins_eaten' should be a list of [x, y] integer pairs")
        for x, y in eaten:
            if not (0 <= x < self._w and 0 <= y < self._h):
                raise MugenFormatError(f"{self._where(k)} eats a coin outside the maze at {(x, y)}")
        return agent, monsters, eaten

    def _columns(self, ids: list[int]) -> FrameColumns:
        """:meth:`columns` for valid ids: the values read from the bytes when they are in range, else from the
        decoded frames through :meth:`_fast_rows` or :meth:`_checked_rows`; the coins and every range checked on the
        arrays, the first value at fault named."""
        if isinstance(self._raw, FrameBytes):
            drawn = self._raw.drawn(ids, _DRAWN_TABLE)
            if self._drawn_in_range(drawn):
                frame, agent, monster_ptr, monsters, coin_ptr, coins = drawn
                return FrameColumns(ids, frame[:, 0], agent, monster_ptr, monsters, coin_ptr, coins)
        rows = self._fast_rows(ids) or self._checked_rows(ids)
        frame_rows, agent_rows, monster_rows, coins, monster_ptr, coin_ptr = rows
        blocks = []
        for part, spec, values, (low, high) in zip(("", "agent.", "monsters"), _DRAWN,
                                                   (frame_rows, agent_rows, monster_rows), self._bounds):
            def fail(r: int, c: int) -> None:
                name, i, field = spec.fields[c][0], r, part + spec.fields[c][0]
                if part == "monsters":  # the frame holding row r, and the monster's index in it
                    i = bisect.bisect_right(monster_ptr, r) - 1
                    field = f"monsters[{r - monster_ptr[i]}].{name}"
                    if name == "theme":
                        raise MugenFormatError(f"{self._where(ids[i])} has a monster with theme {values[r][c]}, "
                                               f"but only {self._n_monsters} monster names are listed")
                self._range_error(ids[i], field, values[r][c], low[c], high[c])

            block = self._block(values, spec, fail)
            bad = self._out_of_range(block, (low, high))
            if bad.any():
                fail(*np.argwhere(bad)[0])
            blocks.append(block)
        return FrameColumns(ids, blocks[0][:, 0], blocks[1], np.array(monster_ptr), blocks[2], np.array(coin_ptr),
                            self._coin_array(coins, ids))

    def _fast_rows(self, ids: list[int]) -> tuple | None:
        """The drawn values of frames ``ids`` as they are, when the frames have CoinRun's structure and every column
        holds only the types its field takes without conversion (``_Spec.fast_types``); else None."""
        (frame_spec, agent_spec, monster_spec), raw = _DRAWN, self._raw
        frame_rows, agent_rows, monster_rows, coins, monster_ptr, coin_ptr = [], [], [], [], [0], [0]
        frame_row, agent_row, monster_row = frame_spec.row, agent_spec.row, monster_spec.getter
        try:
            for k in ids:
                d = raw[k]
                monsters, eaten = d.get("monsters", _NO_ITEMS), d.get("coins_eaten", _NO_ITEMS)
                if type(monsters) is not list or type(eaten) is not list:
                    return None
                frame_rows.append(frame_row(d))
                agent_rows.append(agent_row(d["agent"]))
                try:
                    monster_rows += map(monster_row, monsters)
                except KeyError:  # optional fields left out
                    del monster_rows[monster_ptr[-1]:]
                    monster_rows += map(monster_spec.row, monsters)
                coins += eaten
                monster_ptr.append(len(monster_rows))
                coin_ptr.append(len(coins))
        except (KeyError, TypeError, IndexError, AttributeError):
            return None
        for spec, values in zip(_DRAWN, (frame_rows, agent_rows, monster_rows)):
            if not all(set(map(type, column)) <= types for column, types in zip(zip(*values), spec.fast_types)):
                return None
        return frame_rows, agent_rows, monster_rows, coins, monster_ptr, coin_ptr

    def _checked_rows(self, ids: list[int]) -> tuple:
        """:meth:`_fast_rows` for any frames: each field through :func:`_values` (converted, or named when wrong)."""
        frame_spec, agent_spec, monster_spec = _DRAWN
        frame_rows, agent_rows, monster_rows, coins, monster_ptr, coin_ptr = [], [], [], [], [0], [0]
        for k in ids:
            d = self._raw[k]
            agent, monsters, eaten = self._parts(d, k)
            frame_rows.append(_values(d, frame_spec, self._where(k)))
            agent_rows.append(_values(agent, agent_spec, self._where(k, ".agent")))
            monster_rows += [_values(m, monster_spec, self._where(k, j)) for j, m in enumerate(monsters)]
            coins += eaten
            monster_ptr.append(len(monster_rows))
            coin_ptr.append(len(coins))
        return frame_rows, agent_rows, monster_rows, coins, monster_ptr, coin_ptr

    def _coin_array(self, coins: list, ids: list[int]) -> np.ndarray:
        """The eaten coins as ``(c, 2)`` int64, checked: integer pairs inside the maze (else :meth:`_parts` of the
        first frame at fault raises)."""
        try:
            xy = np.array(coins, np.int64).reshape(-1, 2)
            exact = set(map(type, itertools.chain.from_iterable(coins))) <= {int} and xy.size == 2 * len(coins)
        except (TypeError, ValueError, OverflowError):
            exact = False
        if exact and self._inside_maze(xy):
            return xy
        for k in ids:  # find the frame at fault: its check raises with the message
            self._parts(self._raw[k], k)
        raise AssertionError("unreachable: a coin failed the array check but no frame's check")

    def _drawn_in_range(self, drawn: tuple[np.ndarray, ...] | None) -> bool:
        """Whether :meth:`FrameBytes.drawn` read the frames (not None) and every value and coin is in range."""
        if drawn is None:
            return False
        frame, agent, _, monsters, _, coins = drawn
        return within_bounds(frame, agent, monsters, coins, *self._flat_bounds, self._w, self._h)

    def _inside_maze(self, xy: np.ndarray) -> bool:
        """Whether every ``(x, y)`` row of ``xy`` is a cell of the maze."""
        return bool(((xy[:, 0] >= 0) & (xy[:, 0] < self._w) & (xy[:, 1] >= 0) & (xy[:, 1] < self._h)).all())

    @staticmethod
    def _out_of_range(block: np.ndarray, bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Where ``block``'s values lie outside their column's ``(low, high)`` bounds (NaN fails both)."""
        low, high = bounds
        return ~((block >= low) & (block <= high))

    @staticmethod
    def _block(values: list, spec: _Spec, fail) -> np.ndarray:
        """``values`` (rows of ``spec``'s fields) as a float64 array; ``fail(row, column)`` raises."""
        try:
            return np.array(values, np.float64).reshape(len(values), len(spec.fields))
        except OverflowError:  # an integer beyond float64 (JSON has no size limit)
            for r, row in enumerate(values):
                for c, value in enumerate(row):
                    if not -_FINITE <= value <= _FINITE:
                        fail(r, c)
            raise

    def _range_error(self, k: int, field: str, value: Any, low: float, high: float) -> None:
        """Raises the `MugenFormatError` for ``field`` (e.g. ``"monsters[1].x"``) of frame ``k``, outside
        ``[low, high]``."""
        if isinstance(value, float) and not math.isfinite(value):
            raise MugenFormatError(f"{self._where(k)}: field {field!r} is not finite ({value!r})")
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        if high == _FINITE:
            raise MugenFormatError(f"{self._where(k)}: field {field!r} is {shown}, too large for a number")
        raise MugenFormatError(f"{self._where(k)}: field {field!r} is {shown}, outside [{low:g}, {high:g}] "
                               f"(the range a {self._w}x{self._h} CoinRun level allows)")


@dataclass
class Game:
    """A parsed game JSON. ``maze[y][x]`` with ``y = 0`` the bottom row; eaten coins restored (see below)."""

    maze: list[str]
    frames: FrameList
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

    def __post_init__(self) -> None:
        if not isinstance(self.frames, FrameList):  # Frame objects or frame dicts
            raw = [asdict(f) if isinstance(f, Frame) else f for f in self.frames]
            self.frames = FrameList(raw, self.source or "<game>", len(self.flattened_monster_names), self.maze_w,
                                    self.maze_h)

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
        if not all(type(row) is str and len(row) == maze_w for row in maze):
            y = next(y for y, row in enumerate(maze) if not isinstance(row, str) or len(row) != maze_w)
            raise MugenFormatError(f"{source}: maze row {y} should be a string of maze_w={maze_w} tiles")
        if _OTHER_TILE.search("".join(maze)):
            y, bad = next((y, set(row) - TILE_CHARS) for y, row in enumerate(maze) if set(row) - TILE_CHARS)
            raise MugenFormatError(f"{source}: maze row {y} has unknown tile(s) {sorted(bad)}")
        frames = data["frames"]
        if not isinstance(frames, (list, FrameBytes)) or not len(frames):
            raise MugenFormatError(f"{source}: 'frames' should be a non-empty list")
        for key in ("background_themes", "ground_themes", "agent_themes"):
            if not isinstance(data[key], list) or not all(isinstance(v, str) for v in data[key]):
                raise MugenFormatError(f"{source}: {key!r} should be a list of strings")
        names = data["monster_names"]
        if not isinstance(names, Mapping) or not all(
            isinstance(v, list) and all(isinstance(n, str) for n in v) for v in names.values()
        ):
            raise MugenFormatError(f"{source}: 'monster_names' should map 'ground'/'walking'/'flying' to name lists")
        lists = [(key, tuple(data[key])) for key in ("background_themes", "ground_themes", "agent_themes")]
        outside = _outside_asset_folder(tuple(lists + [(f"monster_names.{k}", tuple(v)) for k, v in names.items()]))
        if outside:
            key, value = outside
            raise MugenFormatError(f"{source}: {key} entry {value!r} is not a path inside the asset folder")
        n_monsters = sum(len(v) for k, v in names.items() if k in ("ground", "walking", "flying"))
        frames = FrameList(frames, source, n_monsters, maze_w, maze_h)
        game = cls(
            maze=list(maze), frames=frames,
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
        if not lazy:
            frames[:]  # parse and validate every frame now
        if restore_eaten_coins:
            game.restore_eaten_coins()
        return game

    def restore_eaten_coins(self) -> None:
        """Put coins eaten by the last frame back into empty maze cells (as gold coins, ``"1"``)."""
        coins = self.frames.eaten_coins(len(self.frames) - 1)
        rows = {y: list(self.maze[y]) for _, y in coins}  # only the rows that change are rebuilt
        for x, y in coins:
            if rows[y][x] == ".":
                rows[y][x] = "1"
        self.maze = ["".join(rows[y]) if y in rows else row for y, row in enumerate(self.maze)]


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file with orjson (3x faster than json on game JSONs, a large part of a clip's cost).

    Raises:
        MugenFormatError: the file is not valid JSON (e.g. truncated, or NaN / Infinity, which JSON does not have).
    """
    with open(path, "rb") as f:
        return _decode_json(f.read(), path)


def _decode_json(document: bytes, path: str | os.PathLike) -> Any:
    try:
        return orjson.loads(document)
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
    try:  # no stat first: on a dataset row each system call counts
        with open(path, "rb") as f:
            document = f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise FileNotFoundError(
            f"MUGEN game JSON {path} not found. If the release JSON's metadata.data_folder is wrong on this "
            "machine, pass data_folder= to load_mugen."
        ) from None
    split = split_frames(document)  # the frames kept as bytes: a clip reads its drawn values from them
    if split is None:
        data = _decode_json(document, path)
    else:
        data = _decode_json(split[0], path)
        data["frames"] = split[1]
    return Game.from_dict(data, source=path, restore_eaten_coins=restore_eaten_coins, lazy=lazy)
