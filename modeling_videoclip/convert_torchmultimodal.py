"""Converts MUGEN VideoCLIP checkpoints into [`VideoCLIPModel`], and S3D state dicts into torchvision's layout.

Two VideoCLIP layouts:
- torchmultimodal (``examples/mugen/retrieval``): ``videoclip_mugen.pt`` is the ``CLIP`` module's state dict
  (``encoder_a.*`` text, ``encoder_b.*`` video, no logit scale); ``videoclip_lightning_mugen.pt`` has the same keys
  under ``model.`` plus ``contrastive_loss.logit_scale``.
- MUGEN_baseline (``lib/models/videoclip``, the MUGEN authors' code): ``CLIPModel.state_dict()`` with
  ``visual_encoder.model.base.*`` (their own S3D), ``image_projection.*``, ``text_encoder.model.*`` (DistilBERT),
  ``text_projection.*``, ``temperature`` (the log-multiplier) and ``max_temperature`` (its clamp).

S3D comes in two layouts too (`convert_s3d_state_dict`): torchvision's ``features.N`` and MUGEN_baseline's (kylemin's)
``base.N`` with ``conv_s/bn_s/conv_t/bn_t`` and ``conv/bn`` modules, each bare or under ``module.`` / ``model.``.
Conversion is strict; only DistilBERT's obsolete ``embeddings.position_ids`` buffer is dropped silently.
"""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Mapping
from typing import Any

import torch

from .common.errors import ExitCode, VideoCLIPError
from .configuration_videoclip import VideoCLIPConfig
from .modeling_videoclip import VideoCLIPModel

# Reference prefix -> our prefix, first match wins.
KEY_PREFIXES = (
    ("encoder_a.0.model.", "text_model."),
    ("encoder_a.1.", "text_projection."),
    ("encoder_b.0.model.features.", "video_model.features."),
    ("encoder_b.1.", "video_projection."),
    ("contrastive_loss.logit_scale", "logit_scale"),
)
# MUGEN_baseline's CLIPModel prefix -> our prefix; its S3D goes through `convert_s3d_state_dict`.
MUGEN_BASELINE_PREFIXES = (
    ("text_encoder.model.", "text_model."),
    ("text_projection.", "text_projection."),
    ("image_projection.", "video_projection."),
)
MUGEN_BASELINE_VIDEO_PREFIX = "visual_encoder.model."
OBSOLETE_KEYS = ("encoder_a.0.model.embeddings.position_ids", "text_encoder.model.embeddings.position_ids")
# Wrappers around an S3D state dict, stripped in any order: DDP's ``module.``, and the ``model.`` attribute of
# torchmultimodal's and MUGEN_baseline's ``VideoEncoder``.
S3D_WRAPPER_PREFIXES = ("module.", "model.")
# MUGEN_baseline's S3D module names -> torchvision's: SepConv3d's spatial/temporal (conv, bn) pairs are
# TemporalSeparableConv's [0]/[1] Conv3dNormActivation, whose [0] is the conv and [1] the BatchNorm.
MUGEN_S3D_MODULE_NAMES = {"conv_s": "0.0", "bn_s": "0.1", "conv_t": "1.0", "bn_t": "1.1", "conv": "0", "bn": "1"}


class CheckpointConversionError(VideoCLIPError, ValueError):
    """A checkpoint is not a torchmultimodal VideoCLIP checkpoint of the expected architecture."""

    exit_code = ExitCode.CHECKPOINT_UNREADABLE


class UnreadableCheckpointError(CheckpointConversionError):
    """The file is not a readable torch checkpoint, or not a VideoCLIP state dict."""


class PickleRequiredError(CheckpointConversionError):
    """The file holds objects other than tensors; loading it needs pickle (``allow_pickle=True``)."""

    exit_code = ExitCode.NEEDS_PICKLE


class KeyMismatchError(CheckpointConversionError):
    """The state dict's keys or shapes do not match the VideoCLIP architecture."""

    exit_code = ExitCode.KEY_MISMATCH


class S3DKeyMismatchError(KeyMismatchError):
    """An S3D state dict (either layout) does not match torchvision's S3D: its message lists the missing, unexpected
    and mis-shaped keys."""


