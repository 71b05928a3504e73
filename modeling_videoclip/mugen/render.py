"""A compiled renderer for MUGEN / CoinRun game JSONs, byte-identical to the reference (PIL-based)
``examples/mugen/data/coinrun/construct_from_json.py`` of facebookresearch/multimodal and about ten times faster:
sprites are PIL-resized once into one flat atlas and :mod:`.kernels` replays the reference's pastes in its order."""

from __future__ import annotations

import math
import os
import sys
import sysconfig
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import kernels
from .assets import SHIELD_FILE, TILE_FILES, alien_file, ground_file, monster_file, resolve_asset_path
from .game import AGENT_POSES, ZOOM_DY_RATIO, FrameColumns, Game, max_dying_count

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
_MONSTER_POSES = ("", "_move", "_dead")  # sprite name suffixes, by kernels.sprite_ops' pose index


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


#: Output frames start at a multiple of this many bytes (a cache line), so the kernels' streamed stores
#: (:func:`.jit.stream_store`) reach every frame of a clip from its first byte.
OUTPUT_ALIGNMENT = 64


def _nbytes(shape: tuple[int, ...], dtype: type) -> int:
    """The bytes an array of `shape` and `dtype` holds."""
    return math.prod(shape) * np.dtype(dtype).itemsize


def _aligned_memory(nbytes: int) -> np.ndarray:
    """A uint8 buffer with room for `nbytes` from an OUTPUT_ALIGNMENT boundary (:func:`_aligned_view`)."""
    return np.empty(nbytes + OUTPUT_ALIGNMENT, np.uint8)


