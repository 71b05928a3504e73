"""A numpy renderer for MUGEN / CoinRun game JSONs.

It produces the same frames as the reference renderer (``examples/mugen/data/coinrun/construct_from_json.py``
in facebookresearch/multimodal, PIL-based) but much faster:

* sprites are loaded, resized (with PIL, so the resampling is bit-identical), flipped and alpha-binarised
  once per asset folder and cell size;
* the level's static tiles (walls, crates, ladders...) are drawn once per level into a layer that each frame
  crops and composites over the parallax background with three vectorised byte operations;
* only "dynamic" tiles (animated lava, coins that get eaten, and sprites whose alpha is not binary) are redrawn
  per frame, by replaying the reference's paste order on the few pixels they cover, so overlaps stay exact;
* monsters, the agent and the bubble shield are pasted per frame; fractional alpha (fading agent, shrinking
  dying monster, resized lava) is blended with PIL's own integer formula.

Everything is computed with the reference's float expressions (camera offset, ``floor``/``ceil`` rects,
lava crop rectangles), so at 256x256 (cell size 22 px) frames match the reference byte for byte; at other
resolutions the same holds as long as the per-frame tile grid is handled by cached layer variants (one per
distinct sub-pixel grid offset, e.g. 4 at 224x224).

Segmentation maps use the reference's 22 labels (``max_label = 21``; background 0, agent and shield 21) and,
like the reference dataset, draw the agent, shield and monsters as (top-trimmed) bounding boxes by default.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .assets import SHIELD_FILE, TILE_FILES, alien_file, ground_file, monster_file, resolve_asset_path
from .game import Game

__all__ = ["MugenRenderer", "SEMANTIC_LABELS", "NUM_SEGMENTATION_LABELS", "ZOOM_DY_RATIO", "semantic_label_map"]

#: Camera height (in cells) for each zoom level CoinRun supports; 5.5 is MUGEN's.
ZOOM_DY_RATIO: Dict[float, float] = {5.5: 5.0, 4.3: 6.5, 5.0: 5.5, 6.0: 4.5}
DEATH_ANIM_LENGTH = 30
MONSTER_DEATH_ANIM_LENGTH = 3
LAVA = frozenset("|^")
COINS = frozenset("12")

#: Segmentation labels of the reference's 22-label map (``max_label = 21``).
SEMANTIC_LABELS: Dict[str, int] = {
    "background": 0, "lava": 1, "lava_top": 2, "wall": 3, "wall_top": 4, "cliff_left": 5, "cliff_right": 6,
    "ladder": 7, "crate": 8, "wormPink": 9, "ladybug": 10, "snail": 11, "mouse": 12, "slimeBlue": 13,
    "slimeBlock": 14, "bee": 15, "sawHalf": 16, "barnacle": 17, "frog": 18, "coin": 19, "gem": 20, "agent": 21,
}
NUM_SEGMENTATION_LABELS = 22
_TILE_LABELS: Dict[str, int] = {
    "A": 3, "S": 4, "a": 5, "b": 6, "1": 19, "2": 20, "#": 8, "$": 8, "&": 8, "%": 8, "|": 1, "^": 2, "=": 7,
}
_AGENT_LABEL = 21  # also the shield's


def semantic_label_map() -> Dict[str, int]:
    """Label of each tile character / monster name / ``"agent"`` / ``"shield"`` in segmentation maps."""
    out: Dict[str, int] = dict(_TILE_LABELS)
    out.update({k: v for k, v in SEMANTIC_LABELS.items() if 9 <= v <= 18})
    out.update({"agent": _AGENT_LABEL, "shield": _AGENT_LABEL, "background": 0})
    return out


# ------------------------------------------------------------------------------------------------
# Sprites
# ------------------------------------------------------------------------------------------------


class _Sprite:
    """A sprite as the reference holds it after loading (resized, flipped, alpha binarised)."""

    __slots__ = ("image", "rgb", "alpha", "mask", "binary", "aspect_ratio", "_fits")

    def __init__(self, image: Image.Image, aspect_ratio: float = 1.0):
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGB")  # what PIL's paste does to other modes (and no mask is used)
        self.image = image
        arr = np.asarray(image)
        self.rgb = np.ascontiguousarray(arr[..., :3])
        self.alpha: Optional[np.ndarray] = np.ascontiguousarray(arr[..., 3]) if image.mode == "RGBA" else None
        self.binary = self.alpha is None or bool(np.isin(self.alpha, (0, 255)).all())
        self.mask: Optional[np.ndarray] = None if self.alpha is None else self.alpha > 0
        self.aspect_ratio = aspect_ratio
        self._fits: Dict[Tuple[int, int, bool], "_Sprite"] = {}

    @property
    def size(self) -> Tuple[int, int]:
        return self.image.size

    def fit(self, w: int, h: int, nearest: bool = False) -> "_Sprite":
        """This sprite resized to ``(w, h)`` as the reference does when a rect and a sprite differ in size
        (bicubic for RGB frames, nearest for segmentation maps)."""
        if (w, h) == self.image.size:
            return self
        key = (w, h, nearest)
        if key not in self._fits:
            resample = Image.NEAREST if nearest else None  # None: PIL's default (bicubic), as the reference
            img = self.image.resize((w, h), resample=resample) if resample is not None else self.image.resize((w, h))
            self._fits[key] = _Sprite(img, self.aspect_ratio)
        return self._fits[key]

    def faded(self, transparency: int) -> "_Sprite":
        """Alpha lowered by ``transparency`` (clipped at 0), for the dying agent."""
        key = (-1, transparency, False)
        if key not in self._fits:
            arr = np.array(self.image, dtype=np.int16)
            arr[..., 3] = np.clip(arr[..., 3] - transparency, 0, None)
            self._fits[key] = _Sprite(Image.fromarray(arr.astype(np.uint8), "RGBA"), self.aspect_ratio)
        return self._fits[key]


def _binarize(image: Image.Image) -> Image.Image:
    if image.mode != "RGBA":
        return image
    arr = np.array(image)
    arr[..., 3] = np.where(arr[..., 3] > 0, 255, 0)
    return Image.fromarray(arr, "RGBA")


class _SpriteBank:
    """Loads sprites for one asset folder and one cell size, each at most once."""

    def __init__(self, asset_dir: str, kx: float, ky: float):
        self.asset_dir, self.kx, self.ky = asset_dir, kx, ky
        self._cache: Dict[Tuple[str, str, bool], _Sprite] = {}
        self._lock = threading.Lock()

    def get(self, relative: str, kind: str, flip: bool = False, resize: bool = True) -> _Sprite:
        key = (relative, kind, flip)
        sprite = self._cache.get(key)
        if sprite is None:
            with self._lock:
                sprite = self._cache.get(key) or self._load(relative, kind, flip, resize)
                self._cache[key] = sprite
        return sprite

    def _load(self, relative: str, kind: str, flip: bool, resize: bool) -> _Sprite:
        path = resolve_asset_path(self.asset_dir, relative)
        with Image.open(path) as f:
            image = f.copy()
        aspect = image.size[1] / image.size[0]
        kx, ky = self.kx, self.ky
        if kind == "world":
            size = (math.ceil(kx + 0.5), math.ceil(ky + 0.5)) if resize else None  # lava stays full size
        elif kind == "alien":
            size = (math.ceil(kx), math.ceil(aspect * ky))
        elif kind == "shield":
            size = (math.ceil(kx * 1.15), math.ceil(ky * 2.1))
        else:  # monster, background
            size = (math.ceil(kx), math.ceil(ky))
        if size is not None:
            image = image.resize(size)
        if flip:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        if kind != "background":
            image = _binarize(image)
        return _Sprite(image, aspect)


# ------------------------------------------------------------------------------------------------
# Pasting primitives (PIL semantics on numpy canvases)
# ------------------------------------------------------------------------------------------------


def _clip(x: int, y: int, w: int, h: int, cw: int, ch: int):
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, cw), min(y + h, ch)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1, x0 - x, y0 - y


def _paste(canvas: np.ndarray, sprite: _Sprite, x: int, y: int) -> None:
    """``canvas.paste(sprite, box, sprite if RGBA)`` for an RGB canvas (sprite size == box size)."""
    h, w = sprite.rgb.shape[:2]
    c = _clip(x, y, w, h, canvas.shape[1], canvas.shape[0])
    if c is None:
        return
    x0, y0, x1, y1, sx, sy = c
    dst = canvas[y0:y1, x0:x1]
    src = sprite.rgb[sy:sy + y1 - y0, sx:sx + x1 - x0]
    if sprite.alpha is None:
        dst[...] = src
    elif sprite.binary:
        np.copyto(dst, src, where=sprite.mask[sy:sy + y1 - y0, sx:sx + x1 - x0, None])
    else:
        a = sprite.alpha[sy:sy + y1 - y0, sx:sx + x1 - x0, None].astype(np.uint16)
        t = dst.astype(np.uint16) * (255 - a) + src.astype(np.uint16) * a + 128
        dst[...] = ((t >> 8) + t) >> 8  # PIL's DIV255 rounding


def _fill(canvas: np.ndarray, value: int, x: int, y: int, w: int, h: int, mask: Optional[np.ndarray] = None) -> None:
    """``canvas.paste(value, box, mask)`` for a label canvas; ``mask`` is a boolean array of the box size."""
    c = _clip(x, y, w, h, canvas.shape[1], canvas.shape[0])
    if c is None:
        return
    x0, y0, x1, y1, sx, sy = c
    if mask is None:
        canvas[y0:y1, x0:x1] = value
    else:
        canvas[y0:y1, x0:x1][mask[sy:sy + y1 - y0, sx:sx + x1 - x0]] = value


def _paste_label(canvas: np.ndarray, sprite: _Sprite, value: int, x: int, y: int) -> None:
    h, w = sprite.rgb.shape[:2]
    _fill(canvas, value, x, y, w, h, sprite.mask)


def _out_of_bounds(x: float, y: float, w: float, h: float, size: int) -> bool:
    return x + w < 0 or x > size or y + h < 0 or y > size


# ------------------------------------------------------------------------------------------------
# Per-level state
# ------------------------------------------------------------------------------------------------


@dataclass
class _Camera:
    """Per-resolution and zoom constants, computed with the reference's expressions."""

    res: int
    zoom: float
    kx: float
    ky: float
    center: int
    dy: float
    tile_w: float
    tile_h: float
    tw: int
    th: int

    @classmethod
    def make(cls, res: int, zoom: float, maze_w: int) -> "_Camera":
        if zoom not in ZOOM_DY_RATIO:
            raise ValueError(f"zoom level {zoom} is not supported (CoinRun's are {sorted(ZOOM_DY_RATIO)})")
        kx = zoom * res / maze_w
        ky = kx
        center = (res - 1) // 2
        tile_w, tile_h = kx + 0.5 + 0.2, ky + 0.5 + 0.2
        return cls(res, zoom, kx, ky, center, -center + ZOOM_DY_RATIO[zoom] * ky, tile_w, tile_h,
                   math.ceil(tile_w), math.ceil(tile_h))


