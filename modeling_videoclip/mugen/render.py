"""A compiled renderer for MUGEN / CoinRun game JSONs, byte-identical to the reference (PIL-based)
``examples/mugen/data/coinrun/construct_from_json.py`` of facebookresearch/multimodal and about ten times faster:
sprites are PIL-resized once into one flat atlas and :mod:`.kernels` replays the reference's pastes in its order."""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import kernels
from .assets import SHIELD_FILE, TILE_FILES, alien_file, ground_file, monster_file, resolve_asset_path
from .game import (
    AGENT_ANIM_FREQ,
    AGENT_POSES,
    DEATH_ANIM_LENGTH,
    MONSTER_DEATH_ANIM_LENGTH,
    ZOOM_DY_RATIO,
    FrameColumns,
    Game,
    agent_pose_index,
    monster_walk1,
    walk1_phase,
)

__all__ = ["MugenRenderer", "SEMANTIC_LABELS", "NUM_SEGMENTATION_LABELS", "ZOOM_DY_RATIO"]

LAVA = frozenset("|^")

#: Segmentation labels of the reference's 22-label map (``max_label = 21``).
SEMANTIC_LABELS: dict[str, int] = {
    "background": 0, "lava": 1, "lava_top": 2, "wall": 3, "wall_top": 4, "cliff_left": 5, "cliff_right": 6,
    "ladder": 7, "crate": 8, "wormPink": 9, "ladybug": 10, "snail": 11, "mouse": 12, "slimeBlue": 13,
    "slimeBlock": 14, "bee": 15, "sawHalf": 16, "barnacle": 17, "frog": 18, "coin": 19, "gem": 20, "agent": 21,
}
NUM_SEGMENTATION_LABELS = 22
_TILE_LABELS: dict[str, int] = {
    "A": 3, "S": 4, "a": 5, "b": 6, "1": 19, "2": 20, "#": 8, "$": 8, "&": 8, "%": 8, "|": 1, "^": 2, "=": 7,
}
_AGENT_LABEL = 21  # also the shield's
_MONSTER_POSES = ("", "_move", "_dead")  # sprite name suffixes
_SIZE_KEY = 1 << 16  # sprite heights are below this (cells are at most resolution * 6 / maze_w px)
_AGENT_SLOT = 1 << 20  # the agent is pasted after a frame's monsters, then the shield


class _Sprite:
    """A sprite as the reference holds it after loading (resized, flipped, alpha binarised)."""

    __slots__ = ("image", "rgb", "alpha", "binary", "aspect_ratio", "index", "_fits")

    def __init__(self, image: Image.Image, aspect_ratio: float = 1.0):
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGB")  # what PIL's paste does to other modes (and no mask is used)
        self.image = image
        arr = np.asarray(image)
        self.rgb = np.ascontiguousarray(arr[..., :3])
        self.alpha: np.ndarray | None = np.ascontiguousarray(arr[..., 3]) if image.mode == "RGBA" else None
        self.binary = self.alpha is None or bool(np.isin(self.alpha, (0, 255)).all())
        self.aspect_ratio = aspect_ratio
        self.index: int | None = None  # id in the atlas of the bank that made this sprite
        self._fits: dict[tuple[int, int, bool], _Sprite] = {}

    def fit(self, w: int, h: int, nearest: bool = False) -> _Sprite:
        """Resized to ``(w, h)`` as the reference (PIL's default bicubic for RGB frames, nearest for labels)."""
        if (w, h) == self.image.size:
            return self
        key = (w, h, nearest)
        if key not in self._fits:
            img = self.image.resize((w, h), resample=Image.NEAREST if nearest else None)
            self._fits[key] = _Sprite(img, self.aspect_ratio)
        return self._fits[key]

    def faded(self, transparency: int) -> _Sprite:
        """Alpha lowered by ``transparency`` (clipped at 0), for the dying agent."""
        key = (-1, transparency, False)
        if key not in self._fits:
            arr = np.array(self.image, dtype=np.int16)
            arr[..., 3] = np.clip(arr[..., 3] - transparency, 0, None)
            self._fits[key] = _Sprite(Image.fromarray(arr.astype(np.uint8), "RGBA"), self.aspect_ratio)
        return self._fits[key]


