"""The published variants: one folder each in ``hub_configs/``, and what they say (config, card, results)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common.constants import HUB_CONFIGS_DIR, VIDEOCLIP_MUGEN
from ..common.errors import ExitCode, InputError
from ..configuration_videoclip import VideoCLIPConfig


@dataclass
class Variant:
    """One published variant, read from ``hub_configs/<name>/``: ``variant.json`` (`spec`: card metadata, defaults,
    ``published_results``, the ``space`` demo), ``config.json`` (the `VideoCLIPConfig`),
    ``video_preprocessor_config.json`` (the `VideoCLIPVideoProcessor` settings) and ``README.md.jinja`` (the
    model-card template).

    ``published_results``, where a source published figures: ``checkpoint`` (the URL of the file they were measured
    on), ``protocol`` (how), ``protocol_config`` (the model-index dataset config of that protocol, as
    ``videoclip evaluate`` names it), ``source`` (``name``, ``url``), ``dataset`` (``type``, ``name``, ``split``) and
    ``values`` (Recall@K in %, under `modeling_videoclip.retrieval`'s metric keys)."""

    name: str
    directory: Path
    spec: dict[str, Any]
    config: dict[str, Any]
    video_processor: dict[str, Any]

    @property
    def default_checkpoint(self) -> str | None:
        return self.spec.get("default_checkpoint")

    @property
    def published(self) -> dict[str, Any]:
        """The ``published_results`` entry (see the class docstring); empty when none were published."""
        return self.spec.get("published_results") or {}


def load_variant(name_or_dir: str | os.PathLike, configs_dir: str | os.PathLike = HUB_CONFIGS_DIR) -> Variant:
    """Reads a variant folder: `name_or_dir` is a path, or the name of a folder of `configs_dir` (defaults to this
    checkout's ``hub_configs/``). Raises `InputError`: an unknown variant (`USAGE`), an unreadable file."""
    directory = Path(name_or_dir)
    if not directory.is_dir():
        directory = Path(configs_dir) / str(name_or_dir)
    if not (directory / "variant.json").is_file():
        known = sorted(p.name for p in Path(configs_dir).iterdir() if (p / "variant.json").is_file())
        raise InputError(f"unknown variant {str(name_or_dir)!r}; known variants: {', '.join(known)}", ExitCode.USAGE)
    spec = _read_json(directory / "variant.json")
    return Variant(
        name=spec.get("name", directory.name), directory=directory, spec=spec,
        config=_read_json(directory / "config.json"),
        video_processor=_read_json(directory / "video_preprocessor_config.json"),
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read {path}: {error}") from error


def load_config(variant: Variant, override: str | os.PathLike | None = None) -> VideoCLIPConfig:
    """The variant's ``config.json``, or `override` (a ``config.json`` or a folder holding one, e.g. for another
    text tower); raises `InputError` when `override` is missing or not a VideoCLIP config."""
    if override is None:
        values = dict(variant.config)
    else:
        path = Path(override)
        path = path / "config.json" if path.is_dir() else path
        if not path.is_file():
            raise InputError(f"--config {str(override)!r}: no such file")
        values = _read_json(path)
    model_type = values.pop("model_type", VideoCLIPConfig.model_type)
    if model_type != VideoCLIPConfig.model_type:
        raise InputError(f"config {override or variant.name} is a {model_type!r} config, not 'videoclip'")
    for key in ("architectures", "auto_map", "transformers_version", "dtype", "torch_dtype"):
        values.pop(key, None)
    return VideoCLIPConfig(**values)


def published_results(variant: str | os.PathLike = VIDEOCLIP_MUGEN) -> dict[str, float]:
    """The variant's published Recall@K (%) under `modeling_videoclip.retrieval`'s metric keys, e.g.
    ``{"text_to_video/R@1": 8.26, ...}`` for videoclip-mugen (the default; measured by torchmultimodal on
    ``videoclip_lightning_mugen.pt`` with eval.yaml's protocol, see `Variant.published`); empty for a variant
    without results."""
    return {key: float(value) for key, value in load_variant(variant).published.get("values", {}).items()}
