"""MUGEN sprite assets: the file names the renderer needs, and procedurally drawn stand-ins (the real CoinRun sprites
are not redistributed): shapes under the same 58 paths and colour modes, with soft alpha edges."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "BACKGROUND_THEMES", "GROUND_THEMES", "AGENT_THEMES", "MONSTER_NAMES", "ALIEN_POSES", "MONSTER_POSES",
    "ASSET_FILES", "MissingAssetError", "resolve_asset_path", "check_asset_dir", "make_stand_in_assets",
]

# Theme lists exactly as CoinRun writes them into every game JSON.
BACKGROUND_THEMES: list[str] = [
    "backgrounds/background-2/airadventurelevel4.png",
    "backgrounds/spacebackgrounds-0/milky_way_01.png",
]
GROUND_THEMES: list[str] = ["Snow", "Planet"]
AGENT_THEMES: list[str] = ["Yellow"]
MONSTER_NAMES: dict[str, list[str]] = {
    "ground": ["sawHalf", "barnacle"],
    "walking": ["slimeBlock", "slimeBlue", "mouse", "snail", "ladybug", "wormPink", "frog"],
    "flying": ["bee"],
}
ALIEN_POSES: tuple[str, ...] = ("walk1", "walk2", "climb1", "climb2", "stand", "jump", "duck", "hit")
MONSTER_POSES: tuple[str, ...] = ("", "_move", "_dead")

TILE_FILES: dict[str, str] = {
    "#": "kenney/Tiles/boxCrate.png",
    "$": "kenney/Tiles/boxCrate_double.png",
    "&": "kenney/Tiles/boxCrate_single.png",
    "%": "kenney/Tiles/boxCrate_warning.png",
    "|": "kenney/Tiles/lava.png",
    "^": "kenney/Tiles/lavaTop_low.png",
    "=": "kenney/Tiles/ladderMid.png",
    "1": "kenneyLarge/Items/coinGold.png",
    "2": "kenneyLarge/Items/gemRed.png",
}
GROUND_SUFFIXES: dict[str, str] = {"A": "Center", "S": "Mid", "a": "Cliff_left", "b": "Cliff_right"}
SHIELD_FILE = "bubble_shield.png"


def ground_file(theme: str, tile: str) -> str:
    """Relative path of a ground tile (``A``/``S``/``a``/``b``) for a ground theme such as ``"Snow"``."""
    return f"kenney/Ground/{theme}/{theme.lower()}{GROUND_SUFFIXES[tile]}.png"


def alien_file(theme: str, pose: str) -> str:
    """Relative path of the agent sprite for an agent theme (``"Yellow"``) and pose (``"walk1"``...)."""
    return f"kenneyLarge/Players/128x256_no_helmet/{theme}/alien{theme}_{pose}.png"


def monster_file(name: str, pose: str = "") -> str:
    """Relative path of a monster sprite; ``pose`` is ``""`` (walk1), ``"_move"`` or ``"_dead"``."""
    return f"kenneyLarge/Enemies/{name}{pose}.png"


#: The 58 asset files (relative to the asset folder) the renderer reads for MUGEN's themes.
ASSET_FILES: list[str] = [
    *BACKGROUND_THEMES,
    *(ground_file(theme, tile) for theme in GROUND_THEMES for tile in GROUND_SUFFIXES),
    *(TILE_FILES[k] for k in "#$&%=|^12"),
    *(monster_file(name, pose) for names in MONSTER_NAMES.values() for name in names for pose in MONSTER_POSES),
    *(alien_file(theme, pose) for theme in AGENT_THEMES for pose in ALIEN_POSES),
    SHIELD_FILE,
]


class MissingAssetError(FileNotFoundError):
    """A sprite the renderer needs is not in the asset folder."""


def resolve_asset_path(asset_dir: str | os.PathLike, relative: str) -> str:
    """The path of ``relative`` (e.g. ``"kenney/Tiles/lava.png"``) under ``asset_dir``, falling back as CoinRun
    does from a missing ``name_suffix.png`` to ``name.png`` (CoinRun ships e.g. no ``sawHalf_dead``).

    Raises:
        MissingAssetError: neither the file nor its fallback exists; the message names both.
    """
    path = os.path.join(os.fspath(asset_dir), relative)
    if os.path.isfile(path):
        return path
    stem, ext = os.path.splitext(relative)
    head, _, tail = stem.rpartition("_")
    fallback = os.path.join(os.fspath(asset_dir), head + ext) if head and "/" not in tail else None
    if fallback and os.path.isfile(fallback):
        return fallback
    hint = f" (nor its fallback {fallback})" if fallback else ""
    raise MissingAssetError(
        f"MUGEN asset {path} not found{hint}. Point asset_dir at a copy of MUGEN_baseline's "
        "lib/data/coinrun/assets, or create stand-in sprites with "
        "modeling_videoclip.mugen.make_stand_in_assets(asset_dir)."
    )


def check_asset_dir(asset_dir: str | os.PathLike, files: list[str] | None = None) -> None:
    """Raise :class:`MissingAssetError` naming the first missing file among ``files`` (default: all 58)."""
    if not os.path.isdir(asset_dir):
        raise MissingAssetError(
            f"MUGEN asset folder {asset_dir} does not exist. Pass asset_dir= pointing at a copy of "
            "MUGEN_baseline's lib/data/coinrun/assets (or make stand-ins with make_stand_in_assets)."
        )
    for relative in files if files is not None else ASSET_FILES:
        resolve_asset_path(asset_dir, relative)


# Stand-in sprites: drawn on float canvases with soft (anti-aliased) coverage, then saved as PNG.


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return (yy + 0.5) / h, (xx + 0.5) / w


def _soft(d: np.ndarray, width: float = 0.02) -> np.ndarray:
    """Coverage in [0, 1] from a signed distance (negative inside)."""
    return np.clip(0.5 - d / width, 0.0, 1.0)


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    y, x = _grid(h, w)
    d = np.sqrt(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2) - 1.0
    return _soft(d * min(ry, rx))


def _box(h: int, w: int, y0: float, x0: float, y1: float, x1: float) -> np.ndarray:
    y, x = _grid(h, w)
    d = np.maximum.reduce([y0 - y, y - y1, x0 - x, x - x1])
    return _soft(d, 0.015)


def _rgba(color: np.ndarray | tuple[int, int, int], cover: np.ndarray) -> np.ndarray:
    out = np.zeros((*cover.shape, 4), np.float32)
    out[..., :3] = np.asarray(color, np.float32)
    out[..., 3] = 255.0 * cover
    return out


def _over(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Porter-Duff "over" on float RGBA canvases (0..255)."""
    a_s = src[..., 3:] / 255.0
    a_d = dst[..., 3:] / 255.0
    a_o = a_s + a_d * (1 - a_s)
    rgb = (src[..., :3] * a_s + dst[..., :3] * a_d * (1 - a_s)) / np.maximum(a_o, 1e-6)
    return np.concatenate([rgb, a_o * 255.0], axis=-1)


