"""MUGEN (CoinRun video-text) data for the datasets library: parsing, rendering, loading and a synthetic sample.

Independent of the model code. See :func:`load_mugen` for the one call that loads the data.
"""

from .assets import ASSET_FILES, MissingAssetError, make_stand_in_assets
from .game import Agent, Frame, Game, Monster, MugenFormatError, load_game
from .render import NUM_SEGMENTATION_LABELS, SEMANTIC_LABELS, MugenRenderer
from .sample import make_mugen_sample

__all__ = [
    "ASSET_FILES", "MissingAssetError", "make_stand_in_assets", "Agent", "Frame", "Game", "Monster",
    "MugenFormatError", "load_game", "NUM_SEGMENTATION_LABELS", "SEMANTIC_LABELS", "MugenRenderer",
    "make_mugen_sample",
]
