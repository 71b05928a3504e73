"""MUGEN (CoinRun video-text clips) on the ``datasets`` library, independent of the model code: parsing, rendering,
loading (``load_mugen(data_dir, split)``) and a synthetic sample in the same format (``make_mugen_sample``)."""

from importlib import import_module
from typing import Any

from .assets import ASSET_FILES, MissingAssetError, make_stand_in_assets
from .game import Agent, Frame, Game, Monster, MugenFormatError, load_game
from .render import NUM_SEGMENTATION_LABELS, SEMANTIC_LABELS, MugenRenderer
from .sample import make_mugen_sample
from .video import CLIP_FPS, render_clip_to_gif, render_clip_to_mp4

# These import `datasets` / `huggingface_hub`, so they load on first use.
_LAZY = {
    "load_mugen": ".dataset", "MugenTransform": ".dataset", "MugenBuilder": ".dataset", "MugenConfig": ".dataset",
    "MUGEN_FEATURES": ".dataset", "mugen_collate": ".dataset", "push_mugen_to_hub": ".hub",
    "write_mugen_hub_folder": ".hub", "load_audio": ".audio", "LoadReport": ".release",
}

__all__ = [
    "ASSET_FILES", "MissingAssetError", "make_stand_in_assets", "Agent", "Frame", "Game", "Monster",
    "MugenFormatError", "load_game", "NUM_SEGMENTATION_LABELS", "SEMANTIC_LABELS", "MugenRenderer",
    "make_mugen_sample", "CLIP_FPS", "render_clip_to_gif", "render_clip_to_mp4", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