class _Level:
    """Tiles of one level (maze + ground theme) at one cell size, with cached static layers."""

    def __init__(self, maze: Sequence[str], ground_theme: str, cam: _Camera, bank: _SpriteBank):
        self.cam, self.bank = cam, bank
        self.maze_w, self.maze_h = len(maze[0]), len(maze)
        self.tiles: List[Tuple[int, int, str]] = [
            (x, y, maze[y][x]) for y in range(self.maze_h) for x in range(self.maze_w) if maze[y][x] != "."
        ]
        self.sprites: Dict[str, _Sprite] = {}
        for ch in {t[2] for t in self.tiles}:
            rel = ground_file(ground_theme, ch) if ch in "ASab" else TILE_FILES[ch]
            self.sprites[ch] = bank.get(rel, "world", resize=ch not in LAVA)
        # A tile is dynamic when its pixels change during a clip (lava, coins) or when it cannot be stored in
        # a binary-coverage layer (its rect differs from the sprite size, so PIL blends a resized sprite).
        self.dynamic_chars = set(LAVA | COINS)
        for ch, spr in self.sprites.items():
            if ch not in LAVA and not spr.fit(cam.tw, cam.th).binary:
                self.dynamic_chars.add(ch)
        self.order = {(x, y): i for i, (x, y, _) in enumerate(self.tiles)}
        self.py = np.floor(cam.res - cam.ky * np.arange(self.maze_h) + cam.dy - 0.1).astype(np.int64)
        self.y_float = [cam.res - cam.ky * y + cam.dy - 0.1 for y in range(self.maze_h)]
        self.dynamic = [t for t in self.tiles if t[2] in self.dynamic_chars]
        self.neighbours: Dict[Tuple[int, int], List[Tuple[int, int, str]]] = {}
        for x, y, _ in self.dynamic:
            near = [(x + i, y + j) for j in (-1, 0, 1) for i in (-1, 0, 1)]
            idx = sorted(self.order[p] for p in near if p in self.order)
            self.neighbours[(x, y)] = [self.tiles[i] for i in idx]
        self._layers: "OrderedDict[Tuple, Tuple[np.ndarray, np.ndarray]]" = OrderedDict()
        self._labels: "OrderedDict[Tuple, np.ndarray]" = OrderedDict()
        self._lava_cache: Dict[Tuple, _Sprite] = {}

    # -- static layer ----------------------------------------------------------------------------

    def _static_tiles(self, window: Optional[Tuple[int, int, int, int]]):
        for x, y, ch in self.tiles:
            if ch in self.dynamic_chars:
                continue
            if window is not None and not (window[0] <= x < window[1] and window[2] <= y < window[3]):
                continue
            yield x, y, ch

    def layer(self, rel: np.ndarray, window) -> Tuple[np.ndarray, np.ndarray]:
        """RGB layer and 0/255 coverage mask of the static tiles, tile ``x`` at column ``rel[x]``."""
        key = (rel.tobytes(), window)
        hit = self._layers.get(key)
        if hit is not None:
            return hit
        cam = self.cam
        width = int(rel[-1]) + cam.tw
        rgb = np.zeros((cam.res, width, 3), np.uint8)
        cover = np.zeros((cam.res, width), bool)
        for x, y, ch in self._static_tiles(window):
            spr = self.sprites[ch].fit(cam.tw, cam.th)
            _paste(rgb, spr, int(rel[x]), int(self.py[y]))
            _fill_bool(cover, int(rel[x]), int(self.py[y]), spr.size[0], spr.size[1], spr.mask)
        mask = np.repeat(cover[..., None], 3, axis=2).view(np.uint8) * np.uint8(255)
        self._layers[key] = (rgb, mask)
        if len(self._layers) > 8:
            self._layers.popitem(last=False)
        return rgb, mask

    def label_layer(self, rel: np.ndarray, window) -> np.ndarray:
        key = (rel.tobytes(), window)
        hit = self._labels.get(key)
        if hit is not None:
            return hit
        cam = self.cam
        labels = np.zeros((cam.res, int(rel[-1]) + cam.tw), np.uint8)
        for x, y, ch in self._static_tiles(window):
            spr = self.sprites[ch].fit(cam.tw, cam.th, nearest=True)
            _paste_label(labels, spr, _TILE_LABELS[ch], int(rel[x]), int(self.py[y]))
        self._labels[key] = labels
        if len(self._labels) > 8:
            self._labels.popitem(last=False)
        return labels

    # -- dynamic tiles ---------------------------------------------------------------------------

    def lava_parts(self, ch: str, tx: float, ty: float, state_time: float, nearest: bool):
        """The (sprite, x, y) pieces of a lava tile, replaying the reference's crop arithmetic exactly."""
        cam = self.cam
        spr = self.sprites[ch]
        aw, ah = spr.size
        tile = [tx, ty, cam.tile_w, cam.tile_h]
        tr = state_time * 0.1
        tr -= int(tr)
        tr *= -1
        d1 = [tx + tr * tile[2], ty, tile[2], tile[3]]
        d2 = [tx + tile[2] + tr * tile[2], ty, tile[2], tile[3]]
        sr = [0, 0, aw, ah]
        sr1 = [0 + -tr * aw, 0, aw, ah]
        sr2 = [0 + -aw - tr * aw, 0, aw, ah]
        d1, d2 = _intersect(d1, tile), _intersect(d2, tile)
        if d1 is not None:
            d1[2] += 0.5
        if d2 is not None:
            d2[0] -= 0.5
            d2[2] += 0.5
        sr1, sr2 = _intersect(sr1, sr), _intersect(sr2, sr)
        parts = []
        for s, d in ((sr1, d1), (sr2, d2)):
            if s is None or d is None:
                continue
            crop = (math.floor(s[0]), math.floor(s[1]), math.ceil(s[0] + s[2]), math.ceil(s[1] + s[3]))
            rect = (math.floor(d[0]), math.floor(d[1]), math.ceil(d[2]), math.ceil(d[3]))
            key = (ch, crop, rect[2], rect[3], nearest)
            piece = self._lava_cache.get(key)
            if piece is None:
                piece = _Sprite(spr.image.crop(crop)).fit(rect[2], rect[3], nearest=nearest)
                if len(self._lava_cache) > 4096:
                    self._lava_cache.clear()
                self._lava_cache[key] = piece
            parts.append((piece, rect[0], rect[1]))
        return parts