class _Atlas:
    """Every sprite of one cell size in one flat buffer, in the layout :func:`kernels.paste_rgb` reads. Sprites are
    only ever appended, so a snapshot stays valid while later sprites are added."""

    def __init__(self):
        self._buffer = np.empty(1 << 20, np.uint8)
        self._used = 0
        self._rows: list[tuple[int, int, int, int]] = []
        self._table = np.zeros((0, 4), np.int64)
        self._lock = threading.Lock()

    def index(self, sprite: _Sprite) -> int:
        """The atlas id of ``sprite``, adding it on first use."""
        if sprite.index is None:
            with self._lock:
                if sprite.index is None:
                    sprite.index = self._add(sprite)
        return sprite.index

    def _add(self, sprite: _Sprite) -> int:
        h, w = sprite.rgb.shape[:2]
        planes = [sprite.rgb.reshape(-1)]
        if sprite.alpha is None:
            kind = kernels.OPAQUE
        else:
            kind = kernels.BINARY if sprite.binary else kernels.BLENDED
            planes.append(np.repeat(sprite.alpha.reshape(-1), 3))
        size = sum(p.size for p in planes)
        if self._used + size > self._buffer.size:
            grown = np.empty(max(2 * self._buffer.size, self._used + size), np.uint8)
            grown[:self._used] = self._buffer[:self._used]
            self._buffer = grown  # snapshots keep the old buffer alive
        offset = self._used
        for p in planes:
            self._buffer[self._used:self._used + p.size] = p
            self._used += p.size
        self._rows.append((offset, h, w, kind))
        self._table = np.array(self._rows, np.int64)
        return len(self._rows) - 1

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """``(buffer, table)`` covering every sprite added so far."""
        with self._lock:
            return self._buffer, self._table


class _SpriteBank:
    """Loads sprites for one asset folder and one cell size, each at most once, and keeps their atlas."""

    def __init__(self, asset_dir: str, kx: float, ky: float):
        self.asset_dir, self.kx, self.ky = asset_dir, kx, ky
        self.atlas = _Atlas()
        self._cache: dict[tuple[str, str, bool], _Sprite] = {}
        self._pieces: dict[tuple, _Sprite] = {}
        self._lock = threading.Lock()

    def get(self, relative: str, kind: str, flip: bool = False, resize: bool = True) -> _Sprite:
        key = (relative, kind, flip)
        sprite = self._cache.get(key)
        if sprite is None:
            with self._lock:
                sprite = self._cache.get(key) or self._load(relative, kind, flip, resize)
                self._cache[key] = sprite
        return sprite

    def lava_piece(self, relative: str, crop: tuple[int, int, int, int], w: int, h: int, nearest: bool) -> _Sprite:
        """A crop of the (full-size) lava sprite resized to ``(w, h)``, as the reference draws lava halves."""
        key = (relative, crop, w, h, nearest)
        piece = self._pieces.get(key)
        if piece is None:
            source = self.get(relative, "world", resize=False)
            piece = _Sprite(source.image.crop(crop)).fit(w, h, nearest=nearest)
            self._pieces[key] = piece
        return piece

    def _load(self, relative: str, kind: str, flip: bool, resize: bool) -> _Sprite:
        path = resolve_asset_path(self.asset_dir, relative)
        with Image.open(path) as f:
            image = f.copy()
        aspect = image.size[1] / image.size[0]
        kx, ky = self.kx, self.ky
        scaled = {"world": (kx + 0.5, ky + 0.5), "alien": (kx, aspect * ky), "shield": (kx * 1.15, ky * 2.1)}
        w, h = scaled.get(kind, (kx, ky))  # monster, background: one cell
        if resize:  # lava (world, resize=False) stays full size
            image = image.resize((math.ceil(w), math.ceil(h)))
        if flip:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        if kind != "background" and image.mode == "RGBA":  # binarise alpha, as the reference
            arr = np.array(image)
            arr[..., 3] = np.where(arr[..., 3] > 0, 255, 0)
            image = Image.fromarray(arr, "RGBA")
        return _Sprite(image, aspect)


@dataclass
class _Camera:
    """Per-resolution and zoom constants, computed with the reference's expressions."""

    res: int
    zoom: float
    kx: float
    ky: float
    center: int
    dy: float
    tw: int
    th: int

    @classmethod
    def make(cls, res: int, zoom: float, maze_w: int) -> _Camera:
        if zoom not in ZOOM_DY_RATIO:
            raise ValueError(f"zoom level {zoom} is not supported (CoinRun's are {sorted(ZOOM_DY_RATIO)})")
        kx = ky = zoom * res / maze_w
        center = (res - 1) // 2
        return cls(res, zoom, kx, ky, center, -center + ZOOM_DY_RATIO[zoom] * ky,
                   math.ceil(kx + 0.5 + 0.2), math.ceil(ky + 0.5 + 0.2))