def _save(img: np.ndarray, path: Path, mode: str = "RGBA") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if mode == "RGB":
        arr = arr[..., :3]
    Image.fromarray(arr, mode).save(path)


def _background(theme_index: int, size: int = 384) -> np.ndarray:
    y, x = _grid(size, size)
    rng = np.random.default_rng(100 + theme_index)
    img = np.zeros((size, size, 4), np.float32)
    img[..., 3] = 255
    if theme_index == 0:  # daylight sky with hills and clouds
        img[..., :3] = np.stack([90 + 110 * y, 150 + 80 * y, 235 - 20 * y], axis=-1)
        hills = 0.7 + 0.08 * np.sin(2 * np.pi * 3 * x) + 0.04 * np.sin(2 * np.pi * 7 * x + 1)
        img[..., :3] = np.where((y > hills)[..., None], [70, 160, 80], img[..., :3])
        for _ in range(6):
            c = _ellipse(size, size, rng.uniform(0.1, 0.5), rng.uniform(0, 1), 0.04, 0.1)
            img = _over(img, _rgba((250, 250, 255), c))
    else:  # night sky with stars and a galaxy band
        img[..., :3] = np.stack([10 + 30 * y, 5 + 20 * y, 40 + 50 * y], axis=-1)
        band = np.exp(-(((y - 0.3 - 0.4 * x) / 0.12) ** 2))[..., None]
        img[..., :3] += band * np.array([90, 60, 120], np.float32)
        stars = rng.random((size, size)) > 0.996
        img[..., :3][stars] = 255
    return img


def _ground(theme_index: int, kind: str, size: int = 70) -> tuple[np.ndarray, str]:
    y, x = _grid(size, size)
    base = np.array([[120, 90, 60], [150, 80, 140]][theme_index], np.float32)
    top = np.array([[235, 245, 255], [200, 120, 220]][theme_index], np.float32)
    img = np.zeros((size, size, 4), np.float32)
    img[..., 3] = 255
    pattern = 12 * np.sin(2 * np.pi * 4 * x) * np.sin(2 * np.pi * 4 * y)
    img[..., :3] = base + pattern[..., None]
    if kind == "Center":
        return img, "RGB"
    cap = (y < 0.3 + 0.05 * np.sin(2 * np.pi * 2 * x))[..., None]
    img[..., :3] = np.where(cap, top, img[..., :3])
    if kind == "Mid":
        return img, "RGB"
    # cliffs: the outer bottom corner is cut away diagonally (transparent)
    edge = x if kind == "Cliff_left" else 1 - x
    img[..., 3] = 255 * _soft((y - 0.35 - 1.2 * edge) * 0.6, 0.02)
    return img, "RGBA"