def _aligned_view(memory: np.ndarray, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """An array of `shape` and `dtype` in `memory` (from :func:`_aligned_memory`), starting on the alignment
    boundary. Its ``base`` is `memory` itself (numpy points views at the array owning the data)."""
    start = -memory.ctypes.data % OUTPUT_ALIGNMENT
    return memory[start:start + _nbytes(shape, dtype)].view(dtype).reshape(shape)


def aligned_empty(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """``np.empty(shape, dtype)`` starting on an OUTPUT_ALIGNMENT boundary."""
    return _aligned_view(_aligned_memory(_nbytes(shape, dtype)), shape, dtype)


def _refs(buffers: list[np.ndarray], i: int) -> int:
    """The reference count of ``buffers[i]``, measured the same way wherever it is compared."""
    return sys.getrefcount(buffers[i])


class _OutputPool:
    """Output arrays handed out again once nothing refers to them: a fresh clip-sized array costs about as much to
    fault in (the kernel zeroes its pages: ~0.3 ms for a 32-frame clip at 256) as drawing it, and a DataLoader
    worker allocates one per row. A buffer counts as free when its reference count is back to what the pool alone
    holds: every view, memoryview or tensor of an output keeps a reference to the buffer (its ``base``). Up to
    ``max_bytes`` are kept; off where reference counts are not exact (no ``sys.getrefcount``, free-threaded builds).
    """

    def __init__(self, max_bytes: int):
        exact = hasattr(sys, "getrefcount") and not sysconfig.get_config_var("Py_GIL_DISABLED")
        self.max_bytes = max_bytes if exact else 0
        self._buffers: list[np.ndarray] = []  # the memory (the ``base`` of every output made in it)
        self._arrays: list[np.ndarray] = []  # the aligned array in each buffer, as it is handed out (views of it)
        self._idle: list[int] = []  # each buffer's reference count while no output uses it
        self._lock = threading.Lock()

    def empty(self, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        with self._lock:  # no local name holds a buffer while counting: the count is the same as when it was added
            for i in range(len(self._buffers)):
                if _refs(self._buffers, i) == self._idle[i] and self._arrays[i].shape == shape \
                        and self._arrays[i].dtype == dtype:
                    return self._arrays[i].view()
            size = _nbytes(shape, dtype)
            if sum(b.nbytes for b in self._buffers) + size > self.max_bytes:
                return aligned_empty(shape, dtype)
            self._buffers.append(_aligned_memory(size))
            self._arrays.append(_aligned_view(self._buffers[-1], shape, dtype))
            self._idle.append(_refs(self._buffers, len(self._buffers) - 1))
            return self._arrays[-1].view()


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
        output_pool_bytes: how much memory of returned frames may be reused for later ones once nothing refers to
            them (128 MiB: 20 clips of 32 frames at 256; 0 turns reuse off).

    Cheap to pickle (caches are rebuilt lazily in each process), so it can live in a dataset transform used by
    DataLoader workers; rendering releases the GIL while pasting.
    """

    def __init__(self, asset_dir: str | os.PathLike, resolution: int = 256, *, bbox_smap_for_agent: bool = True,
                 bbox_smap_for_monsters: bool = True, level_cache_size: int = 16, output_pool_bytes: int = 128 << 20):
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 16:
            raise ValueError(f"resolution must be an integer >= 16, got {resolution!r}")
        self.asset_dir = os.fspath(asset_dir)
        if not os.path.isdir(self.asset_dir):
            raise FileNotFoundError(
                f"MUGEN asset folder {self.asset_dir} does not exist; pass the folder holding kenney/, "
                "kenneyLarge/, backgrounds/ and bubble_shield.png (or make stand-ins with make_stand_in_assets)."
            )
        self.resolution, self.level_cache_size = resolution, level_cache_size
        self.output_pool_bytes = output_pool_bytes
        self.bbox_smap_for_agent, self.bbox_smap_for_monsters = bbox_smap_for_agent, bbox_smap_for_monsters
        self._init_caches()

    def _init_caches(self) -> None:
        self._banks: dict[tuple[float, float], _SpriteBank] = {}
        self._levels: OrderedDict[tuple, _Level] = OrderedDict()
        self._tile_sets: dict[tuple, _TileSet] = {}
        self._backgrounds: dict[tuple[str, float], np.ndarray] = {}
        self._look_tables: dict[tuple, _Looks] = {}
        self._outputs = _OutputPool(self.output_pool_bytes)
        self._canvases = threading.local()  # per thread: rendering releases the GIL
        self._lock = threading.Lock()

    def __getstate__(self):
        caches = ("_banks", "_levels", "_tile_sets", "_backgrounds", "_look_tables", "_outputs", "_canvases", "_lock")
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
        out = self._outputs.empty((n, res, res, 3), np.uint8)  # every pixel is written (CLEAR ops)
        kernels.paste_rgb(out.reshape(n, res, res * 3), atlas, table, self._background(game), ops, sprites,
                          self._canvas())
        return out

    def _canvas(self) -> np.ndarray:
        """This thread's ``(R, R * 3)`` scratch frame for :func:`kernels.paste_rgb`."""
        canvas = getattr(self._canvases, "rgb", None)
        if canvas is None:
            canvas = self._canvases.rgb = aligned_empty((self.resolution, self.resolution * 3), np.uint8)
        return canvas

    def render_segmentation(self, game: Game, frame_ids: Sequence[int] | None = None) -> np.ndarray:
        """Render 22-label segmentation maps (:data:`SEMANTIC_LABELS`): ``uint8`` ``(T, resolution, resolution)``.

        Args:
            game: a parsed game.
            frame_ids: which frames (default: all).
        """
        n, res, atlas, table, ops, sprites = self._ops(game, frame_ids, labels=True)
        out = self._outputs.empty((n, res, res), np.uint8)
        out.fill(0)
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
        """Paste operations for the monsters, then the agent, then the shield, of each frame
        (:func:`kernels.sprite_ops`): sprites for RGB frames; for segmentation maps, boxes or sprite masks (see
        ``bbox_smap_*``)."""
        looks = self._looks(game, cam, bank, labels)
        while True:
            ops, missing_monsters, missing_agent = kernels.sprite_ops(
                frames.agent, frames.monsters, frames.monster_ptr, cam.kx, cam.ky, cam.res, cam.center, cam.dy, labels,
                self.bbox_smap_for_monsters, self.bbox_smap_for_agent, SEMANTIC_LABELS["agent"], looks.monster_src,
                looks.monster_label, looks.agent_src, looks.agent_aspect, looks.agent_height, looks.shield_src,
                looks.shield_w, looks.shield_h)
            if not (len(missing_monsters) or len(missing_agent)):
                return ops
            looks.add(missing_monsters, missing_agent)

    def _looks(self, game: Game, cam: _Camera, bank: _SpriteBank, labels: bool) -> _Looks:
        names = tuple(game.flattened_monster_names)
        slots = 2 + max_dying_count(game.maze_h)  # live, then each dying count
        key = (cam.kx, cam.ky, game.agent_theme, names, slots, labels)
        with self._lock:
            looks = self._look_tables.get(key)
            if looks is None:
                looks = self._look_tables[key] = _Looks(bank, cam, game.agent_theme, names, slots, labels)
        return looks


class _Looks:
    """The atlas ids of the sprites of one game's cast (agent theme, monster names) at one cell size, by look
    (:func:`kernels.sprite_ops`' tables), made on first use."""

    def __init__(self, bank: _SpriteBank, cam: _Camera, agent_theme: str, names: tuple[str, ...], slots: int,
                 labels: bool):
        self.bank, self.cam, self.agent_theme, self.names, self.labels = bank, cam, agent_theme, names, labels
        self.monster_src = np.full((len(names), len(_MONSTER_POSES), 2, slots), -1, np.int64)
        self.monster_label = np.array([SEMANTIC_LABELS.get(name, 0) for name in names], np.int64)
        self.agent_src = np.full((len(AGENT_POSES), 2, kernels.AGENT_FADES), -1, np.int64)
        self.agent_aspect = np.full((len(AGENT_POSES), 2), np.nan)
        self.agent_height = np.zeros((len(AGENT_POSES), 2), np.int64)
        self.shield_w, self.shield_h = math.ceil(cam.kx * 1.15), math.ceil(cam.ky * 2.1)
        shield = bank.get(SHIELD_FILE, "shield").fit(self.shield_w, self.shield_h, nearest=labels)
        self.shield_src = bank.atlas.index(shield)
        self._lock = threading.Lock()

    def add(self, missing_monsters: np.ndarray, missing_agent: np.ndarray) -> None:
        """Make the sprites of the looks `kernels.sprite_ops` found missing: ``(theme, pose, flipped, slot, w, h)``
        monster rows and ``(pose, flipped, fade)`` agent rows."""
        with self._lock:
            for theme, pose, flipped, slot, w, h in missing_monsters.tolist():
                sprite = self.bank.get(monster_file(self.names[theme], _MONSTER_POSES[pose]), "monster",
                                       flip=bool(flipped))
                self.monster_src[theme, pose, flipped, slot] = self.bank.atlas.index(
                    sprite.fit(w, h, nearest=self.labels))
            for pose, flipped, fade in missing_agent.tolist():
                sprite = self.bank.get(alien_file(self.agent_theme, AGENT_POSES[pose]), "alien", flip=bool(flipped))
                height = math.ceil(sprite.aspect_ratio * self.cam.ky)
                sprite = sprite.fit(math.ceil(self.cam.kx), height, nearest=self.labels)
                if fade:
                    sprite = sprite.faded((fade - 1) * 12)
                self.agent_src[pose, flipped, fade] = self.bank.atlas.index(sprite)
                self.agent_height[pose, flipped] = height
                self.agent_aspect[pose, flipped] = sprite.aspect_ratio  # last: marks the look as loaded
