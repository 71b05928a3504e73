"""Names, addresses and folders used across the project, each defined once. Standard library only (see
``upload.py``)."""

from __future__ import annotations

import os
from pathlib import Path

DISTILBERT_ID = "distilbert/distilbert-base-uncased"
"""The reference's text tower and tokenizer (``text_model_name: distilbert-base-uncased`` in MUGEN's configs)."""

MUGEN_CHECKPOINT_URL = "https://pytorch.s3.amazonaws.com/models/multimodal/mugen/videoclip_mugen.pt"
"""torchmultimodal's VideoCLIP finetuned on MUGEN (``examples/mugen/retrieval``)."""
MUGEN_LIGHTNING_CHECKPOINT_URL = "https://pytorch.s3.amazonaws.com/models/multimodal/mugen/videoclip_lightning_mugen.pt"
"""The same model as a PyTorch Lightning checkpoint (weights under ``state_dict``, prefixed ``model.``)."""
PRETRAINED_VIDEO_ENCODER_URL = (
    "https://pytorch.s3.amazonaws.com/models/multimodal/mugen/video_encoder-weights-b0e27f13.pth"
)
"""videoclip-base's video tower: torchmultimodal's ``PRETRAINED_VIDEO_ENCODER_URL`` (``video_clip.py``), "the weights
MUGEN used from pretraining S3D on Kinetics 400", the reference's training start."""
S3D_KINETICS400_URL = "https://download.pytorch.org/models/s3d-d76dad2f.pth"
"""torchvision's S3D Kinetics-400 weights (``S3D_Weights.KINETICS400_V1``), which torchvision trained from scratch:
not the reference's start, but accepted by ``--video-encoder``."""

VIDEOCLIP_BASE = "videoclip-base"
"""The reference's training start: pretrained DistilBERT and S3D, fresh projections (a variant in hub_configs/)."""
VIDEOCLIP_MUGEN = "videoclip-mugen"
"""The published MUGEN weights (a variant in hub_configs/)."""

HUB_CONFIGS_DIR = Path(__file__).resolve().parents[2] / "hub_configs"
"""One folder per published variant; read from a checkout of this repository."""


def cache_root() -> Path:
    """Where this project caches downloads and generated data: ``$VIDEOCLIP_CACHE`` if set, else
    ``$XDG_CACHE_HOME/videoclip`` (as huggingface_hub's ``$HF_HOME``), else ``~/.cache/videoclip``."""
    if os.environ.get("VIDEOCLIP_CACHE"):
        return Path(os.environ["VIDEOCLIP_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "videoclip"