_LAVA_KIND = {"|": 1, "^": 2}  # row of kernels.tile_ops' lava_size


class _TileSet:
    """The tile sprites of one ground theme at one cell size, as per-character lookup tables (filled on first
    use) from which :class:`_Level` builds the grids that :func:`kernels.tile_ops` reads."""

    def __init__(self, ground_theme: str, cam: _Camera, bank: _SpriteBank):
        self.theme, self.cam, self.bank = ground_theme, cam, bank
        self.src = {False: np.full(256, -1, np.int64), True: np.full(256, -1, np.int64)}
        self.value = np.zeros(256, np.int64)
        self.lava = np.zeros(256, np.int8)
        self.lava_size = np.zeros((3, 2), np.int64)
        self.lava_files: dict[int, str] = {}
        self._lava_ids: dict[bool, dict[int, int]] = {False: {}, True: {}}
        self._lock = threading.Lock()

    def ensure(self, chars: set) -> None:
        """Load the sprites of the tile characters ``chars`` not loaded yet."""
        missing = [ch for ch in chars if ch != "." and self.src[False][ord(ch)] < 0]
        if missing:
            with self._lock:
                for ch in missing:
                    self._load(ch)

    def _load(self, ch: str) -> None:
        relative = ground_file(self.theme, ch) if ch in "ASab" else TILE_FILES[ch]
        code = ord(ch)
        if ch in LAVA:
            kind = _LAVA_KIND[ch]
            size = self.bank.get(relative, "world", resize=False).image.size
            if max(size) >= kernels.LAVA_KEY_LIMIT:
                raise ValueError(f"lava sprite {relative} is {size} px; lava sprites must be under 4096 px")
            self.lava_files[kind] = relative
            self.lava_size[kind] = size
            self.lava[code] = kind
            labels = rgb = 0  # any id >= 0: the kernel draws lava from its two halves
        else:
            sprite = self.bank.get(relative, "world")
            rgb = self.bank.atlas.index(sprite.fit(self.cam.tw, self.cam.th))
            labels = self.bank.atlas.index(sprite.fit(self.cam.tw, self.cam.th, nearest=True))
        self.value[code] = _TILE_LABELS[ch]
        self.src[True][code] = labels
        self.src[False][code] = rgb  # last: marks the character as loaded

    def lava_ids(self, keys: np.ndarray, labels: bool) -> list[int]:
        """Atlas ids of the lava halves named by ``keys`` (see :func:`kernels.lava_key`), made on first use."""
        known = self._lava_ids[labels]
        ids = []
        for key in keys.tolist():
            hit = known.get(key)
            if hit is None:
                kind, x0, x1, w, h = kernels.decode_lava_key(key)
                height = int(self.lava_size[kind][1])
                piece = self.bank.lava_piece(self.lava_files[kind], (x0, 0, x1, height), w, h, labels)
                hit = known[key] = self.bank.atlas.index(piece)
            ids.append(hit)
        return ids


class _Level:
    """One level (maze + ground theme) at one cell size, as the grids :func:`kernels.tile_ops` reads."""

    def __init__(self, maze: Sequence[str], tiles: _TileSet):
        self.tiles = tiles
        flat = "".join(maze)
        tiles.ensure(set(flat))
        codes = np.frombuffer(flat.encode("ascii"), np.uint8).reshape(len(maze), len(maze[0]))
        self.tile_src = {labels: lut[codes] for labels, lut in tiles.src.items()}
        self.tile_value = tiles.value[codes]
        self.lava_kind = tiles.lava[codes]