def _crate(variant: str, size: int = 70) -> np.ndarray:
    color = {"boxCrate": (190, 130, 60), "boxCrate_double": (170, 110, 50),
             "boxCrate_single": (200, 150, 80), "boxCrate_warning": (220, 190, 40)}[variant]
    img = _rgba(color, _box(size, size, 0.02, 0.02, 0.98, 0.98))
    img = _over(img, _rgba((110, 70, 30), _box(size, size, 0.1, 0.45, 0.9, 0.55)))
    if variant == "boxCrate_double":
        img = _over(img, _rgba((110, 70, 30), _box(size, size, 0.45, 0.1, 0.55, 0.9)))
    if variant == "boxCrate_warning":
        y, x = _grid(size, size)
        stripes = (np.sin(2 * np.pi * 5 * (x + y)) > 0) * _box(size, size, 0.3, 0.1, 0.7, 0.9)
        img = _over(img, _rgba((30, 30, 30), stripes))
    return img


def _ladder(size: int = 70) -> np.ndarray:
    cover = np.maximum(_box(size, size, 0.0, 0.15, 1.0, 0.25), _box(size, size, 0.0, 0.75, 1.0, 0.85))
    for r in (0.15, 0.5, 0.85):
        cover = np.maximum(cover, _box(size, size, r - 0.05, 0.2, r + 0.05, 0.8))
    return _rgba((160, 110, 60), cover)


def _lava(top: bool, size: int = 70) -> np.ndarray:
    y, x = _grid(size, size)
    heat = 0.5 + 0.5 * np.sin(2 * np.pi * (2 * x + 0.5 * y))
    img = np.stack([230 + 25 * heat, 80 + 90 * heat, np.full_like(heat, 20), np.full_like(heat, 255)], axis=-1)
    if top:  # a transparent band above a wavy surface; one period per tile so tiles join up
        surface = 0.45 + 0.06 * np.sin(2 * np.pi * x)
        img[..., 3] = 255 * _soft(surface - y, 0.03)
    return img


def _coin(gem: bool, size: int = 70) -> np.ndarray:
    if gem:
        y, x = _grid(size, size)
        d = np.abs(x - 0.5) / 0.3 + np.abs(y - 0.5) / 0.38 - 1
        img = _rgba((220, 30, 50), _soft(d * 0.3))
        return _over(img, _rgba((255, 140, 150), _ellipse(size, size, 0.4, 0.42, 0.06, 0.05)))
    img = _rgba((245, 195, 30), _ellipse(size, size, 0.5, 0.5, 0.3, 0.3))
    return _over(img, _rgba((255, 235, 120), _ellipse(size, size, 0.5, 0.5, 0.16, 0.1)))


_MONSTER_COLORS = {
    "sawHalf": (170, 170, 180), "barnacle": (140, 40, 160), "slimeBlock": (120, 200, 60),
    "slimeBlue": (40, 150, 230), "mouse": (150, 140, 130), "snail": (230, 90, 180),
    "ladybug": (220, 40, 40), "wormPink": (250, 150, 190), "frog": (50, 170, 90), "bee": (240, 200, 30),
}


def _monster(name: str, pose: str, size: int = 70) -> np.ndarray:
    color = _MONSTER_COLORS[name]
    squash = {"": 0.0, "_move": 0.06, "_dead": 0.17}[pose]
    if name == "sawHalf":
        y, x = _grid(size, size)
        r = np.sqrt((x - 0.5) ** 2 + (y - 1.0) ** 2)
        teeth = 0.45 + 0.05 * np.sign(np.sin(12 * np.arctan2(y - 1.0, x - 0.5) + 20 * squash))
        img = _rgba(color, _soft(r - teeth + squash * 0.5) * (y < 1.0))
    elif name == "bee":
        img = _rgba(color, _ellipse(size, size, 0.6, 0.5, 0.22 - squash / 2, 0.3))
        wing = _ellipse(size, size, 0.32 + squash, 0.45, 0.12, 0.08 + squash / 2)
        img = _over(img, _rgba((220, 240, 255), wing))
    else:
        img = _rgba(color, _ellipse(size, size, 0.7 + squash / 2, 0.5, 0.28 - squash, 0.4 + squash / 2))
    # one eye on the left: monsters face left by default
    if pose != "_dead":
        img = _over(img, _rgba((255, 255, 255), _ellipse(size, size, 0.62, 0.3, 0.06, 0.06)))
        img = _over(img, _rgba((0, 0, 0), _ellipse(size, size, 0.62, 0.28, 0.03, 0.03)))
    return img