def load_checkpoint(path: str | os.PathLike, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Reads a VideoCLIP checkpoint file (torchmultimodal's or MUGEN_baseline's) into a flat state dict.

    Args:
        path: a ``.pt`` file in any layout of the module docstring.
        allow_pickle: load with ``weights_only=False``, which runs arbitrary code from the file: only for files you
            trust. False by default, which refuses Lightning checkpoints whose extra entries need pickle.

    Returns:
        The state dict with its layout's keys (``encoder_a.*``, ``encoder_b.*``, maybe
        ``contrastive_loss.logit_scale``; or MUGEN_baseline's), wrapper prefixes stripped (`extract_state_dict`).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint not found: {path!r}.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as error:
        # A well-formed pickle naming a class outside torch's allowlist needs pickle; other failures are garbage.
        if allow_pickle or "unsupported global" not in str(error).lower():
            raise UnreadableCheckpointError(f"Cannot read checkpoint {path!r}: {error}") from error
        raise PickleRequiredError(
            f"{path!r} needs pickle to load (it holds more than tensors: {str(error).splitlines()[0]}). If you "
            f"trust the file, opt in with allow_pickle=True (upload.py: --allow-pickle)."
        ) from error
    except Exception as error:  # torch.load fails in many ways (IndexError, RuntimeError...) on non-checkpoints
        raise UnreadableCheckpointError(
            f"Cannot read checkpoint {path!r}: {type(error).__name__}: {error} (not a torch.save file?)"
        ) from error
    return extract_state_dict(checkpoint, source=path)


def extract_state_dict(checkpoint, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Returns the flat state dict of a loaded checkpoint object: torchmultimodal's (plain or Lightning, ``model.``
    stripped) or MUGEN_baseline's (a DDP ``module.`` prefix stripped)."""
    if not isinstance(checkpoint, Mapping):
        raise UnreadableCheckpointError(
            f"{source} holds a {type(checkpoint).__name__}, not a state dict; expected torchmultimodal's "
            f"videoclip_mugen.pt or videoclip_lightning_mugen.pt, or a MUGEN_baseline VideoCLIP checkpoint."
        )
    state = checkpoint["state_dict"] if isinstance(checkpoint.get("state_dict"), Mapping) else checkpoint
    flat = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise UnreadableCheckpointError(f"{source}: entry {key!r} is a {type(value).__name__}, not a tensor.")
        for prefix in ("module.", "model."):
            key = key.removeprefix(prefix)
        flat[key] = value
    if not any(k.startswith(("encoder_a.", "encoder_b.")) for k in flat) and not is_mugen_baseline_state_dict(flat):
        raise UnreadableCheckpointError(
            f"{source} is not a torchmultimodal VideoCLIP checkpoint: no 'encoder_a.*' / 'encoder_b.*' keys, nor "
            f"MUGEN_baseline's 'visual_encoder.*' / 'text_encoder.*' (found e.g. {sorted(flat)[:5]})."
        )
    return flat


def is_mugen_baseline_state_dict(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether `state` (prefixes stripped by `extract_state_dict`) is in MUGEN_baseline's ``CLIPModel`` layout."""
    return any(key.startswith((MUGEN_BASELINE_VIDEO_PREFIX, "text_encoder.model.")) for key in state)


def convert_state_dict(reference_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames either VideoCLIP layout's keys to VideoCLIPModel keys; unknown keys are an error (`KeyMismatchError`).
    MUGEN_baseline's ``max_temperature`` is not a weight here (it is the config's ``logit_scale_max``): dropped, and
    checked by [`convert_torchmultimodal_checkpoint`]."""
    if is_mugen_baseline_state_dict(reference_state):
        return _convert_mugen_baseline(reference_state)
    renamed = {key: _rename(key) for key in reference_state if key not in OBSOLETE_KEYS}
    unexpected = [key for key, new_key in renamed.items() if new_key is None]
    if unexpected:
        raise KeyMismatchError(_key_report("Unexpected keys", unexpected))
    return {new_key: reference_state[key] for key, new_key in renamed.items()}


def _convert_mugen_baseline(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    video = {key.removeprefix(MUGEN_BASELINE_VIDEO_PREFIX): value for key, value in state.items()
             if key.startswith(MUGEN_BASELINE_VIDEO_PREFIX)}
    converted, sources = _rename_s3d(video)
    renamed = {"video_model." + name: value for name, value in converted.items()}
    unexpected = [MUGEN_BASELINE_VIDEO_PREFIX + key for key in sources["unexpected"]]
    for key, value in state.items():
        if key.startswith(MUGEN_BASELINE_VIDEO_PREFIX) or key in OBSOLETE_KEYS or key == "max_temperature":
            continue
        new_key = "logit_scale" if key == "temperature" else next(
            (new + key[len(old):] for old, new in MUGEN_BASELINE_PREFIXES if key.startswith(old)), None
        )
        if new_key is None:
            unexpected.append(key)
        else:
            renamed[new_key] = value
    if unexpected:
        hint = ("; a video-audio or audio-text CLIPModel has no VideoCLIP counterpart"
                if any("aud" in key for key in unexpected) else "")
        raise KeyMismatchError(_key_report("Unexpected keys", unexpected) + hint)
    return renamed


def _torchvision_s3d_name(key: str) -> str | None:
    """torchvision's name for one S3D key of either layout (wrapper prefixes already stripped); "" for a classifier
    key (torchvision's ``classifier``, MUGEN's ``fc``), which is dropped; None for a key of neither layout."""
    if key.startswith(("classifier.", "fc.")):
        return ""
    if key.startswith("features."):
        return key
    if not key.startswith("base."):
        return None
    parts = key.split(".")
    parts[0] = "features"
    if parts[2:4] == ["branch0", "0"]:  # MUGEN wraps branch0's one BasicConv3d in a Sequential, torchvision does not
        del parts[3]
    return ".".join(MUGEN_S3D_MODULE_NAMES.get(part, part) for part in parts)


def _strip_s3d_wrappers(key: str) -> str:
    while key.startswith(S3D_WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    return key


@functools.cache
def torchvision_s3d_shapes() -> dict[str, torch.Size]:
    """The shape of every key of torchvision's ``S3D().features`` state dict (prefixed ``features.``)."""
    from torchvision.models.video import S3D

    with torch.device("meta"):
        s3d = S3D()
    return {key: value.shape for key, value in s3d.state_dict().items() if key.startswith("features.")}


def _rename_s3d(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Renames `state_dict` to torchvision's names: ``(converted, sources)``, sources holding ``"of"`` (each new
    name's original key) and ``"unexpected"`` (keys of neither layout, or names torchvision's S3D lacks)."""
    if not isinstance(state_dict, Mapping):
        raise UnreadableCheckpointError(f"an S3D state dict maps names to tensors; got a {type(state_dict).__name__}")
    converted: dict[str, torch.Tensor] = {}
    source_of: dict[str, str] = {}
    unexpected = []
    expected = torchvision_s3d_shapes()
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise UnreadableCheckpointError(f"S3D state dict entry {key!r} is a {type(value).__name__}, not a tensor")
        name = _torchvision_s3d_name(_strip_s3d_wrappers(key))
        if name == "":
            continue
        if name is None or name not in expected or name in converted:  # the last: the same weight twice
            unexpected.append(key)
            continue
        converted[name], source_of[name] = value, key
    return converted, {"of": source_of, "unexpected": unexpected}


def convert_s3d_state_dict(state_dict: Mapping[str, torch.Tensor], *, strict: bool = True) -> dict[str, torch.Tensor]:
    """An S3D state dict in torchvision's layout, from torchvision's or MUGEN_baseline's.

    Accepts torchvision ``S3D`` keys (``features.N...``) and MUGEN_baseline's ``S3D`` keys (``base.N`` with
    ``conv_s/bn_s/conv_t/bn_t`` and ``conv/bn``), bare or under ``module.`` (DDP) and/or ``model.`` (the
    ``VideoEncoder`` of torchmultimodal or MUGEN_baseline; torchmultimodal's ``PRETRAINED_VIDEO_ENCODER_URL`` file
    is ``model.features.*``). The classifier (torchvision's ``classifier``, MUGEN's ``fc``) is dropped.

    Args:
        state_dict: the S3D weights, e.g. ``torch.load(path, weights_only=True)``.
        strict: require exactly torchvision S3D's ``features`` keys and shapes. Defaults to True; False renames what
            it can place and drops the rest, without checking completeness or shapes.

    Returns:
        ``{"features.<...>": tensor}`` in torchvision S3D's key order: loads with `strict=True` into a torchvision
        ``S3D`` whose ``classifier`` is ``nn.Identity()`` (the reference's video tower).

    Raises:
        S3DKeyMismatchError: (strict) missing, unexpected or mis-shaped keys, all listed.
        UnreadableCheckpointError: not a mapping of tensors.
    """
    converted, sources = _rename_s3d(state_dict)
    expected = torchvision_s3d_shapes()
    if strict:
        missing = [name for name in expected if name not in converted]
        mis_shaped = [
            f"{sources['of'][name]}: file {tuple(value.shape)} vs torchvision S3D {tuple(expected[name])}"
            for name, value in converted.items() if value.shape != expected[name]
        ]
        problems = _mismatch_reports(missing, sources["unexpected"], mis_shaped)
        if problems:
            counts = f"{len(missing)} missing, {len(sources['unexpected'])} unexpected, {len(mis_shaped)} mis-shaped"
            raise S3DKeyMismatchError(
                f"The S3D state dict does not match torchvision's S3D ({counts} keys):\n" + "\n".join(problems)
            )
    return {name: converted[name] for name in expected if name in converted}


def _rename(key: str) -> str | None:
    return next((new + key[len(old):] for old, new in KEY_PREFIXES if key.startswith(old)), None)


def _mismatch_reports(missing: list[str], unexpected: list[str], mis_shaped: list[str]) -> list[str]:
    reports = (("Missing keys", missing), ("Unexpected keys", unexpected), ("Mis-shaped keys", mis_shaped))
    return [_key_report(title, keys) for title, keys in reports if keys]


def _key_report(title: str, keys: list[str], limit: int = 20) -> str:
    shown = "\n  ".join(keys[:limit])
    more = f"\n  ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{title} ({len(keys)}):\n  {shown}{more}"


def convert_torchmultimodal_checkpoint(
    checkpoint: str | os.PathLike | Mapping[str, torch.Tensor], config: VideoCLIPConfig | None = None,
    allow_pickle: bool = False,
) -> VideoCLIPModel:
    """Builds a [`VideoCLIPModel`] holding exactly the weights of a torchmultimodal VideoCLIP checkpoint.

    Args:
        checkpoint: a path to a checkpoint in any layout above, or an already loaded state dict.
        config: the architecture; defaults to `VideoCLIPConfig()`, the reference's.
        allow_pickle: see [`load_checkpoint`].

    Returns:
        The model in eval mode.

    Raises:
        CheckpointConversionError: missing, unexpected or mis-shaped keys (all of them are listed).
    """
    if isinstance(checkpoint, Mapping):
        reference_state = extract_state_dict(checkpoint)
    else:
        reference_state = load_checkpoint(checkpoint, allow_pickle=allow_pickle)
    state = convert_state_dict(reference_state)
    config = config or VideoCLIPConfig()
    clamp = reference_state.get("max_temperature")  # MUGEN_baseline's; a fixed value, the config's logit_scale_max
    if clamp is not None and clamp.numel() == 1 and float(clamp) != config.logit_scale_max:
        raise KeyMismatchError(
            f"The checkpoint clamps its temperature at max_temperature={float(clamp)}, the config at "
            f"logit_scale_max={config.logit_scale_max}; pass a config with logit_scale_max={float(clamp)}."
        )
    model = VideoCLIPModel(config)
    _check_keys_and_shapes(model, state)
    model.load_state_dict(state, strict=False)  # completeness was checked above, logit_scale may be absent
    return model.eval()


def _check_keys_and_shapes(model: VideoCLIPModel, state: Mapping[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    optional = {"logit_scale"}  # absent from the plain videoclip_mugen.pt
    missing = sorted(set(expected) - set(state) - optional)
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected) if state[k].shape != expected[k].shape
    )
    problems = _mismatch_reports(missing, unexpected, mis_shaped)
    if problems:
        raise KeyMismatchError("The checkpoint does not match the VideoCLIP architecture:\n" + "\n".join(problems))


__all__ = [
    "CheckpointConversionError", "KeyMismatchError", "PickleRequiredError", "S3DKeyMismatchError",
    "UnreadableCheckpointError", "convert_s3d_state_dict", "convert_state_dict", "convert_torchmultimodal_checkpoint",
    "extract_state_dict", "is_mugen_baseline_state_dict", "load_checkpoint", "torchvision_s3d_shapes",
]
