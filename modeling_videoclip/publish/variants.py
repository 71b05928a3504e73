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
    """One published variant, read from ``hub_configs/<name>/``.

    Files there: ``variant.json`` (card metadata, defaults, published results), ``config.json`` (the
    `VideoCLIPConfig`), ``video_preprocessor_config.json`` (the `VideoCLIPVideoProcessor` settings) and
    ``README.md.jinja`` (the model-card template).
    """

    name: str
    directory: Path
    spec: dict[str, Any]
    config: dict[str, Any]
    video_processor: dict[str, Any]

    @property
    def template_path(self) -> Path:
        return self.directory / "README.md.jinja"

    @property
    def default_checkpoint(self) -> str | None:
        return self.spec.get("default_checkpoint")

    @property
    def official_checkpoints(self) -> list[str]:
        """Checkpoints whose published results may go on the card (the variant's own files)."""
        return list(self.spec.get("official_checkpoints") or [c for c in [self.default_checkpoint] if c])


def load_variant(name_or_dir: str | os.PathLike, configs_dir: str | os.PathLike = HUB_CONFIGS_DIR) -> Variant:
    """Reads a variant folder.

    Args:
        name_or_dir: a variant name (a folder of `configs_dir`) or a path to a variant folder.
        configs_dir: where named variants live. Defaults to this checkout's ``hub_configs/``.

    Raises:
        InputError: an unknown variant (`USAGE`) or an unreadable file (`BAD_INPUT`).
    """
    directory = Path(name_or_dir)
    if not directory.is_dir():
        directory = Path(configs_dir) / str(name_or_dir)
    if not (directory / "variant.json").is_file():
        known = sorted(p.name for p in Path(configs_dir).iterdir() if (p / "variant.json").is_file())
        raise InputError(f"unknown variant {str(name_or_dir)!r}; known variants: {', '.join(known)}", ExitCode.USAGE)
    spec = _read_json(directory / "variant.json")
    return Variant(
        name=spec.get("name", directory.name),
        directory=directory,
        spec=spec,
        config=_read_json(directory / "config.json"),
        video_processor=_read_json(directory / "video_preprocessor_config.json"),
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read {path}: {error}") from error


def load_config(variant: Variant, override: str | os.PathLike | None = None) -> VideoCLIPConfig:
    """The model configuration: the variant's ``config.json``, or `override` (a ``config.json`` or a folder holding
    one, e.g. for a checkpoint with another text tower), which must describe a VideoCLIP model.

    Raises:
        InputError: (`BAD_INPUT`) `override` is missing or not a VideoCLIP config.
    """
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
    """The variant's published Recall@K (%), from its ``variant.json``.

    Returns:
        ``{"text_to_video/R@1": 8.26, ..., "video_to_text/R@10": 34.6}`` for videoclip-mugen (the metric keys of
        `modeling_videoclip.retrieval`); empty for a variant without results.
    """
    results = {}
    for result in load_variant(variant).spec.get("results") or []:
        direction = result["task_type"].removesuffix("-retrieval").replace("-", "_")
        results[f"{direction}/R@{result['metric_type'].split('@')[1]}"] = float(result["value"])
    return results