class MugenRenderer:
    """Render MUGEN clips (RGB frames and segmentation maps) from game JSONs and an asset folder.

    Args:
        asset_dir: folder with the CoinRun sprites (MUGEN_baseline's ``lib/data/coinrun/assets``, or the
            stand-ins from :func:`~modeling_videoclip.mugen.make_stand_in_assets`).
        resolution: output height and width in pixels (256, MUGEN's default; 224 is what VideoCLIP uses).
        bbox_smap_for_agent: draw the agent and shield as top-trimmed boxes in segmentation maps (True, the
            reference dataset's default); False uses their sprite masks.
        bbox_smap_for_monsters: draw monsters as boxes in segmentation maps (True, the reference default).
        level_cache_size: how many levels keep their tile grids cached (16).

    Cheap to pickle (caches are rebuilt lazily in each process), so it can live in a dataset transform used by
    DataLoader workers; rendering releases the GIL while pasting.
    """

    def __init__(self, asset_dir: str | os.PathLike, resolution: int = 256, *, bbox_smap_for_agent: bool = True,
                 bbox_smap_for_monsters: bool = True, level_cache_size: int = 16):
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 16:
            raise ValueError(f"resolution must be an integer >= 16, got {resolution!r}")
        self.asset_dir = os.fspath(asset_dir)
        if not os.path.isdir(self.asset_dir):
            raise FileNotFoundError(
                f"MUGEN asset folder {self.asset_dir} does not exist; pass the folder holding kenney/, "
                "kenneyLarge/, backgrounds/ and bubble_shield.png (or make stand-ins with make_stand_in_assets)."
            )
        self.resolution, self.level_cache_size = resolution, level_cache_size
        self.bbox_smap_for_agent, self.bbox_smap_for_monsters = bbox_smap_for_agent, bbox_smap_for_monsters
        self._init_caches()

    def _init_caches(self) -> None:
        self._banks: dict[tuple[float, float], _SpriteBank] = {}
        self._levels: OrderedDict[tuple, _Level] = OrderedDict()
        self._tile_sets: dict[tuple, _TileSet] = {}
        self._backgrounds: dict[tuple[str, float], np.ndarray] = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        caches = ("_banks", "_levels", "_tile_sets", "_backgrounds", "_lock")
        return {k: v for k, v in self.__dict__.items() if k not in caches}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_caches()

    def _level(self, game: Game, cam: _Camera) -> _Level:
        key = (tuple(game.maze), game.ground_theme, cam.kx, cam.zoom)
        with self._lock:
            level = self._levels.get(key)
            if level is not None:
                self._levels.move_to_end(key)
                return level
            if (cam.kx, cam.ky) not in self._banks:
                self._banks[cam.kx, cam.ky] = _SpriteBank(self.asset_dir, cam.kx, cam.ky)
            if key[1:] not in self._tile_sets:
                self._tile_sets[key[1:]] = _TileSet(game.ground_theme, cam, self._banks[cam.kx, cam.ky])
            tiles = self._tile_sets[key[1:]]
        level = _Level(game.maze, tiles)
        with self._lock:
            self._levels[key] = level
            while len(self._levels) > self.level_cache_size:
                self._levels.popitem(last=False)
        return level

    def _background(self, game: Game) -> np.ndarray:
        """The background sprite as ``(H, W * 3)`` rows."""
        zx = self.resolution * game.zoom
        key = (game.background_file, zx)
        bg = self._backgrounds.get(key)
        if bg is None:
            # size (ceil(zx), ceil(zy)) and no alpha binarisation, as the reference's background asset
            rgb = _SpriteBank(self.asset_dir, zx, zx).get(game.background_file, "background").rgb
            bg = self._backgrounds[key] = rgb.reshape(rgb.shape[0], -1)
        return bg

    def render(self, game: Game, frame_ids: Sequence[int] | None = None) -> np.ndarray:
        """Render RGB frames: ``uint8`` array of shape ``(T, resolution, resolution, 3)``.

        Args:
            game: a parsed game (see :func:`~modeling_videoclip.mugen.load_game`).
            frame_ids: which frames (default: all).
        """
        n, res, atlas, table, ops, sprites = self._ops(game, frame_ids, labels=False)
        out = np.empty((n, res, res, 3), np.uint8)  # every pixel is written (CLEAR ops)
        kernels.paste_rgb(out.reshape(n, res, res * 3), atlas, table, self._background(game), ops, sprites)
        return out

    def render_segmentation(self, game: Game, frame_ids: Sequence[int] | None = None) -> np.ndarray:
        """Render 22-label segmentation maps (:data:`SEMANTIC_LABELS`): ``uint8`` ``(T, resolution, resolution)``.

        Args:
            game: a parsed game.
            frame_ids: which frames (default: all).
        """
        n, res, atlas, table, ops, sprites = self._ops(game, frame_ids, labels=True)
        out = np.zeros((n, res, res), np.uint8)
        kernels.paste_labels(out, atlas, table, ops, sprites)
        return out

    def _ops(self, game: Game, frame_ids: Sequence[int] | None, labels: bool):
        """``(n_frames, resolution, atlas, table, tile_ops, sprite_ops)``: the paste operations and their atlas."""
        frames = self._frame_columns(game, frame_ids)
        cam = _Camera.make(self.resolution, game.zoom, game.maze_w)
        level = self._level(game, cam)
        bg_h, bg_w3 = (0, 0) if labels else self._background(game).shape  # labels have no background
        agent_x, agent_y = (np.ascontiguousarray(frames.agent_field(name)) for name in ("x", "y"))
        ops = kernels.tile_ops(agent_x, agent_y, np.ascontiguousarray(frames.state_time), frames.coin_ptr,
                               frames.coins, level.tile_src[labels], level.tile_value, level.lava_kind,
                               level.tiles.lava_size, cam.res, cam.zoom, cam.kx, cam.ky, ZOOM_DY_RATIO[cam.zoom],
                               float(game.bgzoom), bg_w3 // 3, bg_h, not labels)
        lava = np.flatnonzero(ops[:, 1] <= -kernels.LAVA_BASE)
        if len(lava):
            ops[lava, 1] = level.tiles.lava_ids(-ops[lava, 1] - kernels.LAVA_BASE, labels)
        sprites = self._sprite_ops(game, frames, cam, level.tiles.bank, labels)
        return len(frames), cam.res, *level.tiles.bank.atlas.snapshot(), ops, sprites

    @staticmethod
    def _frame_columns(game: Game, frame_ids: Sequence[int] | None) -> FrameColumns:
        if frame_ids is None:
            return game.frames.columns(range(len(game.frames)))
        if not len(frame_ids):
            raise ValueError("frame_ids is empty")
        return game.frames.columns(frame_ids)

    def _sprite_ops(self, game: Game, frames: FrameColumns, cam: _Camera, bank: _SpriteBank,
                    labels: bool) -> np.ndarray:
        """Paste operations for the monsters, then the agent, then the shield, of each frame: sprites for RGB
        frames; for segmentation maps, boxes or sprite masks (see ``bbox_smap_*``). Positions are the reference's
        float expressions, evaluated in the same order on arrays; sprites are chosen once per distinct look."""
        dx = -frames.agent_field("x") * cam.kx + cam.center - 0.5 * cam.kx  # the reference's camera offset
        parts = [self._monster_ops(game, frames, cam, bank, labels, dx), *self._agent_ops(game, frames, cam, bank,
                                                                                           labels, dx)]
        frame, slot, ops = (np.concatenate(column) for column in zip(*parts))
        return ops[np.lexsort((slot, frame))]

    def _monster_ops(self, game: Game, frames: FrameColumns, cam: _Camera, bank: _SpriteBank, labels: bool,
                     dx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(frame, slot in the frame, ops)`` of the monsters (shrinking into the ground while dying)."""
        field = frames.monster_field
        owner = np.repeat(np.arange(len(frames)), np.diff(frames.monster_ptr))
        slot = np.arange(len(owner)) - frames.monster_ptr[owner]
        dead = field("is_dead") != 0
        shrink = np.where(dead, (MONSTER_DEATH_ANIM_LENGTH - np.maximum(0, field("monster_dying_frame_cnt"))) * 0.8
                          / MONSTER_DEATH_ANIM_LENGTH, 0.0)  # 0.0 leaves a live monster's rect as the reference's
        x = np.floor(cam.kx * field("x") + dx[owner])
        y = np.floor(cam.res - cam.ky * field("y") + cam.dy + cam.ky * shrink)
        w, h = math.ceil(cam.kx), np.ceil(cam.ky * (1 - shrink)).astype(np.int64)
        walk1 = monster_walk1(field("is_jumping") != 0, field("vy"), field("time"), field("anim_freq"))
        pose = np.where(dead, 2, np.where(walk1, 0, 1))  # index into _MONSTER_POSES
        look = ((field("theme").astype(np.int64) * 3 + pose) * 2 + (field("vx") > 0)) * _SIZE_KEY + h
        looks, inverse = np.unique(look, return_inverse=True)
        names = game.flattened_monster_names
        source, value = np.empty(len(looks), np.int64), np.empty(len(looks), np.int64)
        for u, key in enumerate(looks.tolist()):
            key, height = divmod(key, _SIZE_KEY)
            key, flip = divmod(key, 2)
            theme, pose_index = divmod(key, 3)
            sprite = bank.get(monster_file(names[theme], _MONSTER_POSES[pose_index]), "monster", flip=bool(flip))
            value[u] = SEMANTIC_LABELS.get(names[theme], 0) if labels else 0
            if labels and self.bbox_smap_for_monsters:
                source[u] = kernels.FILL
            else:
                source[u] = bank.atlas.index(sprite.fit(w, height, nearest=labels))
        boxes = labels and self.bbox_smap_for_monsters
        size = (np.full(len(h), w), h) if boxes else (np.zeros_like(h), np.zeros_like(h))
        return owner, slot, _op_rows(owner, source[inverse], x, y, *size, value[inverse])

    def _agent_ops(self, game: Game, frames: FrameColumns, cam: _Camera, bank: _SpriteBank, labels: bool,
                   dx: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(frame, slot, ops)`` of the agent (fading while dying) and of its shield (in power-up mode)."""
        field = frames.agent_field
        ax, ay, res = field("x"), field("y"), cam.res
        killed = field("is_killed") != 0
        pose = agent_pose_index(killed, field("ladder") != 0, walk1_phase(field("time_alive"), AGENT_ANIM_FREQ),
                                field("vy"), field("spring"), field("vx"))
        transparency = np.where(killed, (DEATH_ANIM_LENGTH + 1 - field("killed_animation_frame_cnt")) * 12, 0)
        transparency = transparency.astype(np.int64)
        drawn = np.flatnonzero(transparency <= 255)
        look = (pose[drawn] * 2 + (field("vx")[drawn] < 0)) * 512 + np.where(killed[drawn], transparency[drawn], 256)
        looks, inverse = np.unique(look, return_inverse=True)
        source, aspect, height = (np.empty(len(looks), dtype) for dtype in (np.int64, np.float64, np.int64))
        w = math.ceil(cam.kx)
        for u, key in enumerate(looks.tolist()):
            key, fade = divmod(key, 512)
            pose_index, flip = divmod(key, 2)
            sprite = bank.get(alien_file(game.agent_theme, AGENT_POSES[pose_index]), "alien", flip=bool(flip))
            aspect[u], height[u] = sprite.aspect_ratio, math.ceil(sprite.aspect_ratio * cam.ky)
            sprite = sprite.fit(w, int(height[u]), nearest=labels)
            if not labels and fade != 256:
                sprite = sprite.faded(fade)
            source[u] = bank.atlas.index(sprite)
        x = np.floor(cam.kx * ax[drawn] + dx[drawn])
        y = np.floor(res - cam.ky * (ay[drawn] + aspect[inverse] - 1) + cam.dy)
        agent = self._person_ops(drawn, source[inverse], x, y, w, height[inverse], labels, 0.8)
        shielded = np.flatnonzero(field("power_up_mode") != 0)
        x = np.floor(cam.kx * ax[shielded] + dx[shielded] - 7 * res / 1024)
        y = np.floor(res - cam.ky * (ay[shielded] + 1) + cam.dy + 8 * res / 1024)
        y += np.where(pose[shielded] == AGENT_POSES.index("duck"), math.floor(8 * res / 1024), 0)
        w, h = math.ceil(cam.kx * 1.15), math.ceil(cam.ky * 2.1)
        shield = bank.atlas.index(bank.get(SHIELD_FILE, "shield").fit(w, h, nearest=labels))
        shield = self._person_ops(shielded, np.full(len(shielded), shield), x, y, w, np.full(len(shielded), h),
                                  labels, 0.45)
        return [(drawn, np.full(len(drawn), _AGENT_SLOT), agent),
                (shielded, np.full(len(shielded), _AGENT_SLOT + 1), shield)]

    def _person_ops(self, frame: np.ndarray, source: np.ndarray, x: np.ndarray, y: np.ndarray, w: int,
                    h: np.ndarray, labels: bool, cut_ratio: float) -> np.ndarray:
        """Ops of the agent or the shield: its sprite, or in segmentation maps its label, as a box when
        ``bbox_smap_for_agent`` (the sprite's top part is empty: the box starts ``cut_ratio * w`` rows lower)."""
        zeros = np.zeros(len(frame), np.int64)
        if not labels:
            return _op_rows(frame, source, x, y, zeros, zeros, zeros)
        if self.bbox_smap_for_agent:
            cut = int(cut_ratio * w)
            return _op_rows(frame, np.full(len(frame), kernels.FILL), x, y + cut, np.full(len(frame), w), h - cut,
                            zeros + _AGENT_LABEL)
        return _op_rows(frame, source, x, y, zeros, zeros, zeros + _AGENT_LABEL)


def _op_rows(*columns: np.ndarray) -> np.ndarray:
    """``(n, 7)`` int64 paste operations from their 7 columns (see :func:`kernels.tile_ops`)."""
    return np.stack([np.asarray(c, np.int64) for c in columns], axis=1).reshape(-1, 7)