def _alien(pose: str, w: int = 128, h: int = 256) -> np.ndarray:
    """A yellow alien facing right; the top ~40% is empty, like CoinRun's 128x256 sprites."""
    body = (245, 210, 60)
    duck = 0.12 if pose == "duck" else 0.0
    img = _rgba(body, _ellipse(h, w, 0.56 + duck, 0.5, 0.1, 0.3))  # head
    img = _over(img, _rgba((255, 255, 255), _ellipse(h, w, 0.55 + duck, 0.64, 0.035, 0.1)))  # eye
    img = _over(img, _rgba((20, 20, 20), _ellipse(h, w, 0.55 + duck, 0.68, 0.018, 0.05)))
    img = _over(img, _rgba(body, _box(h, w, 0.65 + duck, 0.3, 0.85, 0.7)))  # torso
    legs = {"walk1": (0.25, 0.6), "walk2": (0.4, 0.45), "climb1": (0.3, 0.55), "climb2": (0.35, 0.5),
            "stand": (0.32, 0.53), "jump": (0.2, 0.65), "duck": (0.3, 0.55), "hit": (0.25, 0.6)}[pose]
    for lx in legs:
        img = _over(img, _rgba((200, 160, 40), _box(h, w, 0.84, lx, 1.0 - (0.05 if pose == "jump" else 0), lx + 0.15)))
    if pose.startswith("climb") or pose == "jump":
        arm_y = 0.6 if pose != "climb2" else 0.66
        img = _over(img, _rgba(body, _box(h, w, arm_y, 0.15, arm_y + 0.04, 0.85)))
    if pose == "hit":
        img = _over(img, _rgba((230, 40, 40), _box(h, w, 0.5, 0.45, 0.53, 0.75)))
    return img


def _shield(w: int = 140, h: int = 256) -> np.ndarray:
    outer = _ellipse(h, w, 0.55, 0.5, 0.42, 0.46)
    inner = _ellipse(h, w, 0.55, 0.5, 0.38, 0.41)
    ring = np.clip(outer - inner, 0, 1)
    img = _rgba((120, 200, 255), ring)
    # faint interior: alpha > 0 everywhere inside, so binarising turns it into an opaque bubble
    return _over(_rgba((200, 230, 255), outer * 0.05), img)


def make_stand_in_assets(asset_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Draw stand-in sprites under every asset name the MUGEN renderer reads, with the real files' sizes and
    colour modes (70x70 tiles, items and monsters, 128x256 agent poses facing right, a 140x256 bubble shield;
    RGB ground centre/mid tiles, RGBA elsewhere).

    Args:
        asset_dir: folder to write into (created if needed); returned as a :class:`~pathlib.Path`.
        overwrite: redraw files that already exist (False: existing files are kept, so a partial real asset
            folder can be completed).
    """
    root = Path(asset_dir)
    jobs: dict[str, tuple] = {rel: (partial(_background, i), "RGB") for i, rel in enumerate(BACKGROUND_THEMES)}
    for ti, theme in enumerate(GROUND_THEMES):
        for tile, kind in GROUND_SUFFIXES.items():
            img, mode = _ground(ti, kind)
            jobs[ground_file(theme, tile)] = (lambda img=img: img, mode)
    tile_draw = {"=": _ladder, "|": partial(_lava, False), "^": partial(_lava, True), "1": partial(_coin, False),
                 "2": partial(_coin, True)}
    for key, rel in TILE_FILES.items():
        jobs[rel] = (tile_draw.get(key, partial(_crate, Path(rel).stem)), "RGBA")  # the others are crates
    jobs.update({monster_file(name, pose): (partial(_monster, name, pose), "RGBA")
                 for names in MONSTER_NAMES.values() for name in names for pose in MONSTER_POSES})
    jobs.update({alien_file(theme, pose): (partial(_alien, pose), "RGBA")
                 for theme in AGENT_THEMES for pose in ALIEN_POSES})
    jobs[SHIELD_FILE] = (_shield, "RGBA")
    assert sorted(jobs) == sorted(ASSET_FILES)
    for rel, (draw, mode) in jobs.items():
        path = root / rel
        if overwrite or not path.is_file():
            _save(draw(), path, mode)
    return root