def _fill_bool(canvas: np.ndarray, x: int, y: int, w: int, h: int, mask: Optional[np.ndarray]) -> None:
    c = _clip(x, y, w, h, canvas.shape[1], canvas.shape[0])
    if c is None:
        return
    x0, y0, x1, y1, sx, sy = c
    if mask is None:
        canvas[y0:y1, x0:x1] = True
    else:
        canvas[y0:y1, x0:x1] |= mask[sy:sy + y1 - y0, sx:sx + x1 - x0]


def _intersect(r1: List[float], r2: List[float]) -> Optional[List[float]]:
    x0, y0 = max(r1[0], r2[0]), max(r1[1], r2[1])
    x1, y1 = min(r1[0] + r1[2], r2[0] + r2[2]), min(r1[1] + r1[3], r2[1] + r2[3])
    w, h = x1 - x0, y1 - y0
    return [x0, y0, w, h] if w > 0 and h > 0 else None


# ------------------------------------------------------------------------------------------------
# The renderer
# ------------------------------------------------------------------------------------------------


class MugenRenderer:
    """Render MUGEN clips (RGB frames and segmentation maps) from game JSONs and an asset folder.

    Args:
        asset_dir: folder with the CoinRun sprites (MUGEN_baseline's ``lib/data/coinrun/assets``, or the
            stand-ins from :func:`~modeling_videoclip.mugen.make_stand_in_assets`).
        resolution: output height and width in pixels (256, MUGEN's default; 224 is what VideoCLIP uses).
        bbox_smap_for_agent: draw the agent and shield as top-trimmed boxes in segmentation maps (True, the
            reference dataset's default); False uses their sprite masks.
        bbox_smap_for_monsters: draw monsters as boxes in segmentation maps (True, the reference default).
        level_cache_size: how many levels keep their static layers cached (16).

    The renderer is cheap to pickle (caches are rebuilt lazily in each process), so it can live inside a
    dataset transform used by DataLoader workers.
    """

    def __init__(
        self,
        asset_dir: str | os.PathLike,
        resolution: int = 256,
        *,
        bbox_smap_for_agent: bool = True,
        bbox_smap_for_monsters: bool = True,
        level_cache_size: int = 16,
    ):
        if not isinstance(resolution, int) or resolution < 16:
            raise ValueError(f"resolution must be an integer >= 16, got {resolution!r}")
        self.asset_dir = os.fspath(asset_dir)
        if not os.path.isdir(self.asset_dir):
            raise FileNotFoundError(
                f"MUGEN asset folder {self.asset_dir} does not exist; pass the folder holding kenney/, "
                "kenneyLarge/, backgrounds/ and bubble_shield.png (or make stand-ins with make_stand_in_assets)."
            )
        self.resolution = resolution
        self.bbox_smap_for_agent = bbox_smap_for_agent
        self.bbox_smap_for_monsters = bbox_smap_for_monsters
        self.level_cache_size = level_cache_size
        self._init_caches()

    def _init_caches(self) -> None:
        self._banks: Dict[Tuple[float, float], _SpriteBank] = {}
        self._levels: "OrderedDict[Tuple, _Level]" = OrderedDict()
        self._backgrounds: Dict[Tuple[str, float], np.ndarray] = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_banks", "_levels", "_backgrounds", "_lock"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_caches()

    # -- caches ----------------------------------------------------------------------------------

    def _camera(self, game: Game) -> _Camera:
        return _Camera.make(self.resolution, game.zoom, game.maze_w)

    def _bank(self, cam: _Camera) -> _SpriteBank:
        key = (cam.kx, cam.ky)
        if key not in self._banks:
            self._banks[key] = _SpriteBank(self.asset_dir, cam.kx, cam.ky)
        return self._banks[key]

    def _level(self, game: Game, cam: _Camera) -> _Level:
        key = (tuple(game.maze), game.ground_theme, cam.kx, cam.zoom)
        with self._lock:
            level = self._levels.get(key)
            if level is not None:
                self._levels.move_to_end(key)
                return level
        level = _Level(game.maze, game.ground_theme, cam, self._bank(cam))
        with self._lock:
            self._levels[key] = level
            while len(self._levels) > self.level_cache_size:
                self._levels.popitem(last=False)
        return level

    def _background(self, game: Game, cam: _Camera) -> np.ndarray:
        zx = self.resolution * game.zoom
        key = (game.background_file, zx)
        bg = self._backgrounds.get(key)
        if bg is None:
            # size (ceil(zx), ceil(zy)) and no alpha binarisation, as the reference's background asset
            bg = _SpriteBank(self.asset_dir, zx, zx).get(game.background_file, "background").rgb
            self._backgrounds[key] = bg
        return bg

    # -- geometry --------------------------------------------------------------------------------

    def _frame_geometry(self, game: Game, level: _Level, cam: _Camera, k: int):
        agent = game.frames[k].agent
        dx = -agent.x * cam.kx + cam.center - 0.5 * cam.kx
        xs = np.arange(game.maze_w, dtype=np.float64)
        px = np.floor(cam.kx * xs + dx - 0.1).astype(np.int64)
        # the reference only draws tiles within a radius of the agent; ignore it when it hides nothing
        radius = int(1 + game.maze_w / game.zoom)
        ix, iy = int(agent.x + 0.5), int(agent.y + 0.5)
        win = (max(ix - radius, 0), min(ix + radius + 1, game.maze_w), max(iy - radius, 0), min(iy + radius + 1, game.maze_h))
        res = cam.res
        hides = (
            (win[0] > 0 and px[win[0] - 1] + cam.tw > 0)
            or (win[1] < game.maze_w and px[win[1]] < res)
            or (win[2] > 0 and level.py[win[2] - 1] < res)
            or (win[3] < game.maze_h and level.py[win[3]] + cam.th > 0)
        )
        return dx, px, (win if hides else None)

    def _visible(self, cam: _Camera, px: np.ndarray, level: _Level, x: int, y: int, dx: float) -> bool:
        tx = cam.kx * x + dx - 0.1
        return not _out_of_bounds(tx, level.y_float[y], cam.tile_w, cam.tile_h, cam.res)

    # -- RGB -------------------------------------------------------------------------------------

    def render(self, game: Game, frame_ids: Optional[Sequence[int]] = None) -> np.ndarray:
        """Render RGB frames.

        Args:
            game: a parsed game (see :func:`~modeling_videoclip.mugen.load_game`).
            frame_ids: which frames (default: all).

        Returns:
            ``uint8`` array of shape ``(T, resolution, resolution, 3)``.
        """
        frame_ids = range(len(game.frames)) if frame_ids is None else frame_ids
        cam = self._camera(game)
        level = self._level(game, cam)
        bg = self._background(game, cam)
        out = np.empty((len(frame_ids), cam.res, cam.res, 3), np.uint8)
        scratch = np.empty((cam.res, cam.res, 3), np.uint8)
        for i, k in enumerate(frame_ids):
            self._render_rgb_frame(game, int(k), cam, level, bg, out[i], scratch)
        return out

    def _draw_background(self, game: Game, cam: _Camera, bg: np.ndarray, dx: float, canvas: np.ndarray) -> None:
        canvas[...] = 0
        zx = cam.res * game.zoom
        zy = zx
        c = cam.center
        for tile_x in range(-1, 3):
            for tile_y in range(-1, 2):
                bx = zx * tile_x + c + game.bgzoom * (dx + cam.kx * game.maze_h / 2) - zx * 0.5
                by = zy * tile_y + c + game.bgzoom * (cam.dy - cam.ky * game.maze_h / 2) - zy * 0.5
                if _out_of_bounds(bx, by, zx, zy, cam.res):
                    continue
                x, y = math.floor(bx), math.floor(by)
                cl = _clip(x, y, bg.shape[1], bg.shape[0], cam.res, cam.res)
                if cl is not None:
                    x0, y0, x1, y1, sx, sy = cl
                    canvas[y0:y1, x0:x1] = bg[sy:sy + y1 - y0, sx:sx + x1 - x0]

    def _render_rgb_frame(self, game, k, cam, level, bg, out, scratch) -> None:
        frame = game.frames[k]
        dx, px, window = self._frame_geometry(game, level, cam, k)
        back = scratch
        self._draw_background(game, cam, bg, dx, back)
        # static tiles: out = back where the layer is empty, the layer elsewhere (branch-free select)
        rel = px - px[0]
        rgb, mask = level.layer(rel, window)
        x0, x1 = max(int(px[0]), 0), min(int(px[0]) + rgb.shape[1], cam.res)
        out[...] = back
        if x0 < x1:
            lx = x0 - int(px[0])
            seg = out[:, x0:x1]
            np.bitwise_xor(seg, rgb[:, lx:lx + x1 - x0], out=seg)
            np.bitwise_and(seg, mask[:, lx:lx + x1 - x0], out=seg)
            np.bitwise_xor(seg, back[:, x0:x1], out=seg)
        # dynamic tiles: replay the reference's paste order on each one's neighbourhood
        eaten = set(frame.coins_eaten)
        for x, y, ch in level.dynamic:
            if window is not None and not (window[0] <= x < window[1] and window[2] <= y < window[3]):
                continue
            if (x, y) in eaten or not self._visible(cam, px, level, x, y, dx):
                continue
            self._redraw_box(game, frame, cam, level, px, dx, x, y, eaten, window, back, out, labels=False)
        self._draw_sprites_rgb(game, frame, cam, dx, out)

    def _redraw_box(self, game, frame, cam, level, px, dx, x, y, eaten, window, back, out, labels: bool) -> None:
        # the box covers the tile and the lava halves' 1-2 px overhang on either side
        bx, by = int(px[x]) - 2, int(level.py[y])
        bw, bh = cam.tw + 4, cam.th
        c = _clip(bx, by, bw, bh, cam.res, cam.res)
        if c is None:
            return
        x0, y0, x1, y1, _, _ = c
        buf = np.zeros((y1 - y0, x1 - x0), np.uint8) if labels else back[y0:y1, x0:x1].copy()
        for tx_, ty_, ch in level.neighbours[(x, y)]:
            if window is not None and not (window[0] <= tx_ < window[1] and window[2] <= ty_ < window[3]):
                continue
            if (tx_, ty_) in eaten and ch in COINS:
                continue
            if not self._visible(cam, px, level, tx_, ty_, dx):
                continue
            if ch in LAVA:
                fx = cam.kx * tx_ + dx - 0.1
                for piece, rx, ry in level.lava_parts(ch, fx, level.y_float[ty_], frame.state_time, nearest=labels):
                    if labels:
                        _paste_label(buf, piece, _TILE_LABELS[ch], rx - x0, ry - y0)
                    else:
                        _paste(buf, piece, rx - x0, ry - y0)
            else:
                spr = level.sprites[ch].fit(cam.tw, cam.th, nearest=labels)
                if labels:
                    _paste_label(buf, spr, _TILE_LABELS[ch], int(px[tx_]) - x0, int(level.py[ty_]) - y0)
                else:
                    _paste(buf, spr, int(px[tx_]) - x0, int(level.py[ty_]) - y0)
        out[y0:y1, x0:x1] = buf

    def _monster_draw(self, game: Game, cam: _Camera, dx: float, bank: _SpriteBank, m):
        win_h = cam.res
        if m.is_dead:
            cnt = max(0, m.monster_dying_frame_cnt)
            shrink = (MONSTER_DEATH_ANIM_LENGTH - cnt) * 0.8 / MONSTER_DEATH_ANIM_LENGTH
            rect = [math.floor(cam.kx * m.x + dx), math.floor(win_h - cam.ky * m.y + cam.dy + cam.ky * shrink),
                    math.ceil(cam.kx), math.ceil(cam.ky * (1 - shrink))]
        else:
            rect = [math.floor(cam.kx * m.x + dx), math.floor(win_h - cam.ky * m.y + cam.dy),
                    math.ceil(cam.kx), math.ceil(cam.ky)]
        names = game.flattened_monster_names
        name = names[m.theme]
        pose = "_dead" if m.is_dead else ("" if m.walk1_mode else "_move")
        sprite = bank.get(monster_file(name, pose), "monster", flip=m.vx > 0)
        return name, sprite, rect

    def _agent_draw(self, game: Game, cam: _Camera, dx: float, bank: _SpriteBank, agent):
        sprite = bank.get(alien_file(game.agent_theme, agent.pose), "alien", flip=not agent.is_facing_right)
        ar = sprite.aspect_ratio
        rect = [math.floor(cam.kx * agent.x + dx), math.floor(cam.res - cam.ky * (agent.y + ar - 1) + cam.dy),
                math.ceil(cam.kx), math.ceil(ar * cam.ky)]
        transparency = 0
        if agent.is_killed:
            transparency = (DEATH_ANIM_LENGTH + 1 - agent.killed_animation_frame_cnt) * 12
        return sprite, rect, transparency

    def _shield_rect(self, cam: _Camera, dx: float, agent) -> List[int]:
        res = cam.res
        rect = [math.floor(cam.kx * agent.x + dx - 7 * res / 1024),
                math.floor(res - cam.ky * (agent.y + 1) + cam.dy + 8 * res / 1024),
                math.ceil(cam.kx * 1.15), math.ceil(cam.ky * 2.1)]
        if agent.pose == "duck":
            rect[1] += math.floor(8 * res / 1024)
        return rect

    def _draw_sprites_rgb(self, game: Game, frame, cam: _Camera, dx: float, out: np.ndarray) -> None:
        bank = self._bank(cam)
        for m in frame.monsters:
            _, sprite, rect = self._monster_draw(game, cam, dx, bank, m)
            _paste(out, sprite.fit(rect[2], rect[3]), rect[0], rect[1])
        agent = frame.agent
        sprite, rect, transparency = self._agent_draw(game, cam, dx, bank, agent)
        if transparency <= 255:
            sprite = sprite.fit(rect[2], rect[3])
            _paste(out, sprite.faded(transparency) if agent.is_killed else sprite, rect[0], rect[1])
        if agent.power_up_mode:
            rect = self._shield_rect(cam, dx, agent)
            shield = bank.get(SHIELD_FILE, "shield")
            _paste(out, shield.fit(rect[2], rect[3]), rect[0], rect[1])

    # -- segmentation ----------------------------------------------------------------------------

    def render_segmentation(self, game: Game, frame_ids: Optional[Sequence[int]] = None) -> np.ndarray:
        """Render 22-label segmentation maps (see :data:`SEMANTIC_LABELS`).

        Args:
            game: a parsed game.
            frame_ids: which frames (default: all).

        Returns:
            ``uint8`` array of shape ``(T, resolution, resolution)`` with values in ``[0, 21]``.
        """
        frame_ids = range(len(game.frames)) if frame_ids is None else frame_ids
        cam = self._camera(game)
        level = self._level(game, cam)
        out = np.zeros((len(frame_ids), cam.res, cam.res), np.uint8)
        for i, k in enumerate(frame_ids):
            self._render_label_frame(game, int(k), cam, level, out[i])
        return out

    def _render_label_frame(self, game, k, cam, level, out) -> None:
        frame = game.frames[k]
        dx, px, window = self._frame_geometry(game, level, cam, k)
        labels = level.label_layer(px - px[0], window)
        x0, x1 = max(int(px[0]), 0), min(int(px[0]) + labels.shape[1], cam.res)
        out[...] = 0
        if x0 < x1:
            lx = x0 - int(px[0])
            out[:, x0:x1] = labels[:, lx:lx + x1 - x0]
        eaten = set(frame.coins_eaten)
        for x, y, ch in level.dynamic:
            if window is not None and not (window[0] <= x < window[1] and window[2] <= y < window[3]):
                continue
            if (x, y) in eaten or not self._visible(cam, px, level, x, y, dx):
                continue
            self._redraw_box(game, frame, cam, level, px, dx, x, y, eaten, window, None, out, labels=True)
        bank = self._bank(cam)
        for m in frame.monsters:
            name, sprite, rect = self._monster_draw(game, cam, dx, bank, m)
            value = SEMANTIC_LABELS.get(name, 0)
            if self.bbox_smap_for_monsters:
                _fill(out, value, *rect)
            else:
                _paste_label(out, sprite.fit(rect[2], rect[3], nearest=True), value, rect[0], rect[1])
        agent = frame.agent
        sprite, rect, transparency = self._agent_draw(game, cam, dx, bank, agent)
        if transparency <= 255:
            self._label_person(out, sprite.fit(rect[2], rect[3], nearest=True), rect, 0.8)
        if agent.power_up_mode:
            rect = self._shield_rect(cam, dx, agent)
            shield = bank.get(SHIELD_FILE, "shield").fit(rect[2], rect[3], nearest=True)
            self._label_person(out, shield, rect, 0.45)

    def _label_person(self, out: np.ndarray, sprite: _Sprite, rect: List[int], cut_ratio: float) -> None:
        if self.bbox_smap_for_agent:
            # the agent sprite's top part is empty: the box starts cut_ratio * width rows lower
            cut = int(cut_ratio * rect[2])
            _fill(out, _AGENT_LABEL, rect[0], rect[1] + cut, rect[2], sprite.size[1] - cut)
        else:
            _paste_label(out, sprite, _AGENT_LABEL, rect[0], rect[1])
